#!/usr/bin/env python3
"""List the longest Rust functions of the workspace (non-test code).

How it measures: the tree is rustfmt-formatted (CI checks `cargo fmt --check`),
so a function starts at a line `<indent>[pub ][async ][const ][unsafe ]fn name`
and ends at the first later line that is exactly `<indent>}`. The length is
that span, inclusive, in lines (signature, doc-less body, closing brace).
`#[cfg(test)]` modules and the tests/, benches/ and examples/ folders are left out.

Usage: bench/fn-lengths.py [--top N] [--over LINES] [PATH ...]
(default PATHs: src ovn/src sandbox/apiserver/src sandbox/dataplane/src)
"""
import os
import re
import sys

FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))? )?(?:(?:async|const|unsafe|extern \"C\") )*fn (\w+)")
TEST_MOD = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))? )?mod \w+ \{\s*$")


def functions(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i, out = 0, []
    while i < len(lines):
        line = lines[i]
        # Skip a #[cfg(test)] module whole.
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines):
            m = TEST_MOD.match(lines[i + 1])
            if m:
                close = m.group(1) + "}"
                j = i + 2
                while j < len(lines) and lines[j] != close:
                    j += 1
                i = j + 1
                continue
        m = FN.match(line)
        if m:
            indent, name = m.group(1), m.group(2)
            # A signature may run over several lines; find where it opens its body.
            j = i
            while j < len(lines) and not lines[j].rstrip().endswith(("{", ";", "}")):
                j += 1
            if j < len(lines) and lines[j].rstrip().endswith("{"):
                close = indent + "}"
                k = j + 1
                while k < len(lines) and lines[k] != close:
                    k += 1
                out.append((k - i + 1, name, i + 1))
        i += 1
    return out


def main(argv):
    top, over, roots = 25, None, []
    it = iter(argv)
    for a in it:
        if a == "--top":
            top = int(next(it))
        elif a == "--over":
            over = int(next(it))
        else:
            roots.append(a)
    roots = roots or ["src", "ovn/src", "sandbox/apiserver/src", "sandbox/dataplane/src"]
    found = []
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs[:] = sorted(x for x in dirs if x not in ("tests", "benches", "examples", "target"))
            for fn in sorted(files):
                if fn.endswith(".rs") and fn != "tests.rs":
                    p = os.path.join(d, fn)
                    found += [(n, name, p, line) for (n, name, line) in functions(p)]
    found.sort(key=lambda t: (-t[0], t[2], t[3]))
    if over is not None:
        found = [t for t in found if t[0] > over]
    else:
        found = found[:top]
    for n, name, p, line in found:
        print(f"{n:5}  {name:40} {p}:{line}")


if __name__ == "__main__":
    main(sys.argv[1:])
