#!/usr/bin/env python3
"""Grow a running sandbox into a synthetic large cluster, for measuring only.

Adds N nodes and M pods to the API emulator (POSTed through its API, several at a
time) and the matching NB rows to the sandbox's real NB database: one logical switch
port per pod (name `<pod>.<ns>`, addresses "<mac> <ip>", on a synthetic subnet's
switch, written with `ovsdb-client transact`, 5,000 rows per transaction). Then one
deny-all NetworkPolicy per namespace and one ClusterIP Service per 30 pods go to the
API, and the sandbox's controller stand-in writes what kube-ovn-controller would:
the policies' port groups, address sets and ACLs, the Services' Endpoints and VIPs. The small real data
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
import socket
import subprocess
import sys

LABEL = "kubectl-ko.io/synthetic"
NAMESPACES = 100
SUBNET = "synthetic"
SUBNET_CIDR = "10.200.0.0/16"


def api_port(state):
    with open(os.path.join(state, "api", "port")) as f:
        return int(f.read().strip())


def post_all(port, path_objs, workers=8, method="POST",
             ctype="application/json"):
    """POST (path, object) pairs, `workers` connections at once; 409 is fine."""

    def worker(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        bad = 0
        for path, obj in chunk:
            conn.request(method, path, json.dumps(obj), {"Content-Type": ctype})
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


def svc_of(i):
    """Service `s` lives in namespace s % 100 and selects 30 of that namespace's pods
    (selectors are namespace-scoped; pod i is in namespace i % 100)."""
    return f"syn-svc-{(i // NAMESPACES) // 30 * NAMESPACES + i % NAMESPACES:04d}"


def pod(i, nodes):
    ns = f"syn-{i % NAMESPACES:03d}"
    name = f"app-{i:05d}"
    return (f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {LABEL: "true", "app": "syn", "svc": svc_of(i)},
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
        "status": {"phase": "Running", "podIP": pod_ip(i), "podIPs": [{"ip": pod_ip(i)}],
                   "conditions": [{"type": "Ready", "status": "True"}]},
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


def transact(sock, ops):
    """One OVSDB transaction on OVN_Northbound, as JSON-RPC over the NB's unix socket.

    One transaction of thousands of rows takes about a second; `ovn-nbctl` loads the
    whole NB for every call (a minute per 1,000 ports), and a batch this size does not
    fit in one argv string for `ovsdb-client transact`."""
    req = {"method": "transact", "params": ["OVN_Northbound"] + ops, "id": 1}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(300)
    conn.connect(sock)
    conn.sendall(json.dumps(req).encode())
    dec, buf = json.JSONDecoder(), ""
    try:
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                sys.exit("NB closed the connection before answering the transaction")
            buf += chunk.decode()
            try:
                msg, _ = dec.raw_decode(buf.lstrip())
            except json.JSONDecodeError:
                continue
            buf = ""
            if msg.get("method") == "echo":  # the server's inactivity probe
                conn.sendall(json.dumps({"result": msg["params"], "id": msg["id"]}).encode())
                continue
            break
    finally:
        conn.close()
    if msg.get("error"):
        sys.exit(f"NB transaction failed: {msg['error']}")
    for i, res in enumerate(msg.get("result") or []):
        if isinstance(res, dict) and "error" in res:
            sys.exit(f"NB transaction refused at op {i}: {res}")


def oset(items):
    return ["set", items]


def nb_rows(sock, pods):
    """The synthetic subnet's switch and one LSP per pod (what kube-ovn-controller
    writes when it allocates a pod), in batches of 5,000, each one transaction."""
    existing = subprocess.run(["ovn-nbctl", f"--db=unix:{sock}", "--timeout=60", "--bare",
                               "--columns=name", "find", "Logical_Switch", f"name={SUBNET}"],
                              capture_output=True, text=True)
    if existing.stdout.strip():
        sys.exit(f"switch {SUBNET} already exists: run this once per sandbox")
    transact(sock, [
        {"op": "insert", "table": "Logical_Switch",
         "row": {"name": SUBNET, "other_config": ["map", [["subnet", SUBNET_CIDR]]],
                 "external_ids": ["map", [["vendor", "kube-ovn"], [LABEL, "true"]]]}},
    ])
    step = 5000
    for start in range(0, pods, step):
        ops = []
        for i in range(start, min(start + step, pods)):
            ns = i % NAMESPACES
            ops.append({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": f"p{i}",
                        "row": {"name": f"app-{i:05d}.syn-{ns:03d}",
                                "addresses": oset([f"{pod_mac(i)} {pod_ip(i)}"]),
                                "external_ids": ["map", [["pod", f"syn-{ns:03d}/app-{i:05d}"],
                                                         ["ls", SUBNET],
                                                         ["vendor", "kube-ovn"]]]}})
        refs = [["named-uuid", f"p{i}"] for i in range(start, min(start + step, pods))]
        ops.append({"op": "mutate", "table": "Logical_Switch",
                    "where": [["name", "==", SUBNET]],
                    "mutations": [["ports", "insert", oset(refs)]]})
        transact(sock, ops)


def policy(k):
    """A deny-all ingress NetworkPolicy per namespace: the sandbox's controller
    stand-in turns it into Kube-OVN's port group, address sets and ACLs."""
    ns = f"syn-{k:03d}"
    return (f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": ns, "labels": {LABEL: "true"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    })


def service(s):
    """A ClusterIP Service per 30 pods (selector svc=...): the controller stand-in
    writes its Endpoints/EndpointSlice and its VIP into Kube-OVN's cluster LB."""
    ns = f"syn-{s % NAMESPACES:03d}"
    return (f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"syn-svc-{s:04d}", "namespace": ns, "labels": {LABEL: "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{200 + s // 250}.{s % 250 + 1}",
                 "clusterIPs": [f"10.96.{200 + s // 250}.{s % 250 + 1}"],
                 "selector": {"svc": f"syn-svc-{s:04d}"},
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]},
    })


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
    pods = [pod(i, a.nodes) for i in range(a.pods)]
    bad += post_all(port, pods)
    # like an apiserver, the emulator ignores status on create: the "kubelet" of a
    # synthetic pod reports it Running and Ready through the status subresource
    bad += post_all(port, [(f"{path}/{obj['metadata']['name']}/status", {"status": obj["status"]})
                           for path, obj in pods],
                    method="PATCH", ctype="application/merge-patch+json")
    print(f"API: {a.nodes} nodes, {a.pods} pods posted ({bad} refused)")
    nb_rows(nb_socket(state), a.pods)
    print(f"NB: {a.pods} LSPs on {SUBNET}")
    bad = post_all(port, [policy(k) for k in range(NAMESPACES)])
    bad += post_all(port, [service(s) for s in range(a.pods // 30)])
    print(f"API: {NAMESPACES} NetworkPolicies, {a.pods // 30} Services posted ({bad} refused);"
          " the controller stand-in writes their port groups, ACLs and VIPs")


if __name__ == "__main__":
    main()
