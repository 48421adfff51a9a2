//! What a preview found, and how it is told: the commit status description (within GitHub's
//! 140 characters), the pull-request comment (a table, bounded in rows and characters) and the
//! CatalogSource's `status.previews` entry. Pure, so every wording is unit-tested.

use catalog_api::source::{PreviewState, PreviewSummary};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::forge::CommitState;

/// Longest commit status description (GitHub refuses more; GitLab and Gitea take it).
pub const DESCRIPTION_CHARS: usize = 140;
/// Rows listed in a comment; the rest are counted (GitHub comments hold 65,536 characters).
pub const MAX_ROWS: usize = 100;
/// Characters of one cell's message.
const MESSAGE_CHARS: usize = 200;

/// What merging would do to one entry (or why a file cannot be applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Pruned,
    /// A file that fails validation: nothing of it would be applied.
    Invalid,
    /// A name another source or an unmanaged object holds: it would not be applied.
    Conflict,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Pruned => "pruned",
            Change::Invalid => "invalid",
            Change::Conflict => "conflict",
        }
    }
}

/// One row of the comment's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Entry name (or `path:line` of an invalid file).
    pub entry: String,
    pub change: Change,
    pub image: String,
    pub digest: String,
    pub platforms: String,
    pub ok: bool,
    pub message: String,
}

/// The evaluation of one pull-request head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub number: u64,
    pub head: String,
    pub rows: Vec<Row>,
    /// Why the merge's deletions would wait for approval.
    pub blocked: Option<String>,
    /// Created or updated entries not verified (over `--max-preview-images`), and the limit.
    pub unverified: Option<(usize, usize)>,
    /// Why nothing could be read at this head (too many files, a missing directory).
    pub unreadable: Option<String>,
}

impl Evaluation {
    fn count(&self, change: Change) -> usize {
        self.rows.iter().filter(|r| r.change == change).count()
    }

    /// Rows that fail (invalid files, conflicts, images that did not verify).
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok).count()
    }

    pub fn success(&self) -> bool {
        self.failures() == 0
            && self.blocked.is_none()
            && self.unverified.is_none()
            && self.unreadable.is_none()
    }

    pub fn commit_state(&self) -> CommitState {
        if self.success() {
            CommitState::Success
        } else {
            CommitState::Failure
        }
    }

    /// "1 created, 2 updated" (zero counts left out; "no changes" when all are zero).
    fn counts(&self) -> String {
        let parts: Vec<String> = [Change::Created, Change::Updated, Change::Pruned]
            .into_iter()
            .map(|c| (c, self.count(c)))
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{n} {}", c.as_str()))
            .collect();
        if parts.is_empty() {
            "no changes".into()
        } else {
            parts.join(", ")
        }
    }

    /// The most important problem, for the description.
    fn first_problem(&self) -> Option<String> {
        if let Some(why) = &self.unreadable {
            return Some(why.clone());
        }
        let failed: Vec<&Row> = self.rows.iter().filter(|r| !r.ok).collect();
        let invalid = failed
            .iter()
            .filter(|r| r.change == Change::Invalid)
            .count();
        let images: Vec<&&Row> = failed
            .iter()
            .filter(|r| matches!(r.change, Change::Created | Change::Updated))
            .collect();
        if let Some(row) = images.first() {
            let what = match images.len() {
                1 => "1 image failed".to_string(),
                n => format!("{n} images failed"),
            };
            return Some(format!("{what}: {} ({})", row.message, row.image));
        }
        if invalid > 0 {
            return Some(format!("{invalid} invalid (first: {})", failed[0].entry));
        }
        if let Some(row) = failed.first() {
            return Some(format!("conflict: {}", row.entry));
        }
        if self.blocked.is_some() {
            return Some("deletions over maxDeletions will need approval".into());
        }
        self.unverified
            .map(|(n, limit)| format!("{n} images not verified (over {limit} per preview)"))
    }

    /// The commit status description, at most [`DESCRIPTION_CHARS`] characters.
    pub fn description(&self) -> String {
        let text = match self.first_problem() {
            Some(problem) => format!("{}: {problem}", self.counts()),
            None => format!("{}: every image verified", self.counts()),
        };
        cut(&text, DESCRIPTION_CHARS)
    }

    /// The `status.previews` entry.
    pub fn summary(&self) -> PreviewSummary {
        PreviewSummary {
            number: self.number,
            head: self.head.clone(),
            state: if self.success() {
                PreviewState::Success
            } else {
                PreviewState::Failure
            },
            created: self.count(Change::Created) as u32,
            updated: self.count(Change::Updated) as u32,
            pruned: self.count(Change::Pruned) as u32,
            failed: self.failures() as u32,
            message: self.description(),
            time: Some(Time(jiff::Timestamp::now())),
        }
    }

    /// The comment: `marker`, a heading, the verdict, the table and the notes.
    pub fn comment(&self, marker: &str, source: &str) -> String {
        let verdict = if self.success() {
            "**Success**"
        } else {
            "**Failure**"
        };
        let mut out = format!(
            "{marker}\n### Catalog preview: `{}` at `{}`\n\n{verdict}: {}\n",
            escape(source),
            escape(crate::sync::plan::short(&self.head)),
            escape(&self.description())
        );
        if !self.rows.is_empty() {
            out.push_str("\n| entry | change | image | digest | platforms | result | message |\n|---|---|---|---|---|---|---|\n");
            for row in self.rows.iter().take(MAX_ROWS) {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} |\n",
                    escape(&row.entry),
                    row.change.as_str(),
                    escape(&row.image),
                    escape(&row.digest),
                    escape(&row.platforms),
                    if row.ok { "ok" } else { "failed" },
                    escape(&cut(&row.message, MESSAGE_CHARS)),
                ));
            }
            if self.rows.len() > MAX_ROWS {
                out.push_str(&format!(
                    "\n… and {} more rows (not listed).\n",
                    self.rows.len() - MAX_ROWS
                ));
            }
        }
        for note in [&self.unreadable, &self.blocked].into_iter().flatten() {
            out.push_str(&format!("\n> {}\n", escape(note)));
        }
        if let Some((n, limit)) = self.unverified {
            out.push_str(&format!(
                "\n> {n} created or updated images were not verified: a preview verifies at most {limit} (--max-preview-images).\n"
            ));
        }
        out
    }
}

/// The summary of a head that could not be evaluated (tried again at the next pass).
pub fn error_summary(number: u64, head: &str, message: &str) -> PreviewSummary {
    PreviewSummary {
        number,
        head: head.to_string(),
        state: PreviewState::Error,
        message: cut(message, DESCRIPTION_CHARS),
        time: Some(Time(jiff::Timestamp::now())),
        ..Default::default()
    }
}

/// At most `max` characters, the last one `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Text safe in a table cell: no line breaks, no cell separators, no HTML (so no hidden
/// markers either).
fn escape(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(entry: &str, change: Change, ok: bool, message: &str) -> Row {
        Row {
            entry: entry.into(),
            change,
            image: format!("quay.io/x/{entry}@sha256:{}", "a".repeat(64)),
            digest: String::new(),
            platforms: "linux/amd64".into(),
            ok,
            message: message.into(),
        }
    }

    #[test]
    fn descriptions_count_changes_and_name_the_first_problem_within_140_characters() {
        let mut e = Evaluation {
            number: 1,
            head: "1".repeat(40),
            rows: vec![
                row("a", Change::Created, true, "verified"),
                row("b", Change::Updated, true, "verified"),
            ],
            ..Default::default()
        };
        assert!(e.success());
        assert_eq!(
            e.description(),
            "1 created, 1 updated: every image verified"
        );
        e.rows.push(row(
            "c",
            Change::Updated,
            false,
            "pinned digest sha256:bbbb does not exist in the registry",
        ));
        let d = e.description();
        assert!(!e.success());
        assert!(
            d.starts_with("1 created, 2 updated: 1 image failed: pinned digest"),
            "{d}"
        );
        assert!(d.chars().count() <= DESCRIPTION_CHARS, "{d}");
        assert!(d.ends_with('…'), "{d}");
        let blocked = Evaluation {
            rows: vec![row("z", Change::Pruned, true, "")],
            blocked: Some("would delete".into()),
            ..Default::default()
        };
        assert_eq!(
            blocked.description(),
            "1 pruned: deletions over maxDeletions will need approval"
        );
        assert_eq!(
            Evaluation::default().description(),
            "no changes: every image verified"
        );
    }

    #[test]
    fn comments_start_with_the_marker_and_escape_cells() {
        let e = Evaluation {
            number: 3,
            head: "abcdef0123456789".into(),
            rows: vec![row(
                "a",
                Change::Created,
                false,
                "bad | <!-- catalog-preview:x -->\nline",
            )],
            ..Default::default()
        };
        let c = e.comment("<!-- catalog-preview:ns/dev -->", "ns/dev");
        assert!(c.starts_with("<!-- catalog-preview:ns/dev -->\n"), "{c}");
        assert_eq!(c.matches("<!--").count(), 1, "{c}");
        assert!(
            c.contains("bad \\| &lt;!-- catalog-preview:x --&gt; line"),
            "{c}"
        );
        assert!(c.contains("| a | created |"), "{c}");
        assert!(c.contains("`abcdef012345`"), "{c}");
    }

    #[test]
    fn long_tables_are_cut() {
        let e = Evaluation {
            rows: (0..MAX_ROWS + 5)
                .map(|i| row(&format!("e{i}"), Change::Created, true, "ok"))
                .collect(),
            ..Default::default()
        };
        let c = e.comment("<!-- m -->", "ns/dev");
        assert_eq!(c.matches("| created |").count(), MAX_ROWS);
        assert!(c.contains("… and 5 more rows"), "{c}");
    }
}
