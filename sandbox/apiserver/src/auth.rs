//! Optional bearer-token users, so tests can see how clients behave when the API
//! server says 401 or 403. Without `<state>/api/users.json` everything is allowed (the
//! sandbox's default); with it, a request carrying a token must name a known user and
//! be allowed by one of that user's rules. Requests without a token keep full access,
//! so the default kubeconfig and the data plane are never affected.
//!
//! ```json
//! { "users": [ { "name": "viewer", "token": "viewer-token",
//!     "rules": [ { "verbs": ["get", "list", "watch"], "resources": ["pods", "pods/log"],
//!                  "apiGroups": [""], "namespaces": ["kube-system"] } ] } ] }
//! ```
//! `"*"` matches any verb, resource or group; a rule without `apiGroups` matches every
//! group, one without `namespaces` every namespace and the cluster scope (like a
//! ClusterRole), one with `namespaces` only namespaced requests there (like a Role).

use std::path::Path;

use axum::http::{HeaderMap, Method, Uri, header};
use serde::Deserialize;
use serde_json::json;

use crate::query::Query;
use crate::status::ApiError;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Users {
    #[serde(default)]
    pub users: Vec<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub name: String,
    pub token: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub verbs: Vec<String>,
    /// `pods`, `pods/exec`, `*`.
    pub resources: Vec<String>,
    #[serde(default, rename = "apiGroups")]
    pub api_groups: Option<Vec<String>>,
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
}

/// What a resource request asks for, in the terms RBAC uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Attributes {
    /// `pods` or `pods/exec`.
    pub fn full_resource(&self) -> String {
        match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        }
    }

    /// The message a real API server gives when RBAC denies the request.
    pub fn forbidden(&self, user: &str) -> ApiError {
        let qualified = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let object = match &self.name {
            Some(n) => format!("{qualified} \"{n}\""),
            None => qualified,
        };
        let scope = match &self.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let mut details = json!({"kind": self.resource});
        if let Some(n) = &self.name {
            details["name"] = json!(n);
        }
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{object} is forbidden: User \"{user}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
                self.verb,
                self.full_resource(),
                self.group
            ),
            details,
        }
    }
}

/// RBAC attributes of a request path, or None for non-resource paths (discovery,
/// `/version`, `/openapi/...`, health), which every authenticated user may read.
pub fn attributes(method: &Method, uri: &Uri) -> Option<Attributes> {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return None,
    };
    // namespaces/<ns>/<resource>[/<name>[/<sub>]]; `namespaces/<ns>` alone is the
    // Namespace object itself.
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        _ => (None, rest),
    };
    let (resource, name, subresource) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s, ..] => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    let q = Query::parse(uri.query());
    let verb = match (method.as_str(), subresource.as_deref(), name.is_some()) {
        // Since 1.30 the WebSocket exec/attach/portforward (an HTTP GET upgrade) is
        // authorized as `create`, the verb of the SPDY POST.
        (_, Some("exec" | "attach" | "portforward"), _) => "create",
        ("GET", _, true) => "get",
        ("GET", _, false) if q.flag("watch") => "watch",
        ("GET", _, false) => "list",
        ("POST", _, _) => "create",
        ("PUT", _, _) => "update",
        ("PATCH", _, _) => "patch",
        ("DELETE", _, true) => "delete",
        ("DELETE", _, false) => "deletecollection",
        (other, _, _) => return Some(unknown_verb(other, group, resource, namespace)),
    };
    Some(Attributes {
        verb: verb.to_string(),
        group: group.to_string(),
        resource: resource.to_string(),
        subresource,
        namespace,
        name,
    })
}

fn unknown_verb(method: &str, group: &str, resource: &str, ns: Option<String>) -> Attributes {
    Attributes {
        verb: method.to_ascii_lowercase(),
        group: group.to_string(),
        resource: resource.to_string(),
        subresource: None,
        namespace: ns,
        name: None,
    }
}

fn any_or(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == "*" || v == want)
}

impl Rule {
    pub fn allows(&self, a: &Attributes) -> bool {
        let groups_ok = self
            .api_groups
            .as_deref()
            .is_none_or(|g| any_or(g, &a.group));
        let ns_ok = match (&self.namespaces, &a.namespace) {
            (None, _) => true,
            (Some(list), Some(ns)) => any_or(list, ns),
            // A namespace-bound rule (a Role) never grants cluster-scoped requests.
            (Some(_), None) => false,
        };
        any_or(&self.verbs, &a.verb)
            && any_or(&self.resources, &a.full_resource())
            && groups_ok
            && ns_ok
    }
}

impl Users {
    /// `Ok(None)` when the file does not exist: authorization is off.
    pub fn load(path: &Path) -> Result<Option<Users>, ApiError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "reading {} failed: {e}",
                    path.display()
                )));
            }
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            ApiError::internal(format!(
                "{} is not a valid users file ({e}); see sandbox/CONTRACT.md",
                path.display()
            ))
        })
    }

    /// Decide one request: Ok to serve it, or the 401/403 Status to answer.
    pub fn check(&self, token: &str, method: &Method, uri: &Uri) -> Result<(), ApiError> {
        let user = self
            .users
            .iter()
            .find(|u| u.token == token)
            .ok_or_else(unauthorized)?;
        match attributes(method, uri) {
            None => Ok(()),
            Some(a) if user.rules.iter().any(|r| r.allows(&a)) => Ok(()),
            Some(a) => Err(a.forbidden(&user.name)),
        }
    }
}

pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authorization for one request, with the users file read afresh (it may change
/// while the emulator runs, like runtime.json).
pub fn authorize(
    users_path: &Path,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Result<(), ApiError> {
    let Some(token) = bearer(headers) else {
        return Ok(());
    };
    match Users::load(users_path)? {
        None => Ok(()),
        Some(users) => users.check(token, method, uri),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, uri: &str) -> Attributes {
        attributes(&method.parse().unwrap(), &uri.parse().unwrap()).unwrap()
    }

    fn viewer() -> Users {
        serde_json::from_value(json!({"users": [
            {"name": "viewer", "token": "t-viewer", "rules": [
                {"verbs": ["get", "list", "watch"], "resources": ["pods", "pods/log"],
                 "namespaces": ["kube-system"]},
                {"verbs": ["get", "list"], "resources": ["nodes"], "apiGroups": [""]}]},
            {"name": "admin", "token": "t-admin", "rules": [
                {"verbs": ["*"], "resources": ["*"]}]},
        ]}))
        .unwrap()
    }

    #[test]
    fn paths_become_rbac_attributes() {
        let a = attrs(
            "GET",
            "/api/v1/namespaces/kube-system/pods/ovn-central-x/exec?command=ls&stdout=true",
        );
        assert_eq!(a.verb, "create");
        assert_eq!(a.full_resource(), "pods/exec");
        assert_eq!(a.namespace.as_deref(), Some("kube-system"));
        assert_eq!(a.name.as_deref(), Some("ovn-central-x"));

        let a = attrs(
            "GET",
            "/api/v1/namespaces/kube-system/pods?labelSelector=app%3Dovs",
        );
        assert_eq!((a.verb.as_str(), a.name.as_deref()), ("list", None));
        assert_eq!(attrs("GET", "/api/v1/pods?watch=true").verb, "watch");
        assert_eq!(attrs("GET", "/api/v1/pods?watch=true").namespace, None);
        assert_eq!(
            attrs("DELETE", "/api/v1/namespaces/a/pods").verb,
            "deletecollection"
        );
        assert_eq!(
            attrs("PATCH", "/api/v1/namespaces/a/pods/p/status").verb,
            "patch"
        );

        let a = attrs("GET", "/apis/kubeovn.io/v1/subnets/ovn-default");
        assert_eq!(
            (a.group.as_str(), a.resource.as_str()),
            ("kubeovn.io", "subnets")
        );
        assert_eq!(a.namespace, None);

        // The Namespace object itself is cluster-scoped.
        let a = attrs("GET", "/api/v1/namespaces/kube-system");
        assert_eq!((a.resource.as_str(), a.namespace), ("namespaces", None));

        for p in [
            "/api",
            "/apis",
            "/api/v1",
            "/version",
            "/openapi/v3",
            "/healthz",
        ] {
            assert_eq!(
                attributes(&Method::GET, &p.parse().unwrap()),
                None,
                "{p} is not a resource path"
            );
        }
    }

    #[test]
    fn rules_match_verb_resource_group_and_namespace() {
        let u = viewer();
        let ok =
            |tok: &str, m: &str, p: &str| u.check(tok, &m.parse().unwrap(), &p.parse().unwrap());
        assert!(ok("t-viewer", "GET", "/api/v1/namespaces/kube-system/pods").is_ok());
        assert!(
            ok(
                "t-viewer",
                "GET",
                "/api/v1/namespaces/kube-system/pods/p/log"
            )
            .is_ok()
        );
        assert!(ok("t-viewer", "GET", "/api/v1/nodes/n1").is_ok());
        assert!(ok("t-viewer", "GET", "/api").is_ok());
        // Wrong namespace, wrong verb, subresource not granted, cluster scope for a Role.
        for (m, p) in [
            ("GET", "/api/v1/namespaces/default/pods"),
            ("DELETE", "/api/v1/namespaces/kube-system/pods/p"),
            ("GET", "/api/v1/namespaces/kube-system/pods/p/exec"),
            ("GET", "/api/v1/pods"),
            ("GET", "/apis/apps/v1/namespaces/kube-system/deployments"),
        ] {
            let e = ok("t-viewer", m, p).unwrap_err();
            assert_eq!((e.code, e.reason), (403, "Forbidden"), "{m} {p}");
        }
        assert!(ok("t-admin", "DELETE", "/api/v1/namespaces/kube-system/pods/p").is_ok());
        let e = ok("t-unknown", "GET", "/api").unwrap_err();
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (401, "Unauthorized", "Unauthorized")
        );
    }

    #[test]
    fn forbidden_messages_read_like_the_real_server() {
        let u = viewer();
        let e = u
            .check(
                "t-viewer",
                &Method::GET,
                &"/api/v1/namespaces/kube-system/pods/ovn-central-xxx/exec"
                    .parse()
                    .unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            r#"pods "ovn-central-xxx" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "kube-system""#
        );
        assert_eq!(
            e.details,
            json!({"name": "ovn-central-xxx", "kind": "pods"})
        );
        let e = u
            .check("t-viewer", &Method::GET, &"/api/v1/pods".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            e.message,
            r#"pods is forbidden: User "viewer" cannot list resource "pods" in API group "" at the cluster scope"#
        );
        let e = u
            .check(
                "t-viewer",
                &Method::GET,
                &"/apis/apps/v1/namespaces/kube-system/deployments"
                    .parse()
                    .unwrap(),
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            r#"deployments.apps is forbidden: User "viewer" cannot list resource "deployments" in API group "apps" in the namespace "kube-system""#
        );
    }

    #[test]
    fn tokens_come_from_the_bearer_header_only() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn a_missing_users_file_means_no_authorization() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer anything".parse().unwrap());
        let uri: Uri = "/api/v1/pods".parse().unwrap();
        assert!(authorize(&path, &h, &Method::GET, &uri).is_ok());
        std::fs::write(&path, r#"{"users": []}"#).unwrap();
        assert_eq!(
            authorize(&path, &h, &Method::GET, &uri).unwrap_err().code,
            401
        );
        // No token: full access even with users defined.
        assert!(authorize(&path, &HeaderMap::new(), &Method::GET, &uri).is_ok());
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(
            authorize(&path, &h, &Method::GET, &uri).unwrap_err().code,
            500
        );
    }
}
