//! `caib catalog status [NAME]`: what the sync controller did with each CatalogSource —
//! which revision is applied, whether it is Ready, how many entries are available, and (for
//! one source) which files are invalid and where, the last syncs, and the pull-request
//! previews.

use std::fmt::Write as _;

use catalog_api::CatalogSource;
use catalog_api::source::condition;
use jiff::Timestamp;
use kube::api::{Api, ListParams};

use crate::cli::{Global, OutputFormat, StatusArgs};
use crate::cluster::{CATALOG_SOURCE, Cluster};
use crate::error::Result;
use crate::output::{self, NONE, Table};

use super::source_entries;

pub fn run(global: &Global, args: &StatusArgs) -> Result<()> {
    if args.entries && args.name.is_none() {
        return Err(source_entries::usage());
    }
    super::block_on(crate::cluster::within(
        global.timeout,
        "reading catalog sources",
        async {
            let cluster = Cluster::connect(global).await?;
            let format = global.output.unwrap_or(OutputFormat::Table);
            let now = Timestamp::now();
            if let Some(name) = &args.name {
                return one(&cluster, name, args.entries, format, now).await;
            }
            let api: Api<CatalogSource> = cluster.api(args.all_namespaces);
            let mut sources = api
                .list(&ListParams::default())
                .await
                .map_err(|e| cluster.error(e, &CATALOG_SOURCE, None))?
                .items;
            sources.sort_by(|a, b| {
                (&a.metadata.namespace, &a.metadata.name)
                    .cmp(&(&b.metadata.namespace, &b.metadata.name))
            });
            output::print_list(
                sources.is_empty(),
                format,
                "No catalog sources found",
                || render(&sources, format, args.all_namespaces, now),
            )
        },
    ))
}

/// One source: its detail, its document, or (`--entries`) the entries it manages.
async fn one(
    cluster: &Cluster,
    name: &str,
    entries: bool,
    format: OutputFormat,
    now: Timestamp,
) -> Result<()> {
    let api: Api<CatalogSource> = cluster.api(false);
    let source = api
        .get(name)
        .await
        .map_err(|e| cluster.error(e, &CATALOG_SOURCE, Some(name)))?;
    if entries {
        let entries = source_entries::list(cluster, &source).await?;
        let none = source_entries::none_found(&source);
        return output::print_list(entries.is_empty(), format, &none, || {
            source_entries::render(&source, &entries, format)
        });
    }
    let text = match format {
        OutputFormat::Json | OutputFormat::Yaml => output::document(
            &output::object_value(&source, catalog_api::API_VERSION, "CatalogSource")?,
            format,
        )?,
        _ => detail(&source, now),
    };
    print!("{text}");
    Ok(())
}

/// Shortened commit, as `git log --oneline` shows it.
fn short(revision: &str) -> String {
    revision.chars().take(12).collect()
}

fn ready(source: &CatalogSource) -> String {
    source
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
        .map(|c| c.status.clone())
        .unwrap_or_else(|| "Unknown".into())
}

/// The sources table, or a Kubernetes List.
pub fn render(
    sources: &[CatalogSource],
    format: OutputFormat,
    all_namespaces: bool,
    now: Timestamp,
) -> Result<String> {
    if let Some(document) = output::list_document(sources, "CatalogSource", format)? {
        return Ok(document);
    }
    let mut table = output::object_table(
        all_namespaces,
        &[
            "URL",
            "REVISION",
            "READY",
            "ENTRIES",
            "AVAILABLE",
            "UNAVAILABLE",
            "INVALID",
            "AGE",
        ],
    );
    for source in sources {
        let status = source.status.clone().unwrap_or_default();
        let summary = status.summary.clone().unwrap_or_default();
        let mut row = output::object_cells(&source.metadata, all_namespaces);
        row.push(source.spec.url.clone());
        row.push(
            status
                .last_applied_revision
                .as_deref()
                .map(short)
                .unwrap_or_else(|| NONE.into()),
        );
        row.push(ready(source));
        row.push(summary.entries.to_string());
        row.push(summary.available.to_string());
        // Failed images are not pullable either.
        row.push((summary.unavailable + summary.failed).to_string());
        row.push(summary.invalid.to_string());
        row.push(output::age_of(
            source.metadata.creation_timestamp.as_ref(),
            now,
        ));
        table.push(row);
    }
    Ok(table.render())
}

/// One source in detail: where it syncs from, its conditions, invalid entries (path:line),
/// conflicts and the last syncs.
pub fn detail(source: &CatalogSource, now: Timestamp) -> String {
    let status = source.status.clone().unwrap_or_default();
    let summary = status.summary.clone().unwrap_or_default();
    let spec = &source.spec;
    let mut out = String::new();
    let git_ref = match &spec.git_ref {
        Some(r) if r.commit.is_some() => {
            format!("commit {}", r.commit.as_deref().unwrap_or_default())
        }
        Some(r) if r.tag.is_some() => format!("tag {}", r.tag.as_deref().unwrap_or_default()),
        Some(r) => format!("branch {}", r.branch.as_deref().unwrap_or("main")),
        None => "branch main".into(),
    };
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| NONE.into());
    let _ = writeln!(
        out,
        "Name:              {}",
        source.metadata.name.as_deref().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "Namespace:         {}",
        source.metadata.namespace.as_deref().unwrap_or_default()
    );
    let _ = writeln!(out, "URL:               {}", spec.url);
    let _ = writeln!(out, "Ref:               {git_ref}");
    let _ = writeln!(out, "Path:              {}", spec.path);
    if spec.suspend {
        let _ = writeln!(out, "Suspended:         true");
    }
    let _ = writeln!(
        out,
        "Applied Revision:  {}",
        or_none(&status.last_applied_revision)
    );
    let _ = writeln!(
        out,
        "Fetched Revision:  {}",
        or_none(&status.last_fetched_revision)
    );
    let _ = writeln!(
        out,
        "Entries:           {} ({} applied, {} available, {} unavailable, {} failed, {} pending, {} invalid)",
        summary.entries,
        summary.applied,
        summary.available,
        summary.unavailable,
        summary.failed,
        summary.pending,
        summary.invalid
    );
    let _ = writeln!(
        out,
        "Age:               {}",
        output::age_of(source.metadata.creation_timestamp.as_ref(), now)
    );
    if !status.conditions.is_empty() {
        let _ = writeln!(out, "\nConditions:");
        let mut table = Table::new(vec!["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for c in &status.conditions {
            table.push(vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            ]);
        }
        indent(&mut out, &table.render());
    }
    if !status.invalid_entries.is_empty() {
        let heading = listed_of(
            "Invalid entries",
            status.invalid_entries.len(),
            status.invalid_entries_total,
        );
        let _ = writeln!(out, "\n{heading}:");
        for e in &status.invalid_entries {
            let position = if e.column > 0 {
                format!("{}:{}:{}", e.path, e.line, e.column)
            } else {
                format!("{}:{}", e.path, e.line)
            };
            let _ = writeln!(out, "  {position}: {}", e.message);
        }
    }
    if !status.conflicts.is_empty() {
        let heading = listed_of("Conflicts", status.conflicts.len(), status.conflicts_total);
        let _ = writeln!(out, "\n{heading}:");
        for c in &status.conflicts {
            let _ = writeln!(out, "  {} ({}): {}", c.name, c.path, c.message);
        }
    }
    if !status.history.is_empty() {
        let _ = writeln!(out, "\nHistory:");
        let mut table = Table::new(vec![
            "REVISION", "TIME", "CREATED", "UPDATED", "PRUNED", "DURATION",
        ]);
        for h in &status.history {
            table.push(vec![
                short(&h.revision),
                h.time
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_else(|| NONE.into()),
                h.created.to_string(),
                h.updated.to_string(),
                h.pruned.to_string(),
                format!("{}ms", h.duration_ms),
            ]);
        }
        indent(&mut out, &table.render());
    }
    previews(&mut out, &status.previews);
    out
}

/// The pull-request previews section: what merging each open pull request would do.
fn previews(out: &mut String, previews: &[catalog_api::source::PreviewSummary]) {
    if previews.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nPull-request previews:");
    let mut table = Table::new(vec![
        "PR", "HEAD", "STATE", "CREATED", "UPDATED", "PRUNED", "FAILED", "MESSAGE",
    ]);
    for p in previews {
        table.push(vec![
            format!("#{}", p.number),
            short(&p.head),
            p.state.as_str().to_string(),
            p.created.to_string(),
            p.updated.to_string(),
            p.pruned.to_string(),
            p.failed.to_string(),
            p.message.clone(),
        ]);
    }
    indent(out, &table.render());
}

/// A list's heading, saying how many exist when the status lists only the first ones (a
/// status written before the totals existed has none: what is listed is all there is).
fn listed_of(what: &str, listed: usize, total: u32) -> String {
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    if total > listed {
        format!("{what} (the first {listed} of {total})")
    } else {
        what.to_string()
    }
}

fn indent(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::now;

    fn source() -> CatalogSource {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
            "kind": "CatalogSource",
            "metadata": {"name": "dev", "namespace": "catalog-dev", "creationTimestamp": "2026-01-01T10:00:00Z"},
            "spec": {"url": "https://git.example.com/platform/catalog.git", "ref": {"branch": "main"}, "path": "environments/dev"},
            "status": {
                "lastAppliedRevision": "4f2a9c0d1e2b3a4c5d6e7f8091a2b3c4d5e6f708",
                "lastFetchedRevision": "4f2a9c0d1e2b3a4c5d6e7f8091a2b3c4d5e6f708",
                "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidEntries",
                    "message": "1 invalid entry", "lastTransitionTime": "2026-01-04T14:00:00Z"}],
                "summary": {"entries": 12, "applied": 11, "invalid": 1, "available": 9, "unavailable": 1, "failed": 1, "pending": 0},
                "invalidEntries": [{"path": "environments/dev/broken.yaml", "line": 7, "column": 5,
                    "message": "spec.registryUrl: invalid reference"}],
                "invalidEntriesTotal": 3,
                "conflicts": [{"name": "autosd-cs9-qemu", "path": "environments/dev/qemu.yaml",
                    "message": "exists and is not managed by a CatalogSource; it is never taken over"}],
                "conflictsTotal": 1,
                "history": [{"revision": "4f2a9c0d1e2b3a4c5d6e7f8091a2b3c4d5e6f708", "time": "2026-01-04T14:00:00Z",
                    "created": 2, "updated": 1, "pruned": 0, "durationMs": 84}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn table_and_detail() {
        let sources = [source()];
        insta::assert_snapshot!(render(&sources, OutputFormat::Table, false, now()).unwrap(), @r"
        NAME   URL                                            REVISION       READY   ENTRIES   AVAILABLE   UNAVAILABLE   INVALID   AGE
        dev    https://git.example.com/platform/catalog.git   4f2a9c0d1e2b   False   12        9           2             1         3d4h
        ");
        insta::assert_snapshot!(detail(&sources[0], now()));
        insta::assert_snapshot!(render(&sources, OutputFormat::Yaml, true, now()).unwrap());
    }

    #[test]
    fn previews_are_listed_newest_first_as_the_status_holds_them() {
        let mut source = source();
        let status = source.status.as_mut().unwrap();
        status.previews = serde_json::from_value(serde_json::json!([
            {"number": 12, "head": "a".repeat(40), "state": "Failure", "created": 1, "failed": 1,
             "message": "1 created: 1 image failed: DigestNotFound (quay.io/x/y@sha256:e)"},
            {"number": 9, "head": "b".repeat(40), "state": "Success", "updated": 2,
             "message": "2 updated: every image verified"}
        ]))
        .unwrap();
        let text = detail(&source, now());
        let section = text
            .split("Pull-request previews:\n")
            .nth(1)
            .expect("a previews section");
        insta::assert_snapshot!(section, @r"
          PR    HEAD           STATE     CREATED   UPDATED   PRUNED   FAILED   MESSAGE
          #12   aaaaaaaaaaaa   Failure   1         0         0        1        1 created: 1 image failed: DigestNotFound (quay.io/x/y@sha256:e)
          #9    bbbbbbbbbbbb   Success   0         2         0        0        2 updated: every image verified
        ");
    }
}
