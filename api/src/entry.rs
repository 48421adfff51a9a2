//! Reading catalog entry files: YAML documents with the line and column of every node, so
//! every later error can point at the exact spot in the file.
//!
//! The reconciler reads blobs straight from Git objects and `caib` reads the working tree;
//! both hand bytes to [`parse_file`], so both see the same entries and the same errors.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diagnostic::Diagnostic;
use crate::expansion;

/// Largest entry file accepted. An entry is a few hundred bytes; anything near this is a
/// mistake (a committed image, a log) and would bloat the reconciler's memory.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// A YAML node with the position it starts at.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: u32,
    pub column: u32,
}

/// YAML value of a [`Node`]. Mappings keep their order and the keys' positions.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The child under `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Deepest node along a dotted field path (`spec.metadata.targets[0].name`), so an error
    /// about a field points at the field, or at its closest existing parent.
    pub fn locate(&self, path: &str) -> &Node {
        let mut node = self;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let (key, indexes) = match segment.find('[') {
                Some(i) => (&segment[..i], &segment[i..]),
                None => (segment, ""),
            };
            if !key.is_empty() {
                match node.get(key) {
                    Some(child) => node = child,
                    None => return node,
                }
            }
            for index in indexes
                .split(['[', ']'])
                .filter_map(|s| s.parse::<usize>().ok())
            {
                match &node.value {
                    Value::Seq(items) if index < items.len() => node = &items[index],
                    _ => return node,
                }
            }
        }
        node
    }

    /// Plain JSON, for typed deserialization once the structure is checked.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Human name of the node's type, for "expected a mapping, found a string".
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        expansion::charge::<D::Error>(std::mem::size_of::<Node>())?;
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            line: spanned.referenced.line() as u32,
            column: spanned.referenced.column() as u32,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        expansion::charge::<E>(v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        expansion::charge::<E>(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            expansion::charge::<A::Error>(key.len() + std::mem::size_of::<String>())?;
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// The diagnostic for a file of `size` bytes when it is over [`MAX_FILE_BYTES`]. Callers
/// that can learn the size without reading the file (a Git object header, file metadata)
/// call this first, so an oversized file is never loaded.
pub fn check_size(path: &str, size: u64) -> Option<Diagnostic> {
    (size > MAX_FILE_BYTES as u64).then(|| {
        Diagnostic::file(
            path,
            format!(
                "file is {size} bytes, over the {} KiB limit for an entry file ({MAX_FILE_BYTES} bytes): it is not read",
                MAX_FILE_BYTES / 1024
            ),
        )
    })
}

/// One YAML document of a file, parsed, or the reason it could not be.
#[derive(Debug)]
pub struct Document {
    /// Line (1-based, in the file) where the document's text starts.
    pub first_line: u32,
    pub root: Node,
}

/// Bytes of a file decoded and split into documents. Errors in one document do not hide the
/// others: a broken second document still lets the first one be read.
pub fn parse_file(path: &str, bytes: &[u8]) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    if let Some(oversized) = check_size(path, bytes.len() as u64) {
        diagnostics.push(oversized);
        return (Vec::new(), diagnostics);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let (line, column) = position_of(bytes, e.valid_up_to());
            diagnostics.push(Diagnostic::new(
                path,
                line,
                column,
                "file is not valid UTF-8 (entry files must be UTF-8 text)",
            ));
            return (Vec::new(), diagnostics);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    expansion::reset();
    for (first_line, chunk) in split_documents(text) {
        if is_blank(chunk) {
            continue;
        }
        if let Some((line, column)) = tab_indentation(chunk) {
            diagnostics.push(Diagnostic::new(
                path,
                first_line + line - 1,
                column,
                "tab character in indentation: YAML indentation must use spaces",
            ));
            continue;
        }
        match serde_saphyr::from_str_with_options::<Node>(chunk, yaml_options()) {
            Ok(mut root) => {
                shift_lines(&mut root, first_line - 1);
                documents.push(Document { first_line, root });
            }
            Err(_) if expansion::spent() => {
                diagnostics.push(Diagnostic::new(
                    path,
                    first_line,
                    1,
                    expansion::spent_diagnostic(),
                ));
                // The budget is the file's: its later documents are not parsed.
                break;
            }
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line() as u32, l.column() as u32))
                    .unwrap_or((1, 1));
                diagnostics.push(Diagnostic::new(
                    path,
                    first_line + line.max(1) - 1,
                    column.max(1),
                    format!("invalid YAML: {}", yaml_message(&e)),
                ));
            }
        }
    }
    if documents.is_empty() && diagnostics.is_empty() {
        diagnostics.push(Diagnostic::file(
            path,
            "file is empty: an entry file holds one CatalogImage manifest",
        ));
    }
    (documents, diagnostics)
}

/// YAML 1.2 core schema booleans only: `name: n` or `distro: no` are strings, not `false`
/// (the "Norway problem" of YAML 1.1).
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // The parser's own copies of anchored content (64 MiB by default) are bounded too, a
    // little above what the Node deserializer may build (see `expansion`), so the clearer
    // expansion message is the one a bomb normally gets.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_recorded_anchor_bytes = 4 * expansion::MAX_EXPANDED_BYTES;
    options.budget = Some(budget);
    options
}

/// The parser's message without its rendered source snippet (we print our own location).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("").trim();
    // Drop a trailing " at line X, column Y" the parser adds: the location is in our prefix.
    match first.find(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

/// Splits on `---` / `...` document markers at the start of a line, keeping each
/// document's first line number.
fn split_documents(text: &str) -> Vec<(u32, &str)> {
    let mut documents = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u32;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_marker = |m: &str| {
            trimmed == m
                || trimmed.starts_with(&format!("{m} "))
                || trimmed.starts_with(&format!("{m}\t"))
        };
        if is_marker("---") || trimmed == "..." {
            documents.push((start_line, &text[start..offset]));
            // Content after "--- " on the marker line belongs to the next document.
            start = offset + if trimmed == "..." { line.len() } else { 3 };
            start_line = index as u32 + 1;
            if trimmed == "..." || trimmed == "---" {
                start = offset + line.len();
                start_line = index as u32 + 2;
            }
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents
}

fn is_blank(chunk: &str) -> bool {
    chunk
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// First tab used as indentation (1-based line and column), outside block scalars' content
/// is not distinguished: a tab before the first non-blank character is always suspicious.
fn tab_indentation(chunk: &str) -> Option<(u32, u32)> {
    for (index, line) in chunk.lines().enumerate() {
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if let Some(col) = indent.find('\t') {
            if line.trim().is_empty() {
                continue;
            }
            return Some((index as u32 + 1, col as u32 + 1));
        }
    }
    None
}

fn shift_lines(node: &mut Node, by: u32) {
    node.line += by;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| shift_lines(n, by)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| shift_lines(n, by)),
        _ => {}
    }
}

/// 1-based line and column of a byte offset.
fn position_of(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() as u32 + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    (line, (offset - line_start) as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_positions() {
        let (docs, diags) = parse_file("a.yaml", b"kind: X\nspec:\n  registryUrl: quay.io/a\n");
        assert!(diags.is_empty(), "{diags:?}");
        let root = &docs[0].root;
        let url = root.locate("spec.registryUrl");
        assert_eq!((url.line, url.column), (3, 16));
        assert_eq!(url.as_str(), Some("quay.io/a"));
        assert_eq!(
            root.locate("spec.missing").line,
            3,
            "falls back to the parent"
        );
    }

    #[test]
    fn documents_keep_their_line_numbers() {
        let text = "a: 1\n---\nb: 2\nc: [\n";
        let (docs, diags) = parse_file("m.yaml", text.as_bytes());
        assert_eq!(docs.len(), 1);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].line >= 3, "{:?}", diags[0]);
        assert!(
            diags[0].message.starts_with("invalid YAML"),
            "{:?}",
            diags[0]
        );
    }

    #[test]
    fn sequence_positions_are_shifted_too() {
        let text = "x: 0\n---\nitems:\n  - name: a\n  - name: b\n";
        let (docs, _) = parse_file("s.yaml", text.as_bytes());
        assert_eq!(docs[1].root.locate("items[1].name").line, 5);
    }

    #[test]
    fn tabs_empty_utf8_and_size_are_reported() {
        let (_, d) = parse_file("t.yaml", b"spec:\n\tname: x\n");
        assert_eq!((d[0].line, d[0].column), (2, 1));
        assert!(d[0].message.contains("tab"));

        let (_, d) = parse_file("e.yaml", b"\n# only a comment\n");
        assert!(d[0].message.contains("empty"));

        let (_, d) = parse_file("u.yaml", b"name: ok\nbad: \xff\xfe\n");
        assert_eq!((d[0].line, d[0].column), (2, 6));
        assert!(d[0].message.contains("UTF-8"));

        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        let (_, d) = parse_file("big.yaml", &big);
        assert!(d[0].message.contains("256 KiB"));
    }

    #[test]
    fn an_alias_bomb_stops_at_the_expansion_budget() {
        // 100 KiB of text, 2 GiB once every alias is resolved.
        let mut text = format!("a: &a \"{}\"\n", "x".repeat(100 * 1024 - 64));
        text.push_str("b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n");
        text.push_str("c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n");
        text.push_str("d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n");
        assert!(text.len() < 101 * 1024, "premise: a file under 101 KiB");
        let (docs, d) = parse_file("bomb.yaml", text.as_bytes());
        assert!(docs.is_empty());
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.contains("expands past 4 MiB"), "{d:?}");
        // The budget is per file: the next file parses.
        let (docs, d) = parse_file("ok.yaml", b"a: &a x\nb: *a\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(docs[0].root.locate("b").as_str(), Some("x"));
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let (docs, _) = parse_file("b.yaml", b"name: n\nother: yes\nflag: true\n");
        let root = &docs[0].root;
        assert_eq!(root.locate("name").as_str(), Some("n"));
        assert_eq!(root.locate("other").as_str(), Some("yes"));
        assert_eq!(root.locate("flag").value, Value::Bool(true));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let (_, d) = parse_file("d.yaml", b"a: 1\na: 2\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].line, 2);
    }
}
