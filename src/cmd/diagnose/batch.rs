//! Many probes in one exec: a source pod runs all its probes at once from one `bash`
//! process, so a node's row of the matrix costs one API round trip instead of one per
//! cell. The script is a constant; each probe's argv (built by `probe.rs` from parsed
//! addresses) arrives as positional parameters, length-prefixed, never spliced into
//! script text. A probe may carry a retry argv, run when the first exits 1 (ping's
//! "no reply"), replacing the first one's output.
//!
//! Output, after every probe has finished, per probe in order:
//! `<index> <exit> <stdout bytes> <stderr bytes>\n` followed by exactly those bytes.
//! The framing loop uses bash builtins only (`read`, `${#v}` counting bytes under
//! `LC_ALL=C`): with a few hundred probes running at once on a node, the
//! `cat`/`wc` processes it used to start per probe were a third of the exec's
//! processes. (A probe's output is text: `read -d ''` would stop at a NUL.)

/// Most probes one exec runs at once (a full mesh on a large cluster is split).
pub const MAX_PER_EXEC: usize = 64;

/// Exit status the script reports for a probe whose status file is missing.
const NO_STATUS: i32 = 98;

const SCRIPT: &str = r#"d=$(mktemp -d) || exit 90
trap 'rm -rf "$d"' EXIT
one() {
  local i=$1 n=$2; shift 2
  local first=("${@:1:n}"); shift "$n"
  local m=$1; shift
  local again=("${@:1:m}")
  "${first[@]}" >"$d/$i.o" 2>"$d/$i.e"; local r=$?
  if [ "$r" -eq 1 ] && [ "$m" -gt 0 ]; then
    "${again[@]}" >"$d/$i.o" 2>"$d/$i.e"; r=$?
  fi
  echo "$r" >"$d/$i.r"
}
a=("$@"); p=0; i=0
while [ "$p" -lt "${#a[@]}" ]; do
  n=${a[p]}; m=${a[p+n+1]}
  one "$i" "${a[@]:p:n+m+2}" &
  p=$((p+n+m+2)); i=$((i+1))
done
wait
LC_ALL=C
for ((j=0; j<i; j++)); do
  r=98 o= e=
  [ -e "$d/$j.r" ] && read -r r <"$d/$j.r"
  IFS= read -r -d '' o <"$d/$j.o"
  IFS= read -r -d '' e <"$d/$j.e"
  printf '%s %s %s %s\n%s%s' "$j" "${r:-98}" "${#o}" "${#e}" "$o" "$e"
done"#;

/// One probe to run: its argv and an optional retry when it exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub argv: Vec<String>,
    pub retry: Option<Vec<String>>,
}

/// What one probe printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOutput {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The argv of one exec running `jobs` concurrently.
pub fn argv(jobs: &[Job]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "bash".into(),
        "-c".into(),
        SCRIPT.into(),
        "kubectl-ko-probes".into(),
    ];
    for job in jobs {
        v.push(job.argv.len().to_string());
        v.extend(job.argv.iter().cloned());
        let retry = job.retry.as_deref().unwrap_or_default();
        v.push(retry.len().to_string());
        v.extend(retry.iter().cloned());
    }
    v
}

/// Reads the framed output back into one result per job (None where the output
/// stopped short: the exec was cut or the script could not run).
pub fn parse(out: &[u8], jobs: usize) -> Vec<Option<JobOutput>> {
    let mut results = vec![None; jobs];
    let mut rest = out;
    while let Some((header, body)) = split_line(rest) {
        let Some((index, output, used)) = frame(header, body) else {
            break;
        };
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(output);
        }
        rest = &body[used..];
    }
    results
}

fn split_line(b: &[u8]) -> Option<(&str, &[u8])> {
    let nl = b.iter().position(|&c| c == b'\n')?;
    Some((std::str::from_utf8(&b[..nl]).ok()?, &b[nl + 1..]))
}

/// One frame: header fields, then stdout and stderr bytes. Returns the bytes used.
fn frame(header: &str, body: &[u8]) -> Option<(usize, JobOutput, usize)> {
    let f: Vec<&str> = header.split_whitespace().collect();
    let [index, code, olen, elen] = f.as_slice() else {
        return None;
    };
    let (olen, elen): (usize, usize) = (olen.parse().ok()?, elen.parse().ok()?);
    let stdout = body.get(..olen)?;
    let stderr = body.get(olen..olen + elen)?;
    let output = JobOutput {
        exit_code: code.parse().unwrap_or(NO_STATUS),
        stdout: String::from_utf8_lossy(stdout).into_owned(),
        stderr: String::from_utf8_lossy(stderr).into_owned(),
    };
    Some((index.parse().ok()?, output, olen + elen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn job(argv: &[&str], retry: Option<&[&str]>) -> Job {
        Job {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            retry: retry.map(|r| r.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// Runs the real script with the local bash.
    fn run(jobs: &[Job]) -> Vec<Option<JobOutput>> {
        let a = argv(jobs);
        let out = Command::new(&a[0]).args(&a[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse(&out.stdout, jobs.len())
    }

    #[test]
    fn every_job_reports_its_own_output_and_exit() {
        let jobs = [
            job(&["printf", "a\nb"], None),
            job(&["sh", "-c", "echo oops >&2; exit 3"], None),
            job(&["echo", "$(touch /nonexistent/x); not expanded"], None),
            job(
                &["sh", "-c", "echo first; exit 1"],
                Some(&["echo", "second"]),
            ),
            job(&["sh", "-c", "exit 2"], Some(&["echo", "never"])),
            job(&["printf", "r\u{e9}ponse\n\n"], None),
        ];
        let r: Vec<JobOutput> = run(&jobs).into_iter().map(Option::unwrap).collect();
        assert_eq!((r[0].exit_code, r[0].stdout.as_str()), (0, "a\nb"));
        assert_eq!((r[1].exit_code, r[1].stderr.as_str()), (3, "oops\n"));
        assert_eq!(r[2].stdout, "$(touch /nonexistent/x); not expanded\n");
        assert_eq!((r[3].exit_code, r[3].stdout.as_str()), (0, "second\n"));
        assert_eq!((r[4].exit_code, r[4].stdout.as_str()), (2, ""));
        // lengths are bytes, trailing newlines kept
        assert_eq!(r[5].stdout, "r\u{e9}ponse\n\n");
    }

    #[test]
    fn probes_run_concurrently() {
        // The first job waits for a file only the second creates: run one after the
        // other, the first would give up (exit 124) before the second started.
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag").to_string_lossy().into_owned();
        let wait = "while [ ! -e \"$0\" ]; do sleep 0.05; done";
        let jobs = [
            job(&["timeout", "5", "sh", "-c", wait, &flag], None),
            job(&["touch", &flag], None),
        ];
        let r = run(&jobs);
        assert_eq!(r[0].as_ref().unwrap().exit_code, 0);
    }

    #[test]
    fn short_output_leaves_the_rest_unknown() {
        let r = parse(b"0 0 2 0\nok1 1 5 0\nab", 3);
        assert_eq!(r[0].as_ref().unwrap().stdout, "ok");
        assert!(r[1].is_none() && r[2].is_none());
    }
}
