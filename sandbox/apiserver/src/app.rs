//! The server's state, shared by the HTTP handlers (`api.rs`) and the
//! controllers that run beside them (`controller.rs`, `leader.rs`,
//! `workloads.rs`): here, so neither side imports the other for it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::resources::Registry;
use crate::runtime::Runtime;
use crate::status::ApiError;
use crate::store::Store;

pub struct App {
    pub store: Store,
    pub registry: RwLock<Registry>,
    pub runtime_path: PathBuf,
    /// Optional bearer-token users (see auth.rs); absent = no authorization.
    pub users_path: PathBuf,
    /// host:port clients reach us at (for `/api` serverAddressByClientCIDRs).
    pub address: String,
    /// uids of the workloads loaded at start: the workload controllers leave them alone.
    pub planned_workloads: std::collections::HashSet<String>,
}

pub type Shared = Arc<App>;

impl App {
    pub fn registry(&self) -> Registry {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-derives the served resources after a CRD was created or deleted.
    pub fn refresh_registry(&self) {
        let (crds, _) = self
            .store
            .list("apiextensions.k8s.io", "customresourcedefinitions", None);
        let (reg, warnings) = Registry::new(&crds);
        for w in warnings {
            tracing::warn!("{w}");
        }
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = reg;
    }

    pub fn runtime(&self) -> Result<Runtime, ApiError> {
        Runtime::load(&self.runtime_path)
    }
}
