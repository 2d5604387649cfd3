//! Probe commands run inside existing pods, and how their output is read.
//! `ping -c1 -W1 <ip>` (iputils) for ICMP; `curl` for a TCP connect to a
//! Service (curl is in the Kube-OVN image; upstream's kube-proxy check uses it);
//! bash's `/dev/udp` for UDP (the Kube-OVN image is Ubuntu with bash, and has no
//! netcat).
//! Fixtures: `tests/fixtures/diagnose/ping/` (command and exit code in COMMANDS.tsv).

use std::net::IpAddr;

/// argv for one ICMP probe. The address is a parsed `IpAddr`, so nothing but
/// an address reaches the remote argv.
pub fn ping_argv(ip: IpAddr) -> Vec<String> {
    vec!["ping".into(), "-c1".into(), "-W1".into(), ip.to_string()]
}

/// argv for the confirmation ping after a lost single probe: three packets,
/// a longer wait. One lost packet on a busy node is not an outage.
pub fn ping_retry_argv(ip: IpAddr) -> Vec<String> {
    vec![
        "ping".into(),
        "-c3".into(),
        "-i0.2".into(),
        "-W2".into(),
        ip.to_string(),
    ]
}

/// argv for a TCP connect probe (`curl telnet://` would wait for stdin; an
/// http:// URL connects, and the exit code says whether the connect worked).
pub fn tcp_argv(ip: IpAddr, port: u16) -> Vec<String> {
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    vec![
        "curl".into(),
        "-s".into(),
        "-o".into(),
        "/dev/null".into(),
        "--connect-timeout".into(),
        "2".into(),
        "-m".into(),
        "3".into(),
        format!("http://{host}:{port}/"),
    ]
}

/// How long a UDP probe waits for a reply or an ICMP error.
pub const UDP_WAIT_SECS: u32 = 2;

/// The UDP probe: a connected UDP socket (bash `/dev/udp`), one datagram, then
/// one read. A connected socket receives the ICMP port unreachable as
/// ECONNREFUSED on that read. The script is a constant; address, port and wait
/// arrive as positional parameters, never spliced into the script text.
/// Exit 0 = reply, 2 = silence, 1 = read error (reason on stderr), 3/4 = could
/// not open or send.
const UDP_SCRIPT: &str = r#"exec 3<>"/dev/udp/$1/$2" || exit 3
printf 'kubectl-ko diagnose UDP probe\n' >&3 || exit 4
read -r -t "$3" -N 1 -u 3 _
rc=$?
if [ "$rc" -eq 0 ]; then echo "reply from $1 port $2"; exit 0; fi
if [ "$rc" -gt 128 ]; then echo "no reply within $3 s"; exit 2; fi
exit 1"#;

/// argv for one UDP probe.
pub fn udp_argv(ip: IpAddr, port: u16) -> Vec<String> {
    vec![
        "bash".into(),
        "-c".into(),
        UDP_SCRIPT.into(),
        "kubectl-ko-udp-probe".into(),
        ip.to_string(),
        port.to_string(),
        UDP_WAIT_SECS.to_string(),
    ]
}

/// What one UDP probe said. UDP has no handshake: a reply proves a listener,
/// an ICMP port unreachable proves the path and no listener, silence proves
/// nothing (a listener that ignores our datagram, or a drop): "open|filtered".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpOutcome {
    Reply,
    /// ICMP port unreachable came back: reached, nothing listening.
    Closed,
    NoReply,
    /// ICMP host/network unreachable, or no route.
    Unreachable {
        detail: String,
    },
    Error {
        detail: String,
    },
}

/// The first non-empty line a probe printed, stderr first (where tools put
/// the reason they failed).
fn first_message(stdout: &str, stderr: &str) -> String {
    stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string()
}

pub fn parse_udp(exit_code: i32, stdout: &str, stderr: &str) -> UdpOutcome {
    let reason = first_message(stdout, stderr);
    match exit_code {
        0 => UdpOutcome::Reply,
        2 => UdpOutcome::NoReply,
        1 | 3 | 4 if reason.contains("Connection refused") => UdpOutcome::Closed,
        1 | 3 | 4
            if [
                "No route to host",
                "Network is unreachable",
                "Host is unreachable",
            ]
            .iter()
            .any(|m| reason.contains(m)) =>
        {
            UdpOutcome::Unreachable { detail: reason }
        }
        126 | 127 => UdpOutcome::Error {
            detail: "bash is not available in the probe pod".into(),
        },
        n => UdpOutcome::Error {
            detail: format!("UDP probe exit {n}: {reason}"),
        },
    }
}

/// What one ping said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingOutcome {
    /// At least one reply.
    Reply { detail: String },
    /// Sent, nothing came back.
    NoReply { detail: String },
    /// Could not even send (no route, bad address, tool missing).
    Error { detail: String },
}

/// Read `ping -c1 -W1` output and its exit code (0 reply, 1 no reply, 2 error).
pub fn parse_ping(exit_code: i32, stdout: &str, stderr: &str) -> PingOutcome {
    let stats = stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .map(|l| l.trim().to_string());
    let received = stats.as_deref().and_then(|l| {
        l.split(',').map(str::trim).find_map(|p| {
            p.strip_suffix(" received")
                .and_then(|n| n.parse::<u32>().ok())
        })
    });
    match (received, exit_code) {
        (Some(n), _) if n > 0 => PingOutcome::Reply {
            detail: stats.unwrap_or_default(),
        },
        (Some(_), _) => PingOutcome::NoReply {
            detail: stats.unwrap_or_default(),
        },
        (None, _) => PingOutcome::Error {
            detail: format!("exit {exit_code}: {}", first_message(stdout, stderr)),
        },
    }
}

/// What one TCP connect said, from curl's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOutcome {
    Connected,
    Refused,
    TimedOut,
    Error { detail: String },
}

pub fn parse_curl(exit_code: i32, stderr: &str) -> TcpOutcome {
    match exit_code {
        // 0 = an HTTP answer; 52 empty reply, 56 recv failure, 1/8/22 protocol
        // trouble: all mean the TCP connection itself was made.
        0 | 1 | 8 | 22 | 52 | 56 => TcpOutcome::Connected,
        7 => TcpOutcome::Refused,
        28 => TcpOutcome::TimedOut,
        126 | 127 => TcpOutcome::Error {
            detail: "curl is not available in the probe pod".into(),
        },
        n => TcpOutcome::Error {
            detail: format!("curl exit {n}: {}", stderr.trim()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(name: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/ping/{name}"))
    }

    #[test]
    fn real_ping_outputs() {
        // exit codes as recorded in ping/COMMANDS.tsv
        assert!(matches!(
            parse_ping(0, &fx("reply.txt"), ""),
            PingOutcome::Reply { .. }
        ));
        assert!(matches!(
            parse_ping(0, &fx("reply-v6.txt"), ""),
            PingOutcome::Reply { .. }
        ));
        match parse_ping(1, &fx("timeout.txt"), "") {
            PingOutcome::NoReply { detail } => assert!(detail.contains("0 received")),
            other => panic!("{other:?}"),
        }
        // ping prints the connect error on stderr; the fixture merged both streams
        match parse_ping(2, "", &fx("unreachable.txt")) {
            PingOutcome::Error { detail } => {
                assert!(detail.contains("Network is unreachable"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_tool_is_an_error() {
        assert!(matches!(
            parse_ping(127, "", "exec: \"ping\": executable file not found"),
            PingOutcome::Error { .. }
        ));
    }

    #[test]
    fn argv_is_an_address_only() {
        let ip: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(ping_argv(ip), ["ping", "-c1", "-W1", "fd00::1"]);
        assert_eq!(tcp_argv(ip, 53).last().unwrap(), "http://[fd00::1]:53/");
    }

    #[test]
    fn udp_argv_keeps_the_address_out_of_the_script() {
        let ip: IpAddr = "fd00::1".parse().unwrap();
        let a = udp_argv(ip, 53);
        assert_eq!(a[..2], ["bash", "-c"]);
        assert!(!a[2].contains("fd00"));
        assert_eq!(a[4..], ["fd00::1", "53", "2"]);
    }

    #[test]
    fn real_udp_probe_outputs() {
        // stdout/stderr and exit codes as recorded in ping/COMMANDS.tsv
        assert_eq!(parse_udp(0, &fx("udp-reply.txt"), ""), UdpOutcome::Reply);
        assert_eq!(parse_udp(1, "", &fx("udp-refused.txt")), UdpOutcome::Closed);
        assert_eq!(parse_udp(2, &fx("udp-silent.txt"), ""), UdpOutcome::NoReply);
        assert!(matches!(
            parse_udp(127, "", "bash: not found"),
            UdpOutcome::Error { .. }
        ));
    }

    #[test]
    fn curl_exit_codes() {
        assert_eq!(parse_curl(52, ""), TcpOutcome::Connected);
        assert_eq!(parse_curl(7, ""), TcpOutcome::Refused);
        assert_eq!(parse_curl(28, ""), TcpOutcome::TimedOut);
        assert!(matches!(parse_curl(127, ""), TcpOutcome::Error { .. }));
    }
}
