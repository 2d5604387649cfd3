//! The HTTP surface: discovery, CRUD on every served resource, watch, scale, logs, exec.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::app::{App, Shared};
use crate::container;
use crate::controller;
use crate::discovery;
use crate::exec::{self, ExecSpec};
use crate::logs;
use crate::pagination::{self, Page, PageRequest};
use crate::patch::{self, PatchType};
use crate::query::Query;
use crate::resources::{Registry, ResourceInfo};
use crate::runtime::pid_alive;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, json_response, success_status};
use crate::store::{Key, WatchEvent, metadata_mut};
use crate::table::{self, IncludeObject};

/// Default watch length when the client gives no timeoutSeconds (the real server picks
/// 30–60 minutes).
const DEFAULT_WATCH: Duration = Duration::from_secs(1800);

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/version", get(|| async { json_ok(&discovery::version()) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            any(exec_handler),
        )
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(app.clone(), authorize))
        .with_state(app)
        .layer(middleware::from_fn(log_requests))
}

async fn authorize(State(app): State<Shared>, req: Request, next: Next) -> Response {
    match crate::auth::authorize(&app.users_path, req.headers(), req.method(), req.uri()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn log_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let resp = next.run(req).await;
    // The client is named so tests can tell their own requests from the kubelet's.
    tracing::info!(
        "{method} {uri} -> {} agent={agent:?}",
        resp.status().as_u16()
    );
    resp
}

fn json_ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

/// Where a request points once the path is decoded.
#[derive(Debug, Clone)]
struct Target {
    info: ResourceInfo,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

impl Target {
    fn key(&self, name: &str) -> Key {
        Key::new(
            &self.info.group,
            &self.info.plural,
            self.namespace.as_deref().unwrap_or(""),
            name,
        )
    }
}

fn parse_target(
    reg: &Registry,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(info) = reg.find(group, version, rest[2]).filter(|i| i.namespaced)
    {
        if rest.len() > 5 {
            return Err(ApiError::no_such_path());
        }
        return Ok(Target {
            info: info.clone(),
            namespace: Some(rest[1].to_string()),
            name: rest.get(3).map(|s| s.to_string()),
            sub: rest.get(4).map(|s| s.to_string()),
        });
    }
    let info = reg
        .find(group, version, rest[0])
        .ok_or_else(ApiError::no_such_path)?;
    if rest.len() > 3 {
        return Err(ApiError::no_such_path());
    }
    let t = Target {
        info: info.clone(),
        namespace: None,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    };
    if t.info.namespaced && t.name.is_some() {
        // A namespaced object can only be addressed inside its namespace.
        return Err(ApiError::no_such_path());
    }
    Ok(t)
}

async fn dispatch(
    State(app): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&app, &method, &uri, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let q = Query::parse(uri.query());
    let reg = app.registry();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return Ok(json_ok(&discovery::core_versions(&app.address))),
        ["apis"] => return Ok(json_ok(&discovery::group_list(&reg))),
        ["apis", g] => {
            return discovery::group(&reg, g)
                .map(|d| json_ok(&d))
                .ok_or_else(ApiError::no_such_path);
        }
        ["openapi", "v3"] => return Ok(json_ok(&discovery::openapi_v3_root(&reg))),
        ["openapi", "v3", "api", v] => {
            return discovery::openapi_v3_gv(&reg, "", v)
                .map(|d| json_ok(&d))
                .ok_or_else(ApiError::no_such_path);
        }
        ["openapi", "v3", "apis", g, v] => {
            return discovery::openapi_v3_gv(&reg, g, v)
                .map(|d| json_ok(&d))
                .ok_or_else(ApiError::no_such_path);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_such_path()),
    };
    if rest.is_empty() {
        return discovery::resource_list(&reg, group, version)
            .map(|d| json_ok(&d))
            .ok_or_else(ApiError::no_such_path);
    }
    let t = parse_target(&reg, group, version, rest)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let sub = t.sub.as_deref();
    // Typed clients (`kubectl create service|deployment ...`) send protobuf: decode it
    // to the JSON every handler below works on.
    // Only the resource itself: a subresource (or a path under an unserved resource)
    // carries another kind.
    let body = if matches!(method.as_str(), "POST" | "PUT")
        && sub.is_none()
        && crate::protobuf::is_protobuf(content_type)
    {
        Bytes::from(crate::protobuf::decode(&t.info.kind, &body)?.to_string())
    } else {
        body
    };
    match (method.as_str(), t.name.as_deref(), sub) {
        ("GET", None, _) if q.flag("watch") => watch(app, &t, &q, accept),
        ("GET", None, _) => list(app, &t, &q, accept),
        ("GET", Some(name), None | Some("status")) => {
            let obj = app
                .store
                .get(&t.key(name))
                .ok_or_else(|| ApiError::not_found(&t.info.plural, &t.info.group, name))?;
            if wants_table(accept) {
                let rv = app.store.resource_version();
                let inc = IncludeObject::parse(q.get("includeObject"));
                return Ok(json_ok(&table::to_table(&t.info, &[obj], rv, inc)));
            }
            Ok(json_ok(&obj))
        }
        ("GET", Some(name), Some("scale")) if t.info.has_subresource("scale") => {
            let obj = app
                .store
                .get(&t.key(name))
                .ok_or_else(|| ApiError::not_found(&t.info.plural, &t.info.group, name))?;
            Ok(json_ok(&to_scale(&obj)))
        }
        ("GET", Some(name), Some("log")) if is_pods(&t.info) => pod_log(app, &t, name, &q).await,
        (_, Some(_), Some("exec")) if is_pods(&t.info) => {
            Err(ApiError::bad_request("Upgrade request required"))
        }
        ("POST", None, None) => create(app, &t, &body),
        ("PUT", Some(name), None | Some("status")) => replace(app, &t, name, &body),
        ("PUT", Some(name), Some("scale")) if t.info.has_subresource("scale") => {
            let scale: Value = parse_body(&body)?;
            set_replicas(app, &t, name, &scale, true)
        }
        ("PATCH", Some(name), None | Some("status")) => {
            let kind = PatchType::from_content_type(content_type)?;
            let (group, k) = (t.info.group.clone(), t.info.kind.clone());
            let new = app.store.update(&t.key(name), |obj| {
                patch::apply(obj, kind, &body)?;
                crate::defaults::apply(&group, &k, obj);
                Ok(())
            })?;
            Ok(json_ok(&node_ports_after_update(app, &t, name, new)?))
        }
        ("PATCH", Some(name), Some("scale")) if t.info.has_subresource("scale") => {
            let kind = PatchType::from_content_type(content_type)?;
            let current = app
                .store
                .get(&t.key(name))
                .ok_or_else(|| ApiError::not_found(&t.info.plural, &t.info.group, name))?;
            let mut scale = to_scale(&current);
            patch::apply(&mut scale, kind, &body)?;
            set_replicas(app, &t, name, &scale, false)
        }
        ("DELETE", Some(name), None) => {
            let obj = app.store.delete(&t.key(name))?;
            if is_crds(&t.info) {
                app.refresh_registry();
            }
            if t.info.group.is_empty() && t.info.plural == "namespaces" {
                // the namespace controller's job: nothing stays behind in a deleted namespace
                for key in app.store.keys_in_namespace(name) {
                    let _ = app.store.delete(&key);
                }
            }
            if is_pods(&t.info)
                && controller::is_controlled(&obj)
                && !crate::workloads::pod_has_managed_owner(app, &obj)
            {
                controller::recreate_later(app.clone(), t.key(name), obj.clone());
            }
            if t.info.group == "apps" {
                crate::workloads::cascade(app, &obj);
            }
            Ok(json_ok(&obj))
        }
        ("DELETE", None, None) => {
            let (items, _) = selected(app, &t, &q)?;
            for obj in &items {
                if let Some(name) = obj["metadata"]["name"].as_str() {
                    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
                    // Already gone is fine for a collection delete.
                    let _ = app
                        .store
                        .delete(&Key::new(&t.info.group, &t.info.plural, ns, name));
                }
            }
            if is_crds(&t.info) {
                app.refresh_registry();
            }
            Ok(json_ok(&success_status(json!({"kind": t.info.plural}))))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn is_pods(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "pods"
}

fn is_crds(info: &ResourceInfo) -> bool {
    info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions"
}

fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON ({e}); send the object as application/json"
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

fn selectors(q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fs = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

fn matches(obj: &Value, ls: &LabelSelector, fs: &FieldSelector) -> bool {
    ls.matches(&obj["metadata"]["labels"]) && fs.matches(obj)
}

fn selected(app: &App, t: &Target, q: &Query) -> Result<(Vec<Value>, u64), ApiError> {
    let (ls, fs) = selectors(q)?;
    let (items, rv) = app
        .store
        .list(&t.info.group, &t.info.plural, t.namespace.as_deref());
    Ok((
        items.into_iter().filter(|o| matches(o, &ls, &fs)).collect(),
        rv,
    ))
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// One page (or, without `limit`, all) of the objects a LIST selects.
fn selected_page(app: &App, t: &Target, q: &Query) -> Result<Page, ApiError> {
    let (ls, fs) = selectors(q)?;
    let req = PageRequest::parse(q)?;
    let selective = q.get("labelSelector").is_some_and(|s| !s.is_empty())
        || q.get("fieldSelector").is_some_and(|s| !s.is_empty());
    Ok(pagination::list_page(
        &app.store,
        (&t.info.group, &t.info.plural),
        t.namespace.as_deref(),
        &req,
        |o| matches(o, &ls, &fs),
        selective,
    ))
}

fn list(app: &App, t: &Target, q: &Query, accept: &str) -> Result<Response, ApiError> {
    let page = selected_page(app, t, q)?;
    let meta = pagination::list_metadata(&page);
    if wants_table(accept) {
        let inc = IncludeObject::parse(q.get("includeObject"));
        let mut tbl = table::to_table(&t.info, &page.items, page.resource_version, inc);
        tbl["metadata"] = meta;
        return Ok(json_ok(&tbl));
    }
    if accept.contains("as=PartialObjectMetadataList") {
        let items: Vec<Value> = page.items.iter().map(partial_metadata).collect();
        return Ok(json_ok(&json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": items,
        })));
    }
    Ok(json_ok(&json!({
        "kind": t.info.list_kind(),
        "apiVersion": t.info.api_version(),
        "metadata": meta,
        "items": page.items,
    })))
}

/// How watch events render their object: as stored, as a one-row Table, or metadata only.
#[derive(Clone, Copy)]
enum WatchShape {
    Object,
    Table(IncludeObject),
    Metadata,
}

fn event_line(
    ev_type: &str,
    obj: &Value,
    info: &ResourceInfo,
    shape: WatchShape,
    rv: u64,
) -> Bytes {
    let object = match shape {
        WatchShape::Object => obj.clone(),
        WatchShape::Metadata => partial_metadata(obj),
        WatchShape::Table(inc) => table::to_table(info, std::slice::from_ref(obj), rv, inc),
    };
    let mut line = json!({"type": ev_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(app: &App, t: &Target, q: &Query, accept: &str) -> Result<Response, ApiError> {
    let (ls, fs) = selectors(q)?;
    let shape = if wants_table(accept) {
        WatchShape::Table(IncludeObject::parse(q.get("includeObject")))
    } else if accept.contains("as=PartialObjectMetadata") {
        WatchShape::Metadata
    } else {
        WatchShape::Object
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH);
    // resourceVersion unset or "0": start with the current state as ADDED events.
    let since = q
        .get("resourceVersion")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|rv| *rv > 0);
    let (past, rx) = app.store.subscribe(since);
    let info = t.info.clone();
    let namespace = t.namespace.clone().unwrap_or_default();
    let mut initial: Vec<Bytes> = Vec::new();
    let mut list_rv = 0;
    if since.is_none() {
        let (items, rv) = app.store.list(&info.group, &info.plural, Some(&namespace));
        list_rv = rv;
        for o in items.iter().filter(|o| matches(o, &ls, &fs)) {
            initial.push(event_line("ADDED", o, &info, shape, rv));
        }
    }
    let filter_info = info.clone();
    let wanted = move |ev: &WatchEvent| -> Option<Bytes> {
        let k = &ev.key;
        if k.group != filter_info.group
            || k.plural != filter_info.plural
            || (!namespace.is_empty() && k.namespace != namespace)
            || !matches(&ev.object, &ls, &fs)
        {
            return None;
        }
        Some(event_line(
            ev.kind.as_str(),
            &ev.object,
            &filter_info,
            shape,
            ev.rv,
        ))
    };
    let wanted2 = wanted.clone();
    let replay: Vec<Bytes> = past.iter().filter_map(&wanted).collect();
    // The floor keeps an event already covered by the initial list or the replay from
    // being sent again by the live stream.
    let floor = past
        .last()
        .map(|e| e.rv)
        .unwrap_or(since.unwrap_or(list_rv));
    let guard = WatchGuard(format!("{}/{}", info.group, info.plural));
    let live = futures::stream::unfold((rx, guard), move |(mut rx, guard)| async move {
        // A lagging or closed receiver ends the watch; the client re-lists, as after a
        // real server's 410 Gone.
        rx.recv().await.ok().map(|ev| (ev, (rx, guard)))
    })
    .filter_map(move |ev| {
        let out = if ev.rv > floor { wanted2(&ev) } else { None };
        async move { out }
    });
    let deadline = tokio::time::sleep(timeout);
    let stream = futures::stream::iter(initial)
        .chain(futures::stream::iter(replay))
        .chain(live)
        .take_until(deadline)
        .map(Ok::<Bytes, Infallible>);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| {
            ApiError::internal(format!("building the watch response failed: {e}")).into_response()
        }))
}

/// Logs when a watch stream is dropped (client gone, timeout, or lagging), which shows
/// that abandoned watches do not pile up.
struct WatchGuard(String);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        tracing::info!("watch on {} ended", self.0);
    }
}

/// Fills what a real server defaults on create: apiVersion, kind, name from generateName.
fn create(app: &App, t: &Target, body: &[u8]) -> Result<Response, ApiError> {
    let mut obj = parse_body(body)?;
    obj["apiVersion"] = json!(t.info.api_version());
    obj["kind"] = json!(t.info.kind);
    let meta = metadata_mut(&mut obj);
    let name = match meta.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) => {
                let uid =
                    std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
                let suffix: String = uid
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(5)
                    .collect();
                format!("{prefix}{suffix}")
            }
            None => {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        t.info.kind
                    ),
                ));
            }
        },
    };
    if let (Some(path_ns), Some(body_ns)) = (
        t.namespace.as_deref(),
        meta.get("namespace").and_then(Value::as_str),
    ) && path_ns != body_ns
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({path_ns})"
        )));
    }
    if t.info.namespaced && t.namespace.is_none() {
        return Err(ApiError::no_such_path());
    }
    // A real server assigns identity itself and ignores a client's status.
    let meta = metadata_mut(&mut obj);
    for field in [
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "deletionTimestamp",
        "generation",
    ] {
        meta.remove(field);
    }
    if is_pods(&t.info) {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
    crate::defaults::apply(&t.info.group, &t.info.kind, &mut obj);
    if t.info.group.is_empty() && t.info.plural == "services" {
        crate::service_ip::default_new_service(&app.store, &name, &mut obj)?;
    }
    let created = app.store.create(t.key(&name), obj)?;
    if is_crds(&t.info) {
        app.refresh_registry();
    }
    Ok(json_response(StatusCode::CREATED, &created))
}

fn conflict(t: &Target, name: &str) -> ApiError {
    let q = if t.info.group.is_empty() {
        t.info.plural.clone()
    } else {
        format!("{}.{}", t.info.plural, t.info.group)
    };
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {q} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

/// Optimistic concurrency: a body carrying a resourceVersion must match the stored one.
fn check_rv(t: &Target, name: &str, stored: &Value, body: &Value) -> Result<(), ApiError> {
    match body["metadata"]["resourceVersion"].as_str() {
        Some(rv)
            if !rv.is_empty() && Some(rv) != stored["metadata"]["resourceVersion"].as_str() =>
        {
            Err(conflict(t, name))
        }
        _ => Ok(()),
    }
}

fn replace(app: &App, t: &Target, name: &str, body: &[u8]) -> Result<Response, ApiError> {
    let new = parse_body(body)?;
    if let Some(n) = new["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let status_only = t.sub.as_deref() == Some("status");
    let mut new = new;
    if !status_only {
        crate::defaults::apply(&t.info.group, &t.info.kind, &mut new);
    }
    let updated = app.store.update(&t.key(name), |obj| {
        check_rv(t, name, obj, &new)?;
        if status_only {
            obj["status"] = new["status"].clone();
        } else {
            let status = obj["status"].clone();
            *obj = new.clone();
            // Like the real server, a main-resource PUT does not change status when the
            // resource has a status subresource.
            if t.info.has_subresource("status") && !status.is_null() {
                obj["status"] = status;
            }
        }
        Ok(())
    })?;
    if is_crds(&t.info) {
        app.refresh_registry();
    }
    Ok(json_ok(&node_ports_after_update(app, t, name, updated)?))
}

/// A Service changed to NodePort/LoadBalancer by PUT or PATCH gets its nodePorts, as
/// on create (a second update: the allocation reads every other Service).
fn node_ports_after_update(
    app: &App,
    t: &Target,
    name: &str,
    updated: Value,
) -> Result<Value, ApiError> {
    let spec = &updated["spec"];
    let missing = matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"))
        && spec["ports"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["nodePort"].as_i64().is_none_or(|n| n == 0))
        });
    if !(t.info.group.is_empty() && t.info.plural == "services" && missing) {
        return Ok(updated);
    }
    let ns = t.namespace.as_deref().unwrap_or("");
    let used = crate::service_ip::used_node_ports(&app.store, Some((ns, name)));
    app.store.update(&t.key(name), |obj| {
        crate::service_ip::allocate_node_ports(name, &mut obj["spec"], &used)
    })
}

fn to_scale(obj: &Value) -> Value {
    let sel = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": sel},
    })
}

fn set_replicas(
    app: &App,
    t: &Target,
    name: &str,
    scale: &Value,
    check: bool,
) -> Result<Response, ApiError> {
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: must be a non-negative integer"),
            )
        })?;
    let updated = app.store.update(&t.key(name), |obj| {
        if check {
            check_rv(t, name, obj, scale)?;
        }
        obj["spec"]["replicas"] = json!(replicas);
        Ok(())
    })?;
    Ok(json_ok(&to_scale(&updated)))
}

async fn pod_log(app: &App, t: &Target, name: &str, q: &Query) -> Result<Response, ApiError> {
    let pod = app
        .store
        .get(&t.key(name))
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    let rt = app.runtime()?;
    let prt = rt.pod_of(&pod);
    let names =
        container::container_names(&pod, prt.map(|p| p.containers.as_slice()).unwrap_or(&[]));
    let c = container::choose(name, &names, q.get("container"))?;
    if q.flag("previous") {
        // Sandbox containers never restart in place, so there is no previous log.
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{c}\" in pod \"{name}\" not found"
        )));
    }
    let path = prt
        .and_then(|p| p.logs.get(&c))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container \"{c}\" in pod \"{name}\" has no log file in the sandbox runtime"
            ))
        })?
        .clone();
    let body = logs::stream(logs::LogRequest {
        path,
        tail_lines: q.get("tailLines").and_then(|s| s.parse().ok()),
        follow: q.flag("follow"),
    })
    .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .unwrap_or_else(|e| {
            ApiError::internal(format!("building the log response failed: {e}")).into_response()
        }))
}

async fn exec_handler(
    State(app): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match prepare_exec(&app, &namespace, &name, &uri) {
        Err(e) => e.into_response(),
        Ok(spec) => match ws {
            Err(_) => ApiError::bad_request("Upgrade request required").into_response(),
            Ok(ws) => ws
                .protocols(exec::PROTOCOLS)
                .on_upgrade(move |socket| exec::serve(socket, spec)),
        },
    }
}

/// Validates an exec request the way the real API server does before upgrading.
fn prepare_exec(app: &App, ns: &str, name: &str, uri: &Uri) -> Result<ExecSpec, ApiError> {
    let q = Query::parse(uri.query());
    let pod = app
        .store
        .get(&Key::new("", "pods", ns, name))
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    let argv = q.all("command");
    if argv.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let (stdin, stdout, stderr, tty) = (
        q.flag("stdin"),
        q.flag("stdout"),
        q.flag("stderr"),
        q.flag("tty"),
    );
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let rt = app.runtime()?;
    let prt = rt.pod_of(&pod);
    let names =
        container::container_names(&pod, prt.map(|p| p.containers.as_slice()).unwrap_or(&[]));
    let c = container::choose(name, &names, q.get("container"))?;
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    if phase != "Running" {
        return Err(ApiError::bad_request(format!(
            "container {c} is not running in pod {name}: pod phase is {phase}"
        )));
    }
    let pid = prt.map(|p| p.pid).filter(|pid| pid_alive(*pid)).ok_or_else(|| {
        ApiError::bad_request(format!(
            "container {c} is not running in pod {name}: no live holder process in the sandbox runtime; recreate the pod or the sandbox"
        ))
    })?;
    Ok(ExecSpec {
        pid,
        argv,
        stdin,
        stdout,
        stderr,
        tty,
    })
}
