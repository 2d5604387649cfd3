//! Paged LISTs: every list the plugin makes goes through here, asking for at most
//! [`PAGE_SIZE`] objects at a time and following the server's `continue` token, as kubectl
//! does (its `--chunk-size` default is 500). A 30,000-pod cluster is then 60 bounded
//! responses instead of one huge one, and callers that keep only a summary of each object
//! ([`Cluster::list_mapped`]) hold one page at a time.

use std::fmt::Debug;

use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use super::{Cluster, Result};

/// Objects per LIST request (kubectl's default chunk size).
pub const PAGE_SIZE: u32 = 500;

impl Cluster {
    /// All objects `api` lists under `lp`, fetched a page at a time.
    pub async fn list_paged<K>(&self, api: &Api<K>, lp: &ListParams, what: &str) -> Result<Vec<K>>
    where
        K: Clone + DeserializeOwned + Debug,
    {
        self.list_mapped(api, lp, what, Some).await
    }

    /// Pages through a LIST, keeping `keep(object)` for each object as its page arrives,
    /// so only one page of full objects is in memory at a time.
    pub async fn list_mapped<K, T>(
        &self,
        api: &Api<K>,
        lp: &ListParams,
        what: &str,
        mut keep: impl FnMut(K) -> Option<T>,
    ) -> Result<Vec<T>>
    where
        K: Clone + DeserializeOwned + Debug,
    {
        let mut lp = lp.clone().limit(PAGE_SIZE);
        let mut out = Vec::new();
        for page_no in 1.. {
            let label = if page_no == 1 {
                what.to_string()
            } else {
                format!("{what} (page {page_no})")
            };
            let page = self.call(label, api.list(&lp)).await?;
            let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
            out.extend(page.items.into_iter().filter_map(&mut keep));
            match next {
                Some(token) => lp = lp.continue_token(&token),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;
    use serde_json::json;

    use super::*;

    /// A stand-in API server: serves pods a..e two a page, recording each query string.
    fn paging_server(queries: Arc<Mutex<Vec<String>>>) -> kube::Client {
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let queries = queries.clone();
            async move {
                let q = req.uri().query().unwrap_or("").to_string();
                queries.lock().unwrap().push(q.clone());
                let (names, next) = match q.split("continue=").nth(1) {
                    None => (vec!["a", "b"], Some("tok-1")),
                    Some(t) if t.starts_with("tok-1") => (vec!["c", "d"], Some("tok-2")),
                    Some(_) => (vec!["e"], None),
                };
                let items: Vec<_> = names
                    .iter()
                    .map(|n| json!({"metadata": {"name": n, "namespace": "default"}}))
                    .collect();
                let body = json!({"kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": "7", "continue": next.unwrap_or("")},
                    "items": items});
                let resp = http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.to_string().into_bytes()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        kube::Client::new(svc, "default")
    }

    #[tokio::test]
    async fn lists_ask_for_500_and_follow_continue() {
        let queries = Arc::new(Mutex::new(Vec::new()));
        let cluster = Cluster::from_client(
            paging_server(queries.clone()),
            "kube-system",
            Duration::from_secs(5),
        );
        let api: Api<Pod> = Api::all(cluster.client().clone());
        let names = cluster
            .list_mapped(&api, &ListParams::default(), "listing pods", |p| {
                p.metadata.name
            })
            .await
            .unwrap();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        let queries = queries.lock().unwrap();
        assert_eq!(queries.len(), 3, "{queries:?}");
        assert!(
            queries.iter().all(|q| q.contains("limit=500")),
            "{queries:?}"
        );
        assert!(!queries[0].contains("continue="));
        assert!(queries[1].contains("continue=tok-1"));
        assert!(queries[2].contains("continue=tok-2"));
    }
}
