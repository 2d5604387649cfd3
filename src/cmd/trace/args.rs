//! The upstream argument forms, checked before anything touches the cluster:
//! `<ns/pod | pod (+ -n) | node//name> <dst-ip> [dst-mac] icmp|tcp|udp [port]`
//! and `... [dst-mac] arp [request|reply]`; the destination may also be a
//! name (`<ns>/<pod>`, `svc/<ns>/<name>`, `node//<name>`, see destination.rs),
//! and a Service needs no port.

use std::net::IpAddr;

use ko_ovn::microflow::{ArpOp, Mac, Protocol};

use crate::cli::TraceArgs;
use crate::error::{Error, Result};

const USAGE: &str = "usage: kubectl ko trace <namespace/pod | pod -n <ns> | node//<node>> <dst-ip | namespace/pod | svc/<ns>/<name> | node//<node>> [dst-mac] <icmp | tcp <port> | udp <port> | arp [request|reply]>";

/// Where the packet starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    Pod { namespace: String, name: String },
    Node(String),
}

/// Where the packet goes, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestRef {
    Ip(IpAddr),
    Pod { namespace: String, name: String },
    Service { namespace: String, name: String },
    Node(String),
}

/// The protocol as given; only a Service destination may leave the port out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoArg {
    Icmp,
    Tcp(Option<u16>),
    Udp(Option<u16>),
    Arp(ArpOp),
}

/// The validated arguments; [`Parsed::resolved`] makes the request once the
/// destination is an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub source: SourceRef,
    pub destination: DestRef,
    pub dst_mac: Option<Mac>,
    pub proto: ProtoArg,
}

impl Parsed {
    /// The port given on the command line.
    pub fn port(&self) -> Option<u16> {
        match self.proto {
            ProtoArg::Tcp(p) | ProtoArg::Udp(p) => p,
            _ => None,
        }
    }

    /// `tcp`/`udp` when the protocol takes a port.
    pub fn protocol_name(&self) -> Option<&'static str> {
        match self.proto {
            ProtoArg::Tcp(_) => Some("tcp"),
            ProtoArg::Udp(_) => Some("udp"),
            _ => None,
        }
    }

    /// The request to `dst_ip`; `port` fills a port the user left out.
    pub fn resolved(&self, dst_ip: IpAddr, port: Option<u16>) -> Result<Request> {
        let need = |p: Option<u16>, proto: &str| {
            p.or(port)
                .ok_or_else(|| usage(format!("{proto} needs a destination port")))
        };
        let protocol = match self.proto {
            ProtoArg::Icmp => Protocol::Icmp,
            ProtoArg::Tcp(p) => Protocol::Tcp {
                port: need(p, "tcp")?,
            },
            ProtoArg::Udp(p) => Protocol::Udp {
                port: need(p, "udp")?,
            },
            ProtoArg::Arp(op) => {
                if dst_ip.is_ipv6() {
                    return Err(usage(format!(
                        "ARP has no IPv6 form ({dst_ip} is IPv6); trace icmp/tcp/udp instead"
                    )));
                }
                Protocol::Arp { op }
            }
        };
        Ok(Request {
            source: self.source.clone(),
            dst_ip,
            dst_mac: self.dst_mac,
            protocol,
        })
    }
}

/// A validated trace request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub source: SourceRef,
    pub dst_ip: IpAddr,
    pub dst_mac: Option<Mac>,
    pub protocol: Protocol,
}

fn usage(msg: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{msg}\n{USAGE}"))
}

pub fn parse(args: &TraceArgs) -> Result<Parsed> {
    let source = if let Some((kind, node)) = args.target.split_once("//") {
        if kind != "node" || node.is_empty() || node.contains('/') {
            return Err(usage(format!(
                "'{}' is not a trace source; a node is written node//<name>",
                args.target
            )));
        }
        SourceRef::Node(node.to_string())
    } else if let Some((ns, name)) = args.target.split_once('/') {
        if ns.is_empty() || name.is_empty() || name.contains('/') {
            return Err(usage(format!("'{}' is not <namespace>/<pod>", args.target)));
        }
        SourceRef::Pod {
            namespace: ns.to_string(),
            name: name.to_string(),
        }
    } else {
        SourceRef::Pod {
            // upstream's default when no namespace is given
            namespace: args.namespace.clone().unwrap_or_else(|| "default".into()),
            name: args.target.clone(),
        }
    };
    let destination = parse_destination(&args.dst_ip)?;
    let mut rest = args.rest.iter().map(String::as_str).peekable();
    // an optional MAC comes first (upstream: 6 groups of 1-2 hex digits)
    let dst_mac = match rest.peek() {
        Some(w) if w.contains(':') => {
            let mac = w.parse::<Mac>().map_err(usage)?;
            rest.next();
            Some(mac)
        }
        _ => None,
    };
    let proto = rest
        .next()
        .ok_or_else(|| usage("missing protocol (icmp, tcp, udp or arp)"))?;
    let arg = rest.next();
    if let Some(extra) = rest.next() {
        return Err(usage(format!("unexpected argument '{extra}'")));
    }
    let service = matches!(destination, DestRef::Service { .. });
    let port = |p: Option<&str>| -> Result<Option<u16>> {
        let Some(p) = p else {
            // a Service gives its own port
            return if service {
                Ok(None)
            } else {
                Err(usage(format!("{proto} needs a destination port")))
            };
        };
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(usage(format!("'{p}' is not a port (1-65535)"))),
        }
    };
    let proto = match proto {
        "icmp" => {
            if let Some(a) = arg {
                return Err(usage(format!("icmp takes no port (got '{a}')")));
            }
            ProtoArg::Icmp
        }
        "tcp" => ProtoArg::Tcp(port(arg)?),
        "udp" => ProtoArg::Udp(port(arg)?),
        "arp" => {
            let op = match arg {
                None | Some("request") => ArpOp::Request,
                Some("reply") => ArpOp::Reply,
                Some(o) => {
                    return Err(usage(format!(
                        "'{o}' is not an ARP type (request or reply)"
                    )));
                }
            };
            if let DestRef::Ip(ip @ IpAddr::V6(_)) = destination {
                return Err(usage(format!(
                    "ARP has no IPv6 form ({ip} is IPv6); trace icmp/tcp/udp instead"
                )));
            }
            if op == ArpOp::Reply && dst_mac.is_none() {
                return Err(usage(
                    "an ARP reply needs the destination MAC: ... <dst-ip> <dst-mac> arp reply",
                ));
            }
            ProtoArg::Arp(op)
        }
        other => {
            return Err(usage(format!(
                "unknown protocol '{other}' (use icmp, tcp, udp or arp)"
            )));
        }
    };
    Ok(Parsed {
        source,
        destination,
        dst_mac,
        proto,
    })
}

/// An IP (upstream's form, unchanged) or a name.
fn parse_destination(word: &str) -> Result<DestRef> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Ok(DestRef::Ip(ip));
    }
    let bad = || {
        usage(format!(
            "'{word}' is not a destination: give an IPv4 or IPv6 address, <namespace>/<pod>, svc/<namespace>/<name> or node//<node>"
        ))
    };
    if let Some(node) = word.strip_prefix("node//") {
        if node.is_empty() || node.contains('/') {
            return Err(bad());
        }
        return Ok(DestRef::Node(node.to_string()));
    }
    let parts: Vec<&str> = word.split('/').collect();
    match parts.as_slice() {
        ["svc" | "service", ns, name] if !ns.is_empty() && !name.is_empty() => {
            Ok(DestRef::Service {
                namespace: ns.to_string(),
                name: name.to_string(),
            })
        }
        [ns, name] if !ns.is_empty() && !name.is_empty() && *ns != "svc" => Ok(DestRef::Pod {
            namespace: ns.to_string(),
            name: name.to_string(),
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputArg;

    fn args(target: &str, dst: &str, rest: &[&str]) -> TraceArgs {
        TraceArgs {
            target: target.into(),
            dst_ip: dst.into(),
            rest: rest.iter().map(|s| s.to_string()).collect(),
            namespace: None,
            raw: false,
            full: false,
            exit_code: false,
            reply: false,
            output: OutputArg { output: None },
        }
    }

    /// parse, then resolve an IP destination as `run` does.
    fn req(a: &TraceArgs) -> Result<Request> {
        let p = parse(a)?;
        match p.destination {
            DestRef::Ip(ip) => p.resolved(ip, None),
            ref other => panic!("not an IP destination: {other:?}"),
        }
    }

    #[test]
    fn named_destinations() {
        let p = parse(&args("default/a", "default/db", &["tcp", "5432"])).unwrap();
        assert_eq!(
            p.destination,
            DestRef::Pod {
                namespace: "default".into(),
                name: "db".into()
            }
        );
        // a Service may leave the port out; resolving takes the Service's
        let p = parse(&args("default/a", "svc/default/web", &["tcp"])).unwrap();
        assert_eq!(p.proto, ProtoArg::Tcp(None));
        let r = p
            .resolved("10.96.100.10".parse().unwrap(), Some(80))
            .unwrap();
        assert_eq!(r.protocol, Protocol::Tcp { port: 80 });
        // a port given wins
        let p = parse(&args("default/a", "svc/default/web", &["tcp", "81"])).unwrap();
        let r = p.resolved("10.96.100.10".parse().unwrap(), None).unwrap();
        assert_eq!(r.protocol, Protocol::Tcp { port: 81 });
        let p = parse(&args("default/a", "node//n2", &["icmp"])).unwrap();
        assert_eq!(p.destination, DestRef::Node("n2".into()));
        // a pod still needs a port, and ARP to an IPv6 pod address is refused
        assert!(parse(&args("default/a", "default/db", &["tcp"])).is_err());
        let p = parse(&args("default/a", "default/db", &["arp"])).unwrap();
        assert!(p.resolved("fd00::5".parse().unwrap(), None).is_err());
        for bad in ["svc/web", "svc//web", "node//", "a/b/c/d", "/db", "db/"] {
            let e = parse(&args("default/a", bad, &["icmp"])).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn accepted_forms() {
        let r = req(&args("default/a", "10.16.0.9", &["tcp", "80"])).unwrap();
        assert_eq!(
            r.source,
            SourceRef::Pod {
                namespace: "default".into(),
                name: "a".into()
            }
        );
        assert_eq!(r.protocol, Protocol::Tcp { port: 80 });
        let r = req(&args("node//n1", "fd00::1", &["0a:58:0a:10:00:01", "icmp"])).unwrap();
        assert_eq!(r.source, SourceRef::Node("n1".into()));
        assert_eq!(r.dst_mac.unwrap().to_string(), "0a:58:0a:10:00:01");
        let mut a = args("p", "10.0.0.1", &["arp"]);
        a.namespace = Some("kube-system".into());
        let r = req(&a).unwrap();
        assert_eq!(r.protocol, Protocol::Arp { op: ArpOp::Request });
        assert!(
            matches!(r.source, SourceRef::Pod { ref namespace, .. } if namespace == "kube-system")
        );
        let r = req(&args("p", "10.0.0.1", &["a:b:c:d:e:f", "arp", "reply"])).unwrap();
        assert_eq!(r.protocol, Protocol::Arp { op: ArpOp::Reply });
        assert!(
            matches!(req(&args("p", "10.0.0.1", &["udp", "53"])).unwrap().source, SourceRef::Pod { ref namespace, .. } if namespace == "default")
        );
    }

    #[test]
    fn every_bad_input_is_a_usage_error() {
        for (t, d, r) in [
            ("default/a", "10.16.0.300", &["icmp"][..]),
            ("default/a", "10.16.0.9", &["tcp"][..]),
            ("default/a", "10.16.0.9", &["udp", "0"][..]),
            ("default/a", "10.16.0.9", &["udp", "http"][..]),
            ("default/a", "10.16.0.9", &["sctp", "80"][..]),
            ("default/a", "fd00::9", &["arp"][..]),
            ("default/a", "10.16.0.9", &["arp", "gratuitous"][..]),
            ("default/a", "10.16.0.9", &["arp", "reply"][..]),
            ("default/a", "10.16.0.9", &["icmp", "80"][..]),
            ("default/a", "10.16.0.9", &["tcp", "80", "x"][..]),
            ("default/a", "10.16.0.9", &["zz:zz:zz:zz:zz:zz", "icmp"][..]),
            ("a/b/c", "10.16.0.9", &["icmp"][..]),
            ("pod//x", "10.16.0.9", &["icmp"][..]),
            ("node//", "10.16.0.9", &["icmp"][..]),
        ] {
            let e = req(&args(t, d, r)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{t} {d} {r:?}: {e}");
            assert!(e.to_string().contains("usage: kubectl ko trace"));
        }
    }
}
