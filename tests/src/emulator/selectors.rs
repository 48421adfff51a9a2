//! Label and field selectors, with the grammar and semantics of `k8s.io/apimachinery/pkg/labels`
//! and `pkg/fields`: `!=` and `notin` also match objects that lack the label, which is the
//! detail that most often differs between fakes and a real cluster.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed `labelSelector`: all requirements must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn parse_set(rest: &str, term: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: found '{rest}', expected: '(' in {term:?}")
        })?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        if key.is_empty() || !key.chars().all(is_key_char) {
            return Err(format!("invalid label key in {term:?}"));
        }
        return Ok(Requirement::NotExists(key.to_string()));
    }
    let key_end = term.find(|c: char| !is_key_char(c)).unwrap_or(term.len());
    let key = term[..key_end].to_string();
    if key.is_empty() {
        return Err(format!("unable to parse requirement: {term:?}: empty key"));
    }
    let rest = term[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(key));
    }
    let value = |r: &str| -> Result<String, String> {
        let v = r.trim();
        if v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            Ok(v.to_string())
        } else {
            Err(format!("invalid label value: {v:?} in {term:?}"))
        }
    };
    if let Some(r) = rest.strip_prefix("==") {
        return Ok(Requirement::Eq(key, value(r)?));
    }
    if let Some(r) = rest.strip_prefix("!=") {
        return Ok(Requirement::NotEq(key, value(r)?));
    }
    if let Some(r) = rest.strip_prefix('=') {
        return Ok(Requirement::Eq(key, value(r)?));
    }
    let num = |r: &str| -> Result<i64, String> {
        r.trim().parse::<i64>().map_err(|_| {
            format!("for 'Gt', 'Lt' operators, the value must be an integer in {term:?}")
        })
    };
    if let Some(r) = rest.strip_prefix('>') {
        return Ok(Requirement::Gt(key, num(r)?));
    }
    if let Some(r) = rest.strip_prefix('<') {
        return Ok(Requirement::Lt(key, num(r)?));
    }
    if let Some(r) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(key, parse_set(r, term)?));
    }
    if let Some(r) = rest.strip_prefix("in") {
        return Ok(Requirement::In(key, parse_set(r, term)?));
    }
    Err(format!("unable to parse requirement: {term:?}"))
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, String> {
        split_terms(s)
            .iter()
            .map(|t| parse_term(t))
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }

    /// Convenience: match against an object's `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(obj.pointer("/metadata/labels").and_then(Value::as_object))
    }
}

/// A parsed `fieldSelector`: `key=value`, `key==value` and `key!=value` terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter; `allowed` names the supported field labels
    /// (the real server answers 400 for others).
    pub fn parse(s: &str, allowed: impl Fn(&str) -> bool) -> Result<Self, String> {
        let mut terms = Vec::new();
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = t.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = t.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = t.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{t}'"));
            };
            let k = k.trim();
            if !allowed(k) {
                return Err(format!("field label not supported: {k}"));
            }
            terms.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Evaluates dotted field paths against the object; missing fields compare as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let mut cur = Some(obj);
            for part in k.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn all_operators() {
        let l = labels(json!({"arch": "arm64", "distro": "cs9", "tier": "3"}));
        let m = |s: &str| LabelSelector::parse(s).expect(s).matches(Some(&l));
        assert!(m("arch=arm64"));
        assert!(m("arch==arm64"));
        assert!(!m("arch!=arm64"));
        assert!(m("missing!=x"), "!= matches objects without the label");
        assert!(m("arch in (amd64, arm64)"));
        assert!(!m("arch notin (amd64,arm64)"));
        assert!(m("missing notin (a)"));
        assert!(m("distro"));
        assert!(!m("!distro"));
        assert!(m("!missing"));
        assert!(m("tier>2,tier<4"));
        assert!(m("arch=arm64,distro in (cs9),!missing"));
        assert!(!m("arch=arm64,distro=f40"));
        assert!(LabelSelector::parse("").expect("empty").matches(None));
    }

    #[test]
    fn prefixed_keys_and_errors() {
        let l = labels(json!({"automotive.sdv.cloud.redhat.com/architecture": "amd64"}));
        let s = LabelSelector::parse("automotive.sdv.cloud.redhat.com/architecture=amd64")
            .expect("parse");
        assert!(s.matches(Some(&l)));
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "default"}});
        let allowed = |k: &str| k.starts_with("metadata.");
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace!=kube-system", allowed)
            .expect("parse");
        assert!(f.matches(&obj));
        let f = FieldSelector::parse("metadata.name==b", allowed).expect("parse");
        assert!(!f.matches(&obj));
        assert!(FieldSelector::parse("spec.x=1", allowed).is_err());
    }
}
