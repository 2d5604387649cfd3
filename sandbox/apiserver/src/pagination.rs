//! LIST paging with `limit` and `continue`, shaped like the real API server: a page holds
//! at most `limit` matching objects in key order; when more remain, the list metadata
//! carries an opaque `continue` token (base64 JSON naming the resourceVersion and the last
//! key served) and, for lists without selectors, `remainingItemCount`. A malformed token
//! is a 400, as upstream.
//!
//! One difference: the real server serves every page from the snapshot of the first
//! page's resourceVersion (and answers 410 once it is compacted); the emulator keeps no
//! snapshots, so later pages see the live store, continuing after the last key served.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::query::Query;
use crate::status::ApiError;
use crate::store::Store;

/// What the client asked for: a page size and where to resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageRequest {
    /// None or 0 = no limit (the whole list in one response).
    pub limit: Option<usize>,
    /// The token's resourceVersion and last (namespace, name) served.
    pub resume: Option<Resume>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub rv: u64,
    pub namespace: String,
    pub name: String,
}

/// One page of a list, plus what the list metadata must say about the rest.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

impl PageRequest {
    pub fn parse(q: &Query) -> Result<Self, ApiError> {
        let limit = match q.get("limit") {
            None | Some("") => None,
            Some(s) => Some(s.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("limit must be a non-negative integer, got {s:?}"))
            })?),
        }
        .filter(|n| *n > 0);
        let resume = match q.get("continue") {
            None | Some("") => None,
            Some(token) => Some(decode_token(token)?),
        };
        Ok(Self { limit, resume })
    }
}

/// The list metadata for a page: resourceVersion, and continue/remainingItemCount when
/// more objects remain.
pub fn list_metadata(page: &Page) -> Value {
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        meta["continue"] = json!(token);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    meta
}

/// Serves one page of `group/plural` (in `namespace`, or all) whose objects pass
/// `keep`. `selective` says whether a selector is in force (then, as upstream, the
/// remaining count is not reported).
pub fn list_page(
    store: &Store,
    (group, plural): (&str, &str),
    namespace: Option<&str>,
    req: &PageRequest,
    keep: impl Fn(&Value) -> bool,
    selective: bool,
) -> Page {
    let limit = req.limit.unwrap_or(usize::MAX);
    let after = req
        .resume
        .as_ref()
        .map(|r| (r.namespace.as_str(), r.name.as_str()));
    let mut items = Vec::new();
    let mut remaining: u64 = 0;
    let rv = store.visit_after(group, plural, namespace, after, |obj| {
        if !keep(obj) {
            return true;
        }
        if items.len() < limit {
            items.push(obj.clone());
            return true;
        }
        remaining += 1;
        // With a selector the count is not reported, so one extra match is enough.
        !selective
    });
    let rv = req.resume.as_ref().map_or(rv, |r| r.rv);
    let continue_token = (remaining > 0)
        .then(|| items.last().map(|last| encode_token(rv, last)))
        .flatten();
    Page {
        items,
        resource_version: rv,
        remaining: (continue_token.is_some() && !selective).then_some(remaining),
        continue_token,
    }
}

fn encode_token(rv: u64, last: &Value) -> String {
    let ns = last["metadata"]["namespace"].as_str().unwrap_or("");
    let name = last["metadata"]["name"].as_str().unwrap_or("");
    let body = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")});
    STANDARD.encode(body.to_string())
}

fn decode_token(token: &str) -> Result<Resume, ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(format!(
            "continue key is not valid: {why}; restart the list without `continue`"
        ))
    };
    let raw = STANDARD.decode(token).map_err(|_| invalid("not base64"))?;
    let body: Value = serde_json::from_slice(&raw).map_err(|_| invalid("not JSON"))?;
    if body["v"] != "meta.k8s.io/v1" {
        return Err(invalid("unknown version"));
    }
    let rv = body["rv"].as_u64().ok_or_else(|| invalid("no rv"))?;
    let (namespace, name) = body["start"]
        .as_str()
        .and_then(|s| s.split_once('/'))
        .ok_or_else(|| invalid("no start key"))?;
    if name.is_empty() {
        return Err(invalid("empty start key"));
    }
    Ok(Resume {
        rv,
        namespace: namespace.into(),
        name: name.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Key;

    fn store_with(n: usize) -> Store {
        let s = Store::new();
        for i in 0..n {
            let name = format!("p{i:03}");
            let obj = json!({"metadata": {"name": name, "namespace": "default",
                "labels": {"odd": (i % 2 == 1).to_string()}}});
            s.create(Key::new("", "pods", "default", &name), obj)
                .unwrap();
        }
        s
    }

    fn names(p: &Page) -> Vec<String> {
        p.items
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn request(limit: usize, token: Option<&str>) -> PageRequest {
        let mut raw = format!("limit={limit}");
        if let Some(t) = token {
            raw.push_str("&continue=");
            raw.push_str(&form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
        }
        PageRequest::parse(&Query::parse(Some(&raw))).unwrap()
    }

    #[test]
    fn pages_cover_the_list_once_in_order() {
        let s = store_with(7);
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = list_page(
                &s,
                ("", "pods"),
                None,
                &request(3, token.as_deref()),
                |_| true,
                false,
            );
            pages += 1;
            seen.extend(names(&p));
            match p.continue_token {
                Some(t) => {
                    assert_eq!(p.remaining, Some(7 - seen.len() as u64));
                    token = Some(t);
                }
                None => {
                    assert_eq!(p.remaining, None);
                    break;
                }
            }
        }
        assert_eq!(pages, 3);
        let want: Vec<String> = (0..7).map(|i| format!("p{i:03}")).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn selectors_page_over_matches_without_a_count() {
        let s = store_with(7);
        let odd = |o: &Value| o["metadata"]["labels"]["odd"] == "true";
        let p = list_page(
            &s,
            ("", "pods"),
            Some("default"),
            &request(2, None),
            odd,
            true,
        );
        assert_eq!(names(&p), ["p001", "p003"]);
        assert_eq!(p.remaining, None);
        let t = p.continue_token.unwrap();
        let p = list_page(&s, ("", "pods"), None, &request(2, Some(&t)), odd, true);
        assert_eq!(names(&p), ["p005"]);
        assert!(p.continue_token.is_none());
    }

    #[test]
    fn bad_tokens_and_limits_are_rejected() {
        for raw in ["continue=%%%", "continue=bm90IGpzb24=", "limit=-1"] {
            assert!(
                PageRequest::parse(&Query::parse(Some(raw))).is_err(),
                "{raw}"
            );
        }
        assert_eq!(
            PageRequest::parse(&Query::parse(Some("limit=0"))).unwrap(),
            PageRequest::default()
        );
    }
}
