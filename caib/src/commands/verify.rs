//! `caib catalog verify NAME`: ask the verification controller to verify one image now and
//! show what it found.
//!
//! The request is the `verify-requested-at` annotation, set with a merge patch under caib's
//! own field manager (so it never takes ownership of fields the sync manages); the controller
//! echoes the value in `status.lastHandledVerifyAt` once it has verified, which is how caib
//! knows the status it prints answers *this* request and not an older one.

use std::io::IsTerminal;
use std::time::Duration;

use catalog_api::CatalogImage;
use catalog_api::image::{Phase, condition};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::cli::{Global, VerifyArgs};
use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::{CaibError, Result, exit};
use crate::output;

/// Field manager of caib's own writes (the verify request annotation).
pub const FIELD_MANAGER: &str = "caib";
/// How long to wait for the controller when `--timeout` is not given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(global: &Global, args: &VerifyArgs) -> Result<()> {
    if args.local {
        return super::verify_local::run(global, args);
    }
    super::block_on(async {
        let cluster = Cluster::connect(global).await?;
        let api: Api<CatalogImage> = cluster.api(false);
        let requested_at = request(&cluster, &api, &args.name).await?;
        if !args.wait {
            println!(
                "Verification of catalog image {:?} requested ({}={requested_at})",
                args.name,
                catalog_api::labels::VERIFY_REQUESTED_AT
            );
            return Ok(());
        }
        println!("Verifying catalog image {:?}...", args.name);
        let timeout = global.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let spinner = spinner(&args.name);
        let result = tokio::time::timeout(
            timeout,
            wait_handled(&cluster, &api, &args.name, &requested_at),
        )
        .await;
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        let image = match result {
            Ok(image) => image?,
            Err(_) => {
                return Err(CaibError::Timeout(format!(
                    "timed out after {} waiting for the verification of {:?}: is catalog-reconciler running? (the request stays pending; check with `caib catalog get {}`)",
                    catalog_api::duration::format(timeout),
                    args.name,
                    args.name
                )));
            }
        };
        let (text, available) = report(&image);
        if crate::config::color_enabled() {
            print!(
                "{}",
                text.replace("✓ ", "\x1b[32m✓\x1b[0m ")
                    .replace("✗ ", "\x1b[31m✗\x1b[0m ")
            );
        } else {
            print!("{text}");
        }
        if available {
            Ok(())
        } else {
            Err(CaibError::Silent(exit::ERROR))
        }
    })
}

/// Sets the request annotation to the current time and returns the value set.
async fn request(cluster: &Cluster, api: &Api<CatalogImage>, name: &str) -> Result<String> {
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map_err(|e| CaibError::Other(e.into()))?;
    let value = now.to_string();
    let patch = json!({
        "metadata": {"annotations": {catalog_api::labels::VERIFY_REQUESTED_AT: value}}
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| cluster.error(e, &CATALOG_IMAGE, Some(name)))?;
    Ok(value)
}

fn handled(image: &CatalogImage, requested_at: &str) -> bool {
    image
        .status
        .as_ref()
        .and_then(|s| s.last_handled_verify_at.as_deref())
        == Some(requested_at)
}

/// Watches the object until the controller has echoed `requested_at`. A watch that ends
/// (server timeout, dropped connection) is resumed from a fresh read.
async fn wait_handled(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    name: &str,
    requested_at: &str,
) -> Result<CatalogImage> {
    let map = |e| cluster.error(e, &CATALOG_IMAGE, Some(name));
    loop {
        let image = api.get(name).await.map_err(map)?;
        if handled(&image, requested_at) {
            return Ok(image);
        }
        let version = image.metadata.resource_version.clone().unwrap_or_default();
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(60);
        let stream = match api.watch(&params, &version).await {
            Ok(stream) => stream,
            Err(_) => {
                // Some servers refuse a watch (410 Gone on an old version): read again shortly.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut stream = stream.boxed();
        while let Ok(Some(event)) = stream.try_next().await {
            match event {
                WatchEvent::Added(image) | WatchEvent::Modified(image) => {
                    if handled(&image, requested_at) {
                        return Ok(image);
                    }
                }
                WatchEvent::Deleted(_) => {
                    return Err(CaibError::NotFound(format!(
                        "catalog image {name:?} was deleted while waiting for its verification"
                    )));
                }
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Error(_) => break,
            }
        }
    }
}

/// A spinner on stderr, only for people watching a terminal (never in logs or pipes).
fn spinner(name: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner()
        .with_message(format!("waiting for the verification of {name}"));
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

fn find<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == kind)
}

/// The quickstart's verify report for an image whose status answers the request, and whether
/// the image is Available (the exit status).
pub fn report(image: &CatalogImage) -> (String, bool) {
    let status = image.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or(Phase::Pending);
    let conditions = &status.conditions;
    let metadata = status.registry_metadata.clone().unwrap_or_default();
    let is_true = |c: Option<&Condition>| c.map(|c| c.status == "True");
    let message = |c: Option<&Condition>, fallback: &str| {
        c.map(|c| c.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| fallback.to_string())
    };

    let available = find(conditions, condition::AVAILABLE);
    let accessible = is_true(available).unwrap_or(phase == Phase::Available);
    let verified = find(conditions, condition::VERIFIED);
    let tag_moved = find(conditions, condition::TAG_MOVED).filter(|c| c.status == "True");
    let digest_ok = is_true(verified).unwrap_or(accessible) && tag_moved.is_none();
    let metadata_ok = metadata.resolved_digest.is_some() && metadata.size_bytes.is_some();

    let mut out = String::new();
    let mut check = |ok: bool, what: &str, why: String| {
        if ok {
            out.push_str(&format!("✓ {what}: OK\n"));
        } else {
            out.push_str(&format!("✗ {what}: {why}\n"));
        }
    };
    check(
        accessible,
        "Registry accessibility",
        message(available, &format!("phase {phase}")),
    );
    check(
        digest_ok,
        "Digest verification",
        match tag_moved {
            Some(c) => message(Some(c), "the tag moved away from the pinned digest"),
            None => message(verified, "not verified"),
        },
    );
    check(
        metadata_ok,
        "Metadata extraction",
        message(verified, "no registry metadata"),
    );
    let or_none = |v: Option<String>| v.unwrap_or_else(|| output::NONE.to_string());
    out.push('\n');
    out.push_str(&format!("Registry URL:     {}\n", image.spec.registry_url));
    out.push_str(&format!(
        "Resolved Digest:  {}\n",
        or_none(metadata.resolved_digest.clone())
    ));
    out.push_str(&format!(
        "Size:            {}\n",
        or_none(metadata.size_bytes.map(catalog_api::size::human))
    ));
    out.push_str(&format!(
        "Layers:          {}\n",
        or_none(metadata.layer_count.map(|n| n.to_string()))
    ));
    out.push_str(&format!(
        "Last Verified:   {}\n",
        or_none(status.last_verification_time.map(|t| t.0.to_string()))
    ));
    out.push_str(&format!("Status:          {phase}\n"));
    (out, phase == Phase::Available)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::{qemu, rpi4, time};
    use catalog_api::image::RegistryMetadata;

    fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: time("2026-01-04T14:30:00Z"),
            observed_generation: None,
        }
    }

    #[test]
    fn available_report_is_the_quickstarts() {
        let mut image = rpi4();
        let status = image.status.as_mut().unwrap();
        status.registry_metadata = Some(RegistryMetadata {
            resolved_digest: Some("sha256:abc123".into()),
            size_bytes: Some(1_234_567_890),
            layer_count: Some(12),
            ..Default::default()
        });
        status.last_verification_time = Some(time("2026-01-04T14:30:00Z"));
        status.conditions = vec![
            cond("Available", "True", "Resolved", "image resolved"),
            cond("Verified", "True", "DigestMatches", ""),
        ];
        let (text, ok) = report(&image);
        assert!(ok);
        insta::assert_snapshot!(text, @r"
        ✓ Registry accessibility: OK
        ✓ Digest verification: OK
        ✓ Metadata extraction: OK

        Registry URL:     quay.io/centos-automotive/autosd:cs9-rpi4
        Resolved Digest:  sha256:abc123
        Size:            1.1 GiB
        Layers:          12
        Last Verified:   2026-01-04T14:30:00Z
        Status:          Available
        ");
    }

    #[test]
    fn failures_show_the_condition_message() {
        let mut image = qemu();
        let status = image.status.as_mut().unwrap();
        status.conditions = vec![
            cond(
                "Available",
                "False",
                "RegistryUnreachable",
                "GET https://quay.io/v2/: connection refused",
            ),
            cond(
                "Verified",
                "False",
                "RegistryUnreachable",
                "could not resolve the reference",
            ),
        ];
        let (text, ok) = report(&image);
        assert!(!ok);
        insta::assert_snapshot!(text, @r"
        ✗ Registry accessibility: GET https://quay.io/v2/: connection refused
        ✗ Digest verification: could not resolve the reference
        ✗ Metadata extraction: could not resolve the reference

        Registry URL:     quay.io/centos-automotive/autosd:cs9-qemu
        Resolved Digest:  <none>
        Size:            <none>
        Layers:          <none>
        Last Verified:   <none>
        Status:          Unavailable
        ");
    }
}
