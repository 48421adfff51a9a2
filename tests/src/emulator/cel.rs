//! CRD validation rules (`x-kubernetes-validations`), for the part of CEL this project's CRDs
//! use: comparisons of `duration(self)` with `duration('<literal>')`, joined by `&&`. The real
//! API server evaluates any CEL; a rule outside this subset is refused loudly here (a failed
//! write naming the rule) rather than silently not enforced.
//!
//! Messages follow apiextensions-apiserver's `cel/validation.go`: a failed rule reports
//! `Invalid value: "<schema type>": <rule message>`.

use serde_json::Value;

use super::error::Cause;

/// Checks every rule of `schema` against `value`, appending a cause per failed rule.
pub fn validate_rules(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    else {
        return;
    };
    let type_ = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    for rule in rules {
        let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
        let failure = match evaluate(text, value) {
            Ok(true) => continue,
            Ok(false) => rule
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("failed rule: {text}")),
            Err(e) => e,
        };
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: \"{type_}\": {failure}"),
        ));
    }
}

/// `Ok(holds)`, or `Err` when the rule cannot be evaluated (as CEL reports a runtime error).
fn evaluate(rule: &str, value: &Value) -> Result<bool, String> {
    let mut holds = true;
    for term in rule.split("&&") {
        holds &= comparison(term.trim(), value)?;
    }
    Ok(holds)
}

fn comparison(term: &str, value: &Value) -> Result<bool, String> {
    let unsupported = || format!("the emulator does not evaluate the CEL rule {term:?}");
    let rest = term
        .strip_prefix("duration(self)")
        .ok_or_else(unsupported)?
        .trim();
    let (op, literal) = ["<=", ">=", "<", ">", "=="]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|l| (*op, l.trim())))
        .ok_or_else(unsupported)?;
    let literal = literal
        .strip_prefix("duration('")
        .and_then(|l| l.strip_suffix("')"))
        .ok_or_else(unsupported)?;
    let bound = catalog_api::duration::parse(literal).map_err(|e| e.to_string())?;
    let text = value.as_str().ok_or_else(unsupported)?;
    let actual = catalog_api::duration::parse(text)
        .map_err(|_| format!("failed to evaluate rule {term:?}: invalid duration {text:?}"))?;
    Ok(match op {
        "<=" => actual <= bound,
        ">=" => actual >= bound,
        "<" => actual < bound,
        ">" => actual > bound,
        _ => actual == bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: &str, value: &str) -> Vec<String> {
        let schema = json!({"type": "string", "x-kubernetes-validations": [{"rule": rule, "message": "too long"}]});
        let mut causes = Vec::new();
        validate_rules(&schema, &json!(value), "spec.interval", &mut causes);
        causes.into_iter().map(|c| c.message).collect()
    }

    #[test]
    fn duration_bounds() {
        let rule = "duration(self) <= duration('720h')";
        assert!(check(rule, "1h").is_empty());
        assert!(check(rule, "720h").is_empty());
        assert_eq!(check(rule, "721h"), ["Invalid value: \"string\": too long"]);
        assert_eq!(check(rule, "2562047788015215h").len(), 1);
        let both = "duration(self) >= duration('30s') && duration(self) <= duration('1h')";
        assert!(check(both, "30s").is_empty());
        assert_eq!(check(both, "29s").len(), 1);
    }

    #[test]
    fn other_rules_are_refused_not_ignored() {
        let causes = check("self.size() < 3", "abc");
        assert!(causes[0].contains("does not evaluate"), "{causes:?}");
    }
}
