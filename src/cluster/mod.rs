//! Everything that talks to Kubernetes (kube-rs): client, locating pods, exec.
