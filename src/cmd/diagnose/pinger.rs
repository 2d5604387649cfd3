//! Reading `kube-ovn-pinger --mode=job` output. Upstream's job exits 0 even
//! when pings are lost (unless `--exit-code` is given, which upstream's own
//! diagnose does not pass), so the verdict comes from its klog lines: error
//! and fatal lines, "loss count N" with N > 0, and "... connectivity ... failed".
//! Fixtures: `tests/fixtures/diagnose/pinger/` (the sandbox's stand-in, which
//! logs upstream's messages; see COMMANDS.tsv).

/// klog's header `Lmmdd hh:mm:ss.uuuuuu threadid file:line] ` -> (severity, message).
fn klog(line: &str) -> Option<(char, &str)> {
    let sev = line.chars().next()?;
    if !matches!(sev, 'I' | 'W' | 'E' | 'F') || !line[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let (_, msg) = line.split_once("] ")?;
    Some((sev, msg.trim()))
}

fn lost(msg: &str) -> bool {
    msg.split_once("loss count ")
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<u32>().ok())
        })
        .is_some_and(|n| n > 0)
}

/// The problems one run reported, each as the pinger's own message.
pub fn problems(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| {
            let (sev, msg) = klog(l.trim_end())?;
            let failed = matches!(sev, 'E' | 'F')
                || lost(msg)
                || (msg.contains("connectivity to") && msg.ends_with("failed"));
            failed.then(|| msg.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(name: &str) -> String {
        ko_testkit::fixture!(&format!("diagnose/pinger/{name}"))
    }

    #[test]
    fn a_clean_run_has_no_problems() {
        let out = fx("job-ok.txt");
        assert!(out.contains("ping pod:"));
        assert_eq!(problems(&out), Vec::<String>::new());
    }

    #[test]
    fn lost_pings_and_failed_connects_are_problems() {
        let p = problems(&fx("job-failures.txt"));
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("TCP connectivity to targetIPPort 172.18.0.2:1 failed"));
        assert!(p[1].contains("172.18.0.250") && p[1].contains("loss count 3"));
    }

    #[test]
    fn error_lines_count_and_other_text_does_not() {
        let out = "E1125 10:00:00.000001       1 ping.go:1] failed to list nodes, boom\n\
                   I1125 10:00:00.000002       1 ping.go:2] ping pod: a 10.0.0.1, count: 3, loss count 0, average rtt 1.00ms\n\
                   Error from server: not klog\n";
        assert_eq!(problems(out), ["failed to list nodes, boom"]);
        // none of these is a klog line: no panic, and no problem read from them
        for junk in ["", "\u{0}", "E", "I] x", "Ex] y", "E1 no bracket"] {
            assert_eq!(problems(junk), Vec::<String>::new(), "{junk:?}");
        }
    }
}
