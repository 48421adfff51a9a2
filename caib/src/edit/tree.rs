//! A YAML document as byte ranges of the text it was read from: every scalar with its exact
//! span (quotes included), every key with its span, containers with where they start. Parsed
//! with serde-saphyr (the validator's parser), so what the editor sees is what the validator
//! sees. Only what editing needs is kept: values are compared as JSON.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A node and where it is in the text.
#[derive(Debug)]
pub struct Node {
    /// Byte offset of the node's first character (for a block container: of its first child).
    pub start: usize,
    /// Byte offset just past a scalar's last character (trailing whitespace of block scalars
    /// excluded); equal to `start` for containers, whose end is [`Node::end`].
    scalar_end: usize,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key of a mapping, its span, and its value.
#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub value: Node,
}

/// The document could not be read into spans.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// Parses one YAML document.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut node: Node = serde_saphyr::from_str(text).map_err(|e| ParseError(e.to_string()))?;
    node.fix_ends(text);
    Ok(node)
}

impl Node {
    /// The value as JSON, for comparing what two documents say regardless of how.
    pub fn json(&self) -> Value {
        match &self.kind {
            Kind::Scalar(v) => v.clone(),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.json()))
                    .collect(),
            ),
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// Whether the container is written in flow style (`[a, b]`, `{a: 1}`).
    pub fn is_flow(&self, text: &str) -> bool {
        !matches!(self.kind, Kind::Scalar(_))
            && matches!(text.as_bytes().get(self.start), Some(b'[' | b'{'))
    }

    /// Byte offset just past the node's last character: its closing bracket for a flow
    /// container, its last descendant otherwise.
    pub fn end(&self, text: &str) -> usize {
        let children = match &self.kind {
            Kind::Scalar(_) => return self.scalar_end,
            Kind::Seq(items) => items.iter().map(|n| n.end(text)).max(),
            Kind::Map(entries) => entries.iter().map(|e| e.end(text)).max(),
        };
        let last = children.unwrap_or(self.start + 1).max(self.start + 1);
        if !self.is_flow(text) {
            return last;
        }
        let close = if text.as_bytes()[self.start] == b'[' {
            ']'
        } else {
            '}'
        };
        text[last..].find(close).map_or(last, |i| last + i + 1)
    }

    /// The scalar's text as written (quotes included).
    pub fn source<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start..self.scalar_end]
    }

    fn fix_ends(&mut self, text: &str) {
        match &mut self.kind {
            Kind::Scalar(_) => {
                let written = &text[self.start..self.scalar_end.min(text.len())];
                self.scalar_end = self.start + written.trim_end().len();
            }
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.fix_ends(text)),
            Kind::Map(entries) => entries.iter_mut().for_each(|e| e.value.fix_ends(text)),
        }
    }
}

impl Entry {
    /// Just past the entry's last character (a null value ends with its key).
    pub fn end(&self, text: &str) -> usize {
        match self.value.kind {
            Kind::Scalar(Value::Null) => self.key_end,
            _ => self.value.end(text).max(self.key_end),
        }
    }
}

/// Start of the line holding `pos`.
pub fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Start of the line after the one holding the character before `pos` (the text's end when
/// it is the last line).
pub fn line_end(text: &str, pos: usize) -> usize {
    let from = pos.saturating_sub(1).min(text.len());
    text[from..].find('\n').map_or(text.len(), |i| from + i + 1)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) else {
            return Err(de::Error::custom("no byte offsets for a node"));
        };
        Ok(Node {
            start: start as usize,
            scalar_end: (start + len) as usize,
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Scalar(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Scalar(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Scalar(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Scalar(Value::String(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Scalar(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Scalar(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let span = key.referenced.span();
            let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) else {
                return Err(de::Error::custom("no byte offsets for a key"));
            };
            let value = map.next_value::<Node>()?;
            entries.push(Entry {
                key: key.value,
                key_start: start as usize,
                key_end: (start + len) as usize,
                value,
            });
        }
        Ok(Kind::Map(entries))
    }
}
