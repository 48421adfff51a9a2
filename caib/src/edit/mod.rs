//! Format-preserving edits of catalog files: every writing command (add, publish, promote,
//! tag, untag) changes only the lines it must, so a pull request shows the change and nothing
//! else; comments, quoting, key order and blank lines elsewhere stay as their authors wrote them.
//!
//! Why splicing at serde-saphyr's spans rather than a YAML editing crate: serde-saphyr is
//! already the validator's parser (so the editor reads the file exactly as the validator does)
//! and adds nothing to the build; `yamlpatch` brings tree-sitter's C grammar and a second YAML
//! parser, `yaml-edit` a rowan tree and its own parser, for edits that here are a handful of
//! keys of one known schema. What cannot be spliced safely (flow mappings, removing the first
//! key of a list item) is reported as [`EditError::Unsupported`], and the caller falls back to
//! writing the whole entry.

mod merge;
#[cfg(test)]
mod tests;
pub mod tree;

/// Why a file could not be edited in place.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read the file's YAML structure: {0}")]
    Parse(#[from] tree::ParseError),
    #[error("the file's top level is not a mapping")]
    NotAMapping,
    #[error("cannot edit in place: {0}")]
    Unsupported(String),
}

/// Replace `start..end` of the file by `text`.
#[derive(Debug)]
struct Splice {
    start: usize,
    end: usize,
    text: String,
}

/// `file` changed where `old` and `new` (two renderings of the same kind of document, the
/// entry as the command read it and as it wants it) differ, and nowhere else.
pub fn update(file: &str, old: &str, new: &str) -> Result<String, EditError> {
    let f = tree::parse(file)?;
    let o = tree::parse(old)?;
    let n = tree::parse(new)?;
    if f.entries().is_none() || n.entries().is_none() {
        return Err(EditError::NotAMapping);
    }
    let mut walk = merge::Walk {
        file,
        new,
        splices: Vec::new(),
    };
    walk.map(&f, Some(&o), &n)?;
    Ok(apply(file, walk.splices))
}

/// Applies non-overlapping splices from the end of the file. At one offset, what replaces text
/// goes first and insertions land before it in the order they were made.
fn apply(file: &str, splices: Vec<Splice>) -> String {
    let mut ordered: Vec<(usize, Splice)> = splices.into_iter().enumerate().collect();
    ordered.sort_by(|(i, a), (j, b)| {
        let inserts = |s: &Splice| s.start == s.end;
        b.start
            .cmp(&a.start)
            .then(inserts(a).cmp(&inserts(b)))
            .then(j.cmp(i))
    });
    let mut out = file.to_owned();
    for (_, s) in ordered {
        out.replace_range(s.start..s.end, &s.text);
    }
    out
}
