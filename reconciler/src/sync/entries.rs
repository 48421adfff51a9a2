//! Reading and validating the entries of a revision, parsing only blobs that changed since
//! the previous revision (a 10,000-entry environment with one changed file parses one file).

use std::collections::HashMap;

use catalog_api::Diagnostic;
use catalog_api::validate::{Entry, Report, Rules, combine_files, validate_file};
use git2::{Oid, Repository};

use crate::source::SourceError;
use crate::source::tree::{list_files, read_blob};

type FileResult = (Vec<Entry>, Vec<Diagnostic>);

/// Per-file validation results keyed by (path, blob id): a file whose blob did not change
/// is not read or parsed again.
#[derive(Default)]
pub struct EntryCache {
    files: HashMap<(String, Oid), FileResult>,
    rules_key: String,
    /// Blobs parsed by the last [`EntryCache::read`] (what changed).
    pub parsed_last: usize,
}

impl EntryCache {
    /// The validation report of `dir` at `commit`, as `validate_environment` would produce it.
    pub fn read(
        &mut self,
        repo: &Repository,
        commit: &str,
        dir: &str,
        rules: &Rules,
    ) -> Result<Report, SourceError> {
        let rules_key = format!("{rules:?}");
        if rules_key != self.rules_key {
            self.files.clear();
            self.rules_key = rules_key;
        }
        let (listing, listing_diagnostics) = list_files(repo, commit, dir)?;
        let mut next: HashMap<(String, Oid), FileResult> = HashMap::with_capacity(listing.len());
        self.parsed_last = 0;
        for file in &listing {
            let key = (file.path.clone(), file.blob);
            let result = match self.files.remove(&key) {
                Some(cached) => cached,
                None => {
                    self.parsed_last += 1;
                    match read_blob(repo, file.blob) {
                        Ok(bytes) => validate_file(&file.path, &bytes, rules),
                        Err(e) => (
                            Vec::new(),
                            vec![Diagnostic::file(
                                &file.path,
                                format!("cannot read the blob: {}", e.message()),
                            )],
                        ),
                    }
                }
            };
            next.insert(key, result);
        }
        self.files = next;
        let mut report = combine_files(
            listing
                .iter()
                .map(|f| self.files[&(f.path.clone(), f.blob)].clone()),
        );
        report.diagnostics.extend(listing_diagnostics);
        report.diagnostics.sort();
        Ok(report)
    }
}
