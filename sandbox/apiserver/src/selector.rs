//! Label and field selectors with the syntax of `labelSelector=` / `fieldSelector=`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<LabelReq>,
}

/// Splits on commas that are not inside parentheses (`a in (x,y),b=c`).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement {whole:?}: expected a (value,...) set")
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            reqs.push(parse_label_req(part)?);
        }
        Ok(Self { reqs })
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

fn parse_label_req(part: &str) -> Result<LabelReq, String> {
    let bad = |why: &str| format!("unable to parse requirement {part:?}: {why}");
    if let Some(k) = part.strip_prefix('!') {
        let k = k.trim();
        return if valid_key(k) {
            Ok(LabelReq::NotExists(k.into()))
        } else {
            Err(bad("invalid label key"))
        };
    }
    // Set-based operators are words separated by whitespace from the key.
    let words: Vec<&str> = part.splitn(3, char::is_whitespace).collect();
    if words.len() >= 2 {
        let key = words[0];
        let rest = part[key.len()..].trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(LabelReq::NotIn(key.into(), parse_set(set, part)?));
        }
        if let Some(set) = rest.strip_prefix("in")
            && set.trim_start().starts_with('(')
        {
            return Ok(LabelReq::In(key.into(), parse_set(set, part)?));
        }
    }
    for (op, ctor) in [
        ("!=", LabelReq::NotEq as fn(String, String) -> LabelReq),
        ("==", LabelReq::Eq),
        ("=", LabelReq::Eq),
    ] {
        if let Some((k, v)) = part.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) {
                return Err(bad("invalid label key"));
            }
            return Ok(ctor(k.into(), v.into()));
        }
    }
    for (op, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = part.split_once(op) {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| bad("value for > or < must be an integer"))?;
            let k = k.trim().to_string();
            return Ok(if gt {
                LabelReq::Gt(k, n)
            } else {
                LabelReq::Lt(k, n)
            });
        }
    }
    if valid_key(part) {
        Ok(LabelReq::Exists(part.into()))
    } else {
        Err(bad("invalid label key"))
    }
}

/// A parsed field selector: `path=value` / `path==value` / `path!=value`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let (path, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            reqs.push((path.trim().to_string(), eq, value.trim().to_string()));
        }
        Ok(Self { reqs })
    }

    /// Missing fields compare as the empty string, as the real server does for
    /// `spec.nodeName=` (unscheduled pods).
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, eq, want)| {
            let got = field_value(obj, path);
            (got == *want) == *eq
        })
    }
}

fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> Value {
        json!({"app": "ovn-central", "ovn-nb-leader": "true", "tier": "2"})
    }

    #[test]
    fn equality_forms() {
        for s in [
            "app=ovn-central",
            "app==ovn-central",
            "app!=x",
            "ovn-nb-leader=true,app=ovn-central",
        ] {
            assert!(LabelSelector::parse(s).unwrap().matches(&labels()), "{s}");
        }
        assert!(
            !LabelSelector::parse("app=kube-ovn-cni")
                .unwrap()
                .matches(&labels())
        );
        assert!(
            !LabelSelector::parse("app!=ovn-central")
                .unwrap()
                .matches(&labels())
        );
    }

    #[test]
    fn set_forms() {
        let l = labels();
        assert!(
            LabelSelector::parse("app in (a, ovn-central)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("app notin (a,ovn-central)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("missing notin (a)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("app in (x,y),tier")
                .unwrap()
                .matches(&json!({"app":"y","tier":"1"}))
        );
        assert!(LabelSelector::parse("tier").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!tier").unwrap().matches(&l));
        assert!(LabelSelector::parse("!nothere").unwrap().matches(&l));
        assert!(LabelSelector::parse("tier>1").unwrap().matches(&l));
        assert!(!LabelSelector::parse("tier<1").unwrap().matches(&l));
        assert!(LabelSelector::parse("").unwrap().matches(&Value::Null));
    }

    #[test]
    fn bad_selectors_are_errors() {
        assert!(LabelSelector::parse("app in x").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        assert!(FieldSelector::parse("spec.nodeName").is_err());
    }

    #[test]
    fn field_selector_on_node_name_and_phase() {
        let pod = json!({"metadata": {"name": "p", "namespace": "kube-system"},
            "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("spec.nodeName=node1")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName=node2")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("status.phase!=Failed,metadata.namespace==kube-system")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&json!({"spec": {}}))
        );
    }
}
