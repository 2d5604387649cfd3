#!/usr/bin/env python3
"""Grow a running sandbox into a synthetic large cluster, for measuring only.

Adds N nodes and M pods to the API emulator (POSTed through its API, several at a
time) and the matching NB rows to the sandbox's real NB database: one logical switch
port per pod (name `<pod>.<ns>`, addresses "<mac> <ip>", on a synthetic subnet's
switch), one port group per namespace (as a NetworkPolicy's, external_ids np=), and
one load balancer per 30 pods (a Service VIP with 3 backends). The small real data
plane (3 nodes, their OVS and ovn-controller) keeps running the sandbox's own pods;
the synthetic nodes have no OVS and the synthetic ports no chassis, so diagnose's
per-node checks report them, and its cluster-level and NB/SB-level checks and trace's
lookups run against the full sizes.

Synthetic node addresses are unused addresses of the sandbox's own underlay
(172.18.100.0 and up), so diagnose's probes towards them stay inside the sandbox's
network namespaces.

Usage (root): bench/synthetic.py --name <sandbox> [--nodes 1000] [--pods 30000]
Objects carry the label kubectl-ko.io/synthetic=true; the sandbox kubelet leaves
them alone. `e2e/sandbox down` removes everything.
"""

import argparse
import concurrent.futures as cf
import glob
import http.client
import json
import os
import subprocess
import sys

LABEL = "kubectl-ko.io/synthetic"
NAMESPACES = 100
SUBNET = "synthetic"
SUBNET_CIDR = "10.200.0.0/16"


def api_port(state):
    with open(os.path.join(state, "api", "port")) as f:
        return int(f.read().strip())


def post_all(port, path_objs, workers=8):
    """POST (path, object) pairs, `workers` connections at once; 409 is fine."""

    def worker(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        bad = 0
        for path, obj in chunk:
            conn.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 201, 409):
                bad += 1
        return bad

    chunks = [path_objs[i::workers] for i in range(workers)]
    with cf.ThreadPoolExecutor(workers) as ex:
        return sum(ex.map(worker, chunks))


def node(i):
    name = f"syn-node-{i:04d}"
    return ("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {LABEL: "true", "kubernetes.io/hostname": name}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": f"172.18.{100 + i // 250}.{i % 250 + 1}"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })


def pod_ip(i):
    return f"10.200.{i // 250}.{i % 250 + 2}"


def pod_mac(i):
    return "0a:58:%02x:%02x:%02x:%02x" % (0xc8, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)


def pod(i, nodes):
    ns = f"syn-{i % NAMESPACES:03d}"
    name = f"app-{i:05d}"
    return (f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "labels": {LABEL: "true", "app": "syn"},
            "annotations": {
                "ovn.kubernetes.io/allocated": "true",
                "ovn.kubernetes.io/ip_address": pod_ip(i),
                "ovn.kubernetes.io/mac_address": pod_mac(i),
                "ovn.kubernetes.io/logical_switch": SUBNET,
                "ovn.kubernetes.io/cidr": SUBNET_CIDR,
            },
        },
        "spec": {"nodeName": f"syn-node-{i % nodes:04d}",
                 "containers": [{"name": "app", "image": "synthetic"}]},
        "status": {"phase": "Running", "podIP": pod_ip(i)},
    })


def namespace(k):
    name = f"syn-{k:03d}"
    return ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name, "labels": {LABEL: "true"}}})


def nb_socket(state):
    """The NB socket of an ovn-central pod that answers as the RAFT leader."""
    for sock in sorted(glob.glob(os.path.join(state, "pods", "*ovn-central*", "run-ovn", "ovnnb_db.sock"))):
        r = subprocess.run(["ovn-nbctl", f"--db=unix:{sock}", "--leader-only", "--timeout=5",
                            "get", "NB_Global", ".", "name"], capture_output=True)
        if r.returncode == 0:
            return sock
    sys.exit("no ovn-central NB socket answered as leader")


def nbctl(sock, cmds):
    """One ovn-nbctl transaction of `cmds` (lists of args), argv only."""
    argv = ["ovn-nbctl", f"--db=unix:{sock}", "--leader-only", "--timeout=120"]
    for c in cmds:
        argv += ["--"] + c
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def nb_rows(sock, pods):
    nbctl(sock, [["--may-exist", "ls-add", SUBNET],
                 ["set", "Logical_Switch", SUBNET, f"other_config:subnet={SUBNET_CIDR}"]])
    step = 1000
    for start in range(0, pods, step):
        cmds = []
        for i in range(start, min(start + step, pods)):
            lsp = f"app-{i:05d}.syn-{i % NAMESPACES:03d}"
            cmds.append(["--may-exist", "lsp-add", SUBNET, lsp])
            cmds.append(["lsp-set-addresses", lsp, f"{pod_mac(i)} {pod_ip(i)}"])
        nbctl(sock, cmds)
    for k in range(NAMESPACES):
        ports = [f"app-{i:05d}.syn-{k:03d}" for i in range(k, pods, NAMESPACES)]
        pg = f"syn.np.{k:03d}"
        nbctl(sock, [["--may-exist", "pg-add", pg] + ports[:1],
                     ["pg-set-ports", pg] + ports,
                     ["set", "Port_Group", pg, f"external_ids:np=syn-{k:03d}/deny-all"]])
    cmds = []
    for s in range(pods // 30):
        backends = ",".join(f"{pod_ip(s * 30 + b)}:8080" for b in range(3))
        cmds.append(["--may-exist", "lb-add", f"syn-svc-{s:04d}",
                     f"10.201.{s // 250}.{s % 250 + 1}:80", backends, "tcp"])
    for c in range(0, len(cmds), 500):
        nbctl(sock, cmds[c:c + 500])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="sandbox name (with KO_SANDBOX_PREFIX)")
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=30000)
    a = ap.parse_args()
    state = f"/run/kubectl-ko-sandbox/{a.name}"
    port = api_port(state)
    bad = post_all(port, [namespace(k) for k in range(NAMESPACES)])
    bad += post_all(port, [node(i) for i in range(a.nodes)])
    bad += post_all(port, [pod(i, a.nodes) for i in range(a.pods)])
    print(f"API: {a.nodes} nodes, {a.pods} pods posted ({bad} refused)")
    nb_rows(nb_socket(state), a.pods)
    print(f"NB: {a.pods} LSPs on {SUBNET}, {NAMESPACES} port groups, {a.pods // 30} LBs")


if __name__ == "__main__":
    main()
