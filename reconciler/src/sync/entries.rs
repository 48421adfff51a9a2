//! Reading and validating the entries of a revision, parsing only blobs that changed since
//! the previous revision (a 10,000-entry environment with one changed file parses one file).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use catalog_api::Diagnostic;
use catalog_api::validate::{Entry, Report, Rules, combine_files, validate_file};
use git2::{Oid, Repository};

use crate::git::SourceError;
use crate::git::tree::{FileBlob, list_files, oversized_config, read_entry_blob};

/// Per-file validation results by path: a file whose blob did not change is not read or
/// parsed again. The entries themselves are kept once, in the last report (a 10,000-entry
/// environment would otherwise be held twice); per file only its blob, the number of entries
/// it defined and its own diagnostics are remembered. The map is updated in place, so a
/// one-file change at 100,000 files does not build a second map of every path.
#[derive(Default)]
pub struct EntryCache {
    files: HashMap<String, FileResult>,
    /// Counts [`EntryCache::read`]s that walked a tree: a file not marked with the current
    /// count was not listed, and is forgotten.
    reads: u64,
    rules_key: String,
    /// The last report and the (commit, dir) it is for: a resync of the same revision
    /// (drift, status events) reuses it without walking the tree. The next revision takes
    /// the unchanged files' entries out of it.
    last: Option<(String, Arc<Report>)>,
    /// Blobs parsed by the last [`EntryCache::read`] (what changed).
    pub parsed_last: usize,
}

/// What one file gave at one blob.
struct FileResult {
    blob: Oid,
    entries: usize,
    diagnostics: Vec<Diagnostic>,
    /// The [`EntryCache::reads`] count of the last read that listed the file.
    listed_by: u64,
}

impl EntryCache {
    /// The validation report of `dir` at `commit`, as `validate_environment` would produce it.
    /// More than `max_files` entry files is an error, found before any file is parsed.
    pub fn read(
        &mut self,
        repo: &Repository,
        commit: &str,
        dir: &str,
        rules: &Rules,
        max_files: usize,
    ) -> Result<Arc<Report>, SourceError> {
        let rules_key = format!("{rules:?}");
        if rules_key != self.rules_key {
            self.files.clear();
            self.last = None;
            self.rules_key = rules_key;
        }
        let last_key = format!("{commit}\0{dir}");
        if let Some((key, report)) = &self.last
            && *key == last_key
        {
            self.parsed_last = 0;
            return Ok(report.clone());
        }
        let (listing, listing_diagnostics) = list_files(repo, commit, dir, max_files)?;
        // The previous revision's entries (nobody else holds the report between syncs) are
        // kept in their own vector, in place: the entries of changed or removed files are
        // dropped from it and the changed files' entries appended, so a 100,000-entry
        // environment is never held in two vectors at once (the report sorts them anyway).
        let mut entries: Vec<Entry> = match self.last.take() {
            Some((_, report)) => Arc::try_unwrap(report)
                .map(|r| r.entries)
                .unwrap_or_else(|shared| shared.entries.clone()),
            None => Vec::new(),
        };
        let reused = self.reusable(&listing, &entries);
        entries.retain(|e| reused.contains(e.path.as_str()));
        // One entry per file is the rule: room for exactly that, instead of the doubling
        // growth that left up to half of a 100,000-entry vector (~1 KiB per entry) unused.
        entries.reserve_exact(listing.len().saturating_sub(reused.len()));
        let mut diagnostics = listing_diagnostics;
        diagnostics.extend(oversized_config(repo, commit));
        let changed: Vec<&FileBlob> = listing
            .iter()
            .filter(|file| !reused.contains(file.path.as_str()))
            .collect();
        self.parsed_last = changed.len();
        let parsed = Parsing {
            repo,
            rules,
            files: changed.chunks(PARSE_CHUNK),
            ready: Vec::new().into_iter(),
        };
        self.record(&listing, &reused, parsed, &mut entries, &mut diagnostics);
        drop(reused);
        let report = Arc::new(combine_files([(entries, diagnostics)]));
        self.last = Some((last_key, report.clone()));
        Ok(report)
    }
}

impl EntryCache {
    /// Takes each listed file's results (remembered when `reused`, else the next of `parsed`)
    /// into `entries` and `diagnostics`, remembers the parsed ones, and forgets the files
    /// `listing` no longer has.
    fn record(
        &mut self,
        listing: &[FileBlob],
        reused: &HashSet<&str>,
        mut parsed: Parsing<'_>,
        entries: &mut Vec<Entry>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        self.reads += 1;
        for file in listing {
            if reused.contains(file.path.as_str()) {
                let known = self.files.get_mut(&file.path).expect("checked by reusable");
                known.listed_by = self.reads;
                diagnostics.extend(known.diagnostics.iter().cloned());
                continue;
            }
            let (file_entries, file_diagnostics) =
                parsed.next().expect("one result per changed file");
            diagnostics.extend(file_diagnostics.iter().cloned());
            let result = FileResult {
                blob: file.blob,
                entries: file_entries.len(),
                diagnostics: file_diagnostics,
                listed_by: self.reads,
            };
            entries.extend(file_entries);
            match self.files.get_mut(&file.path) {
                Some(known) => *known = result,
                None => {
                    self.files.insert(file.path.clone(), result);
                }
            }
        }
        let reads = self.reads;
        self.files.retain(|_, file| file.listed_by == reads);
    }

    /// Paths of the listed files whose blob is unchanged and whose entries are all among
    /// `previous`: a file with fewer entries than it defined lost some as duplicates of
    /// another file's, so it is parsed again.
    fn reusable<'a>(&self, listing: &'a [FileBlob], previous: &[Entry]) -> HashSet<&'a str> {
        let mut per_path: HashMap<&str, usize> = HashMap::with_capacity(listing.len());
        for entry in previous {
            *per_path.entry(entry.path.as_str()).or_default() += 1;
        }
        listing
            .iter()
            .filter(|file| {
                self.files.get(&file.path).is_some_and(|known| {
                    known.blob == file.blob
                        && per_path.get(file.path.as_str()).copied().unwrap_or(0) == known.entries
                })
            })
            .map(|file| file.path.as_str())
            .collect()
    }
}

/// Threads that parse one revision's changed files (the pod's CPUs, at most this many).
const PARSE_THREADS: usize = 4;

/// Fewer changed files than this are parsed on the calling thread.
const PARALLEL_MIN: usize = 512;

/// Changed files parsed together; only one chunk's results wait to be moved into the entries.
const PARSE_CHUNK: usize = 4096;

/// One file's entries and diagnostics.
type Parsed = (Vec<Entry>, Vec<Diagnostic>);

/// The changed files' results in their order, parsed [`PARSE_CHUNK`] files at a time.
struct Parsing<'a> {
    repo: &'a Repository,
    rules: &'a Rules,
    files: std::slice::Chunks<'a, &'a FileBlob>,
    ready: std::vec::IntoIter<Parsed>,
}

impl Iterator for Parsing<'_> {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        loop {
            if let Some(parsed) = self.ready.next() {
                return Some(parsed);
            }
            self.ready = parse_all(self.repo, self.files.next()?, self.rules).into_iter();
        }
    }
}

/// Parses `files` in their order, on up to [`PARSE_THREADS`] threads for a large change
/// (a first sync of 100,000 files spends seconds here). Each thread opens its own handle on
/// the repository, which cannot be shared between threads; a part whose thread cannot open
/// one is parsed on the calling thread.
fn parse_all(repo: &Repository, files: &[&FileBlob], rules: &Rules) -> Vec<Parsed> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(PARSE_THREADS);
    if threads < 2 || files.len() < PARALLEL_MIN {
        return files.iter().map(|f| parse_blob(repo, f, rules)).collect();
    }
    let (path, size) = (repo.path(), files.len().div_ceil(threads));
    let parts: Vec<Option<Vec<Parsed>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(size)
            .map(|part| {
                scope.spawn(move || {
                    let own = Repository::open(path).ok()?;
                    Some(part.iter().map(|f| parse_blob(&own, f, rules)).collect())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    parts
        .into_iter()
        .zip(files.chunks(size))
        .flat_map(|(done, part)| {
            done.unwrap_or_else(|| part.iter().map(|f| parse_blob(repo, f, rules)).collect())
        })
        .collect()
}

/// The entries and diagnostics of one file; an oversized blob is reported unread.
fn parse_blob(repo: &Repository, file: &FileBlob, rules: &Rules) -> Parsed {
    match read_entry_blob(repo, &file.path, file.blob) {
        Ok(bytes) => validate_file(&file.path, &bytes, rules),
        Err(diagnostic) => (Vec::new(), vec![diagnostic]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{commit_all, git};

    fn entry(name: &str, tag: &str) -> String {
        format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: quay.io/a/{name}:{tag}\n"
        )
    }

    #[test]
    fn only_changed_blobs_are_parsed_and_results_match_the_validator() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path();
        git(work, &["init", "-q", "-b", "main"]);
        let dir = work.join("env");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..20 {
            std::fs::write(dir.join(format!("e{i}.yaml")), entry(&format!("e{i}"), "1")).unwrap();
        }
        std::fs::write(dir.join(".hidden.yaml"), "not: parsed").unwrap();
        std::fs::write(dir.join("README.md"), "ignored").unwrap();
        let first = commit_all(work, "one");
        let repo = Repository::open(work).unwrap();
        let rules = Rules::default();
        let mut cache = EntryCache::default();
        let report = cache.read(&repo, &first, "env", &rules, 100).unwrap();
        assert_eq!(cache.parsed_last, 20);
        assert_eq!(report.entries.len(), 20);
        let again = cache.read(&repo, &first, "./env/", &rules, 100).unwrap();
        assert_eq!(cache.parsed_last, 0);
        assert_eq!(again.entries, report.entries);

        std::fs::write(dir.join("e3.yaml"), entry("e3", "2")).unwrap();
        std::fs::write(dir.join("e4.yaml"), "kind: [broken").unwrap();
        std::fs::write(dir.join("dup.yaml"), entry("e5", "9")).unwrap();
        let second = commit_all(work, "two");
        let report = cache.read(&repo, &second, "env", &rules, 100).unwrap();
        assert_eq!(
            cache.parsed_last, 3,
            "only the three changed blobs are parsed"
        );
        let expected = catalog_api::repo::validate_environment_dir(work, "env", &rules);
        assert_eq!(report.entries, expected.entries);
        assert_eq!(report.diagnostics, expected.diagnostics);
        assert!(report.broken_paths().contains("env/e4.yaml"));
        assert!(report.broken_paths().contains("env/dup.yaml"));
        drop((report, again));

        // The duplicate goes away: the unchanged e5.yaml, whose entry the last report dropped,
        // is parsed again and its entry is back; the other unchanged files come from the cache.
        std::fs::remove_file(dir.join("dup.yaml")).unwrap();
        let third = commit_all(work, "three");
        let report = cache.read(&repo, &third, "env", &rules, 100).unwrap();
        assert_eq!(cache.parsed_last, 1, "only e5.yaml is parsed again");
        let expected = catalog_api::repo::validate_environment_dir(work, "env", &rules);
        assert_eq!(report.entries, expected.entries);
        assert_eq!(report.diagnostics, expected.diagnostics);
        assert!(report.entries.iter().any(|e| e.name() == "e5"));
        assert_eq!(cache.files.len(), 20, "the removed dup.yaml is forgotten");
    }
    #[test]
    fn oversized_blobs_are_reported_unread_and_too_many_files_are_refused_before_parsing() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path();
        git(work, &["init", "-q", "-b", "main"]);
        let dir = work.join("env");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..3 {
            std::fs::write(dir.join(format!("e{i}.yaml")), entry(&format!("e{i}"), "1")).unwrap();
        }
        std::fs::write(dir.join("zeros.yaml"), vec![0u8; 1024 * 1024]).unwrap();
        std::fs::write(work.join("catalog.yaml"), vec![b'#'; 300 * 1024]).unwrap();
        let commit = commit_all(work, "one");
        let repo = Repository::open(work).unwrap();
        let mut cache = EntryCache::default();
        let report = cache
            .read(&repo, &commit, "env", &Rules::default(), 4)
            .unwrap();
        assert_eq!(report.entries.len(), 3, "the other entries are unaffected");
        let errors: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            [
                "catalog.yaml:1:1: file is 307200 bytes, over the 256 KiB limit for an entry file (262144 bytes): it is not read",
                "env/zeros.yaml:1:1: file is 1048576 bytes, over the 256 KiB limit for an entry file (262144 bytes): it is not read",
            ]
        );

        let mut cache = EntryCache::default();
        let error = cache
            .read(&repo, &commit, "env", &Rules::default(), 3)
            .unwrap_err();
        assert_eq!(error.read_reason(), "TooManyEntries");
        let message = error.to_string();
        assert!(message.contains("env at "), "{message}");
        assert!(
            message.contains("holds 4 entry files, over the limit of 3"),
            "{message}"
        );
        assert!(message.contains("--max-entries-per-source"), "{message}");
        assert_eq!(cache.parsed_last, 0, "nothing was parsed");
    }

    #[test]
    fn a_large_change_parsed_in_chunks_on_several_threads_matches_the_validator_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path();
        git(work, &["init", "-q", "-b", "main"]);
        let dir = work.join("env");
        std::fs::create_dir(&dir).unwrap();
        let files = PARSE_CHUNK + PARALLEL_MIN;
        for i in 0..files {
            std::fs::write(
                dir.join(format!("e{i:04}.yaml")),
                entry(&format!("e{i}"), "1"),
            )
            .unwrap();
        }
        std::fs::write(dir.join("e0100.yaml"), "kind: [broken").unwrap();
        std::fs::write(dir.join("e1200.yaml"), entry("e7", "2")).unwrap();
        let commit = commit_all(work, "many");
        let repo = Repository::open(work).unwrap();
        let rules = Rules::default();
        let mut cache = EntryCache::default();
        let report = cache.read(&repo, &commit, "env", &rules, files).unwrap();
        assert_eq!(
            cache.parsed_last, files,
            "the premise: one change parsed in parallel"
        );
        let expected = catalog_api::repo::validate_environment_dir(work, "env", &rules);
        assert_eq!(report.entries, expected.entries);
        assert_eq!(report.diagnostics, expected.diagnostics);
        assert!(report.broken_paths().contains("env/e0100.yaml"));
        assert_eq!(
            report.entries.len(),
            files - 3,
            "the broken file and both duplicates"
        );
    }
}
