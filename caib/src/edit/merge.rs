//! Turning "the command changed these fields" into splices of the file: a three-way walk of
//! the file as written, the entry as the command read it (`old`) and as it wants it (`new`).
//! Only where `old` and `new` differ is the file touched; new text is cut from `new`'s own
//! rendering and indented like its neighbours in the file.

use serde_json::Value;

use super::tree::{Entry, Kind, Node, line_end, line_start};
use super::{EditError, Splice};

/// The three documents: the file, the entry as read, the entry as wanted (each with its text).
pub struct Walk<'a> {
    pub file: &'a str,
    pub new: &'a str,
    pub splices: Vec<Splice>,
}

impl Walk<'_> {
    fn splice(&mut self, start: usize, end: usize, text: String) {
        self.splices.push(Splice { start, end, text });
    }

    /// Makes mapping `f` say what `n` says where `o` says something else.
    pub fn map(&mut self, f: &Node, o: Option<&Node>, n: &Node) -> Result<(), EditError> {
        let (Some(file_entries), Some(new_entries)) = (f.entries(), n.entries()) else {
            return Err(EditError::Unsupported("a mapping changed its type".into()));
        };
        if f.is_flow(self.file) {
            return Err(EditError::Unsupported("a flow mapping ({...})".into()));
        }
        for (i, ne) in new_entries.iter().enumerate() {
            let oe = o.and_then(|o| o.get(&ne.key));
            if oe.is_some_and(|oe| oe.value.json() == ne.value.json()) {
                continue;
            }
            match f.get(&ne.key) {
                Some(fe) => self.entry(fe, oe.map(|e| &e.value), ne)?,
                None => {
                    // After the last key that precedes it in the wanted order and is in the file.
                    let before = new_entries[..i].iter().rev().find_map(|p| f.get(&p.key));
                    self.insert(file_entries, before, ne)?;
                }
            }
        }
        for oe in o.and_then(Node::entries).unwrap_or_default() {
            if n.get(&oe.key).is_none()
                && let Some(fe) = f.get(&oe.key)
            {
                self.remove(fe)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, fe: &Entry, o: Option<&Node>, ne: &Entry) -> Result<(), EditError> {
        let (fv, nv) = (&fe.value, &ne.value);
        match (&fv.kind, &nv.kind) {
            (Kind::Scalar(old), Kind::Scalar(_))
                if !old.is_null() && self.on_key_line(fe) && !self.new_multiline(nv) =>
            {
                let text = self.scalar(fv, nv);
                self.splice(fv.start, fv.end(self.file), text);
                Ok(())
            }
            (Kind::Map(_), Kind::Map(_)) if !fv.is_flow(self.file) => self.map(fv, o, nv),
            (Kind::Seq(fi), Kind::Seq(ni)) if all_scalars(fi) && all_scalars(ni) => {
                if self.scalars(fv, nv)? {
                    Ok(())
                } else {
                    self.replace(fe, ne)
                }
            }
            (Kind::Seq(fi), Kind::Seq(ni))
                if fi.len() == ni.len() && !fv.is_flow(self.file) && !all_scalars(fi) =>
            {
                let oi = match o.map(|o| &o.kind) {
                    Some(Kind::Seq(oi)) if oi.len() == fi.len() => Some(oi),
                    _ => None,
                };
                for (k, (f, n)) in fi.iter().zip(ni).enumerate() {
                    let o = oi.map(|oi| &oi[k]);
                    if o.is_some_and(|o| o.json() == n.json()) || f.json() == n.json() {
                        continue;
                    }
                    self.map(f, o, n)?;
                }
                Ok(())
            }
            _ => self.replace(fe, ne),
        }
    }

    fn on_key_line(&self, fe: &Entry) -> bool {
        let value = &self.file[fe.key_end..fe.value.end(self.file)];
        !value.contains('\n')
    }

    fn new_multiline(&self, nv: &Node) -> bool {
        nv.source(self.new).contains('\n') || nv.source(self.new).starts_with(['|', '>'])
    }

    /// The wanted scalar, quoted the way the file quoted the old one where that still reads
    /// the same (a double-quoted `"9.4"` stays double-quoted).
    fn scalar(&self, fv: &Node, nv: &Node) -> String {
        let written = nv.source(self.new).to_owned();
        let Kind::Scalar(Value::String(s)) = &nv.kind else {
            return written;
        };
        match fv.source(self.file).as_bytes().first() {
            Some(b'"') => serde_json::to_string(s).unwrap_or(written),
            Some(b'\'') if !s.contains('\n') => format!("'{}'", s.replace('\'', "''")),
            _ => written,
        }
    }

    /// A list of scalars (tags): removed items lose their line, added ones get a line like
    /// the last item's, at the end. False when that cannot give the wanted order.
    fn scalars(&mut self, fv: &Node, nv: &Node) -> Result<bool, EditError> {
        let (Kind::Seq(fi), Kind::Seq(ni)) = (&fv.kind, &nv.kind) else {
            return Ok(false);
        };
        let wanted: Vec<Value> = ni.iter().map(Node::json).collect();
        if fv.is_flow(self.file) {
            let items: Vec<String> = ni
                .iter()
                .map(|n| match fi.first() {
                    Some(like) => self.scalar(like, n),
                    None => n.source(self.new).to_owned(),
                })
                .collect();
            self.splice(
                fv.start,
                fv.end(self.file),
                format!("[{}]", items.join(", ")),
            );
            return Ok(true);
        }
        let Some(last) = fi.last() else {
            return Ok(false);
        };
        let kept: Vec<&Node> = fi.iter().filter(|f| wanted.contains(&f.json())).collect();
        let mut result: Vec<Value> = kept.iter().map(|f| f.json()).collect();
        let added: Vec<&Node> = ni.iter().filter(|n| !result.contains(&n.json())).collect();
        result.extend(added.iter().map(|n| n.json()));
        if result != wanted || kept.len() + added.len() != ni.len() {
            return Ok(false);
        }
        let prefix_start = line_start(self.file, last.start);
        let prefix = &self.file[prefix_start..last.start];
        if !prefix.trim_start().starts_with('-') || last.source(self.file).contains('\n') {
            return Ok(false);
        }
        let at = line_end(self.file, last.end(self.file));
        let newline = if self.file[..at].ends_with('\n') {
            ""
        } else {
            "\n"
        };
        let mut text = String::new();
        for n in added {
            text.push_str(&format!("{newline}{prefix}{}\n", self.scalar(last, n)));
        }
        for f in fi.iter().filter(|f| !wanted.contains(&f.json())) {
            let start = line_start(self.file, f.start);
            self.splice(start, line_end(self.file, f.end(self.file)), String::new());
        }
        if !text.is_empty() {
            self.splice(at, at, text);
        }
        Ok(true)
    }

    /// Inserts the wanted entry `ne` after `before` (else before the first entry).
    fn insert(
        &mut self,
        entries: &[Entry],
        before: Option<&Entry>,
        ne: &Entry,
    ) -> Result<(), EditError> {
        let first = entries
            .first()
            .ok_or_else(|| EditError::Unsupported("an empty mapping".into()))?;
        let indent = self.column(first);
        let at = match before {
            Some(prev) => line_end(self.file, prev.end(self.file)),
            None if self.file[line_start(self.file, first.key_start)..first.key_start]
                .trim()
                .is_empty() =>
            {
                line_start(self.file, first.key_start)
            }
            // The first key of a list item (`- name: x`): the new key goes after it.
            None => line_end(self.file, first.end(self.file)),
        };
        let mut text = self.cut(ne, &" ".repeat(indent));
        if !self.file[..at].ends_with('\n') && at > 0 {
            text.insert(0, '\n');
        }
        self.splice(at, at, text);
        Ok(())
    }

    fn remove(&mut self, fe: &Entry) -> Result<(), EditError> {
        let start = line_start(self.file, fe.key_start);
        if !self.file[start..fe.key_start].trim().is_empty() {
            return Err(EditError::Unsupported(format!(
                "removing {:?}, the first key of a list item",
                fe.key
            )));
        }
        self.splice(start, line_end(self.file, fe.end(self.file)), String::new());
        Ok(())
    }

    /// Replaces the whole entry `fe` (key and value lines) by the wanted `ne`.
    fn replace(&mut self, fe: &Entry, ne: &Entry) -> Result<(), EditError> {
        let start = line_start(self.file, fe.key_start);
        let first = self.file[start..fe.key_start].to_owned();
        let mut text = self.cut(ne, &" ".repeat(self.column(fe)));
        text.replace_range(..self.column(fe), &first);
        self.splice(start, line_end(self.file, fe.end(self.file)), text);
        Ok(())
    }

    /// Column of a key in the file (characters before it on its line).
    fn column(&self, e: &Entry) -> usize {
        self.file[line_start(self.file, e.key_start)..e.key_start]
            .chars()
            .count()
    }

    /// The lines of entry `ne` in the wanted rendering, re-indented to `indent`.
    fn cut(&self, ne: &Entry, indent: &str) -> String {
        let start = line_start(self.new, ne.key_start);
        let from = ne.key_start - start;
        let end = line_end(self.new, ne.end(self.new));
        let mut out = String::new();
        for line in self.new[start..end].split_inclusive('\n') {
            let rest = line.get(from..).unwrap_or("");
            if rest.trim().is_empty() {
                out.push_str(if line.ends_with('\n') { "\n" } else { "" });
            } else {
                out.push_str(indent);
                out.push_str(rest);
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

fn all_scalars(items: &[Node]) -> bool {
    items.iter().all(|n| matches!(n.kind, Kind::Scalar(_)))
}
