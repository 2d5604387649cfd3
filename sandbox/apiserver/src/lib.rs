//! `ko-apiserver`: a Kubernetes API emulator for the kubectl-ko sandbox. Serves the
//! sandbox's objects to the real `kubectl` and to kube-rs clients: discovery, CRUD with
//! selectors, watch, Tables, scale, `pods/log` and `pods/exec` over WebSocket.

pub mod api;
pub mod app;
pub mod auth;
pub mod container;
pub mod controller;
pub mod defaults;
pub mod discovery;
pub mod exec;
pub mod leader;
pub mod load;
pub mod logs;
pub mod pagination;
pub mod patch;
pub mod protobuf;
pub mod query;
pub mod resources;
pub mod runtime;
pub mod selector;
pub mod server;
pub mod service_ip;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod workloads;
