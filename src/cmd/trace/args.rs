//! The upstream argument forms, checked before anything touches the cluster:
//! `<ns/pod | pod (+ -n) | node//name> <dst-ip> [dst-mac] icmp|tcp|udp [port]`
//! and `... [dst-mac] arp [request|reply]`.

use std::net::IpAddr;

use ko_ovn::microflow::{ArpOp, Mac, Protocol};

use crate::cli::TraceArgs;
use crate::error::{Error, Result};

const USAGE: &str = "usage: kubectl ko trace <namespace/pod | pod -n <ns> | node//<node>> <dst-ip> [dst-mac] <icmp | tcp <port> | udp <port> | arp [request|reply]>";

/// Where the packet starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    Pod { namespace: String, name: String },
    Node(String),
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

pub fn parse(args: &TraceArgs) -> Result<Request> {
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
    let dst_ip: IpAddr = args.dst_ip.parse().map_err(|_| {
        usage(format!(
            "'{}' is not an IPv4 or IPv6 destination address",
            args.dst_ip
        ))
    })?;

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
    let port = |p: Option<&str>| -> Result<u16> {
        let p = p.ok_or_else(|| usage(format!("{proto} needs a destination port")))?;
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(usage(format!("'{p}' is not a port (1-65535)"))),
        }
    };
    let protocol = match proto {
        "icmp" => {
            if let Some(a) = arg {
                return Err(usage(format!("icmp takes no port (got '{a}')")));
            }
            Protocol::Icmp
        }
        "tcp" => Protocol::Tcp { port: port(arg)? },
        "udp" => Protocol::Udp { port: port(arg)? },
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
            if dst_ip.is_ipv6() {
                return Err(usage(format!(
                    "ARP has no IPv6 form ({dst_ip} is IPv6); trace icmp/tcp/udp instead"
                )));
            }
            if op == ArpOp::Reply && dst_mac.is_none() {
                return Err(usage(
                    "an ARP reply needs the destination MAC: ... <dst-ip> <dst-mac> arp reply",
                ));
            }
            Protocol::Arp { op }
        }
        other => {
            return Err(usage(format!(
                "unknown protocol '{other}' (use icmp, tcp, udp or arp)"
            )));
        }
    };
    Ok(Request {
        source,
        dst_ip,
        dst_mac,
        protocol,
    })
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
            exit_code: false,
            output: OutputArg { output: None },
        }
    }

    #[test]
    fn accepted_forms() {
        let r = parse(&args("default/a", "10.16.0.9", &["tcp", "80"])).unwrap();
        assert_eq!(
            r.source,
            SourceRef::Pod {
                namespace: "default".into(),
                name: "a".into()
            }
        );
        assert_eq!(r.protocol, Protocol::Tcp { port: 80 });
        let r = parse(&args("node//n1", "fd00::1", &["0a:58:0a:10:00:01", "icmp"])).unwrap();
        assert_eq!(r.source, SourceRef::Node("n1".into()));
        assert_eq!(r.dst_mac.unwrap().to_string(), "0a:58:0a:10:00:01");
        let mut a = args("p", "10.0.0.1", &["arp"]);
        a.namespace = Some("kube-system".into());
        let r = parse(&a).unwrap();
        assert_eq!(r.protocol, Protocol::Arp { op: ArpOp::Request });
        assert!(
            matches!(r.source, SourceRef::Pod { ref namespace, .. } if namespace == "kube-system")
        );
        let r = parse(&args("p", "10.0.0.1", &["a:b:c:d:e:f", "arp", "reply"])).unwrap();
        assert_eq!(r.protocol, Protocol::Arp { op: ArpOp::Reply });
        assert!(
            matches!(parse(&args("p", "10.0.0.1", &["udp", "53"])).unwrap().source, SourceRef::Pod { ref namespace, .. } if namespace == "default")
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
            let e = parse(&args(t, d, r)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{t} {d} {r:?}: {e}");
            assert!(e.to_string().contains("usage: kubectl ko trace"));
        }
    }
}
