//! `diagnose IPPorts <proto>-<ip>-<port>[,...]`, upstream's pinger
//! `--target-ip-ports` syntax, validated before anything runs.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPort {
    pub proto: Proto,
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for IpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.proto.as_str(), self.ip, self.port)
    }
}

/// Parse the comma-separated list; the error names the bad item and the form.
pub fn parse(list: &str) -> Result<Vec<IpPort>, String> {
    let items: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(format!(
            "IPPorts {list:?} is empty; give <proto>-<ip>-<port>[,...], e.g. tcp-10.96.0.10-53,udp-10.96.0.10-53"
        ));
    }
    items.into_iter().map(parse_one).collect()
}

fn parse_one(item: &str) -> Result<IpPort, String> {
    let bad = |why: &str| {
        format!(
            "malformed IPPorts item {item:?}: {why}; expected <proto>-<ip>-<port> with proto tcp or udp, e.g. tcp-10.96.0.10-53"
        )
    };
    // IPv6 addresses contain no '-', so splitting at the first and last '-' is exact.
    let (proto, rest) = item.split_once('-').ok_or_else(|| bad("no '-'"))?;
    let (ip, port) = rest.rsplit_once('-').ok_or_else(|| bad("no port"))?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => return Err(bad(&format!("unknown protocol {other:?}"))),
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| bad(&format!("{ip:?} is not an IP address")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(&format!("{port:?} is not a port number (1-65535)")))?;
    Ok(IpPort { proto, ip, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_examples_parse() {
        let v = parse("tcp-172.18.0.2-53,udp-172.18.0.3-53").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].proto, Proto::Tcp);
        assert_eq!(v[1].to_string(), "udp-172.18.0.3-53");
        let v6 = parse("tcp-fd00:10:96::a-53").unwrap();
        assert_eq!(v6[0].ip.to_string(), "fd00:10:96::a");
    }

    #[test]
    fn malformed_items_are_named() {
        let e = parse("tcp-1.2.3.4-x").unwrap_err();
        assert!(e.contains("tcp-1.2.3.4-x") && e.contains("port"), "{e}");
        assert!(parse("icmp-1.2.3.4-1").unwrap_err().contains("protocol"));
        assert!(parse("tcp-1.2.3-53").unwrap_err().contains("IP address"));
        assert!(parse("tcp-1.2.3.4-0").is_err());
        assert!(parse("tcp").is_err());
        assert!(parse(" , ").is_err());
    }
}
