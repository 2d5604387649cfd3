#!/usr/bin/env bash
# Build krew release archives of kubectl-ko and render the krew plugin manifest
# from the krew-release-bot template (krew-manifest/.krew.yaml) with real sha256s.
#
#   release.sh archive --os OS --arch ARCH --bin PATH [--version vX.Y.Z] [--out DIR]
#       Package one platform's binary as kubectl-ko_<tag>_<os>_<arch>.tar.gz
#       (.zip for windows) with LICENSE beside it. Release runners call this once
#       per platform they built.
#   release.sh manifest [--version vX.Y.Z] [--out DIR] [--allow-missing]
#       Render DIR/plugin.yaml from the template: every {{addURIAndSha URL .TagName}}
#       becomes `uri` + the sha256 of the archive of the same file name in DIR.
#       A platform whose archive is not in DIR is an error, unless --allow-missing:
#       then the platform is left out (a header comment names it), so the manifest
#       offers only archives that exist and passes krew's validation as it stands.
#   release.sh build [--out DIR] [--allow-missing]
#       cargo build --release for this machine's platform, archive it, render.
#
# Defaults: --version v<version in Cargo.toml>, --out target/krew.
# KO_GZIP_LEVEL (default 9) trades archive size for speed (tests archive debug builds).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEMPLATE="$ROOT/krew-manifest/.krew.yaml"

die() { printf 'release.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

cargo_version() {
  # First `version = "..."` inside [package] of the root Cargo.toml.
  awk '/^\[/{p=($0=="[package]")} p && /^version *=/{gsub(/.*= *"|".*/,""); print; exit}' "$ROOT/Cargo.toml"
}

host_platform() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;; Darwin) os=darwin ;; MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) die "unsupported build OS $(uname -s)" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported build architecture $(uname -m)" ;;
  esac
  printf '%s %s\n' "$os" "$arch"
}

source_rev() {
  local rev
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || { echo "an unknown commit"; return; }
  if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    rev="$rev with uncommitted changes"
  fi
  printf 'commit %s\n' "$rev"
}

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

archive_name() { # tag os arch
  local ext=tar.gz
  [[ $2 == windows ]] && ext=zip
  printf 'kubectl-ko_%s_%s_%s.%s\n' "$1" "$2" "$3" "$ext"
}

cmd_archive() { # os arch bin tag out
  local os=$1 arch=$2 bin=$3 tag=$4 out=$5
  [[ -f $bin ]] || die "binary $bin not found (build it first, e.g. cargo build --release)"
  [[ -f $ROOT/LICENSE ]] || die "LICENSE missing at $ROOT/LICENSE: krew requires it in every archive"
  local exe=kubectl-ko
  [[ $os == windows ]] && exe=kubectl-ko.exe
  mkdir -p "$out"
  local stage
  stage=$(mktemp -d)
  cp "$bin" "$stage/$exe"
  chmod 0755 "$stage/$exe"
  cp "$ROOT/LICENSE" "$stage/LICENSE"
  chmod 0644 "$stage/LICENSE"
  local name dest epoch
  name=$(archive_name "$tag" "$os" "$arch")
  dest="$out/$name"
  # Reproducible archives: fixed order, owner and mtime (the commit time).
  epoch=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
  rm -f "$dest"
  if [[ $os == windows ]]; then
    touch -d "@$epoch" "$stage/$exe" "$stage/LICENSE" 2>/dev/null || true
    if command -v zip >/dev/null; then
      (cd "$stage" && zip -q -X "$dest.tmp" "$exe" LICENSE)
    elif command -v 7z >/dev/null; then # windows runners have 7-Zip, not zip
      (cd "$stage" && 7z a -tzip -bd "$dest.tmp" "$exe" LICENSE >/dev/null)
    else
      die "neither zip nor 7z found to build the windows archive"
    fi
  elif tar --version 2>/dev/null | grep 'GNU tar' >/dev/null; then
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
      --format=gnu -C "$stage" -cf - "$exe" LICENSE | gzip -n "-${KO_GZIP_LEVEL:-9}" >"$dest.tmp"
  else
    # bsdtar (macOS): same content and owners; mtimes are the build's.
    tar --uid 0 --gid 0 --uname root --gname root -C "$stage" -cf - "$exe" LICENSE \
      | gzip -n "-${KO_GZIP_LEVEL:-9}" >"$dest.tmp"
  fi
  mv "$dest.tmp" "$dest"
  rm -rf "$stage"
  printf '%s  %s\n' "$(sha256_of "$dest")" "$name" >"$dest.sha256"
  printf '%s\n' "$dest"
}

cmd_manifest() { # tag out allow_missing
  local tag=$1 out=$2 allow_missing=$3
  [[ -f $TEMPLATE ]] || die "template $TEMPLATE not found"
  mkdir -p "$out"
  local dest="$out/plugin.yaml" tmp="$out/plugin.yaml.tmp"
  # A half-written manifest must not survive a failed render.
  MANIFEST_TMP=$tmp
  trap 'rm -f "${MANIFEST_TMP:-}"' EXIT
  local re_uri='^([[:space:]]*)\{\{ *addURIAndSha +"([^"]+)" +\.TagName *\}\}[[:space:]]*$'
  local re_platform='^  - selector:'
  # Platform entries (from one `  - selector:` to the next) are buffered: with
  # --allow-missing an entry whose archive is not in $out is left out whole,
  # so the manifest only offers what exists (krew checks every sha256 it gets).
  local line url file body='' keep=1 in_platforms=0 built=() missing=()
  flush() {
    [[ $keep == 1 ]] && printf '%s' "$body" >>"$tmp"
    body='' keep=1
  }
  : >"$tmp"
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ $re_platform ]]; then
      flush
      in_platforms=1
    fi
    if [[ $line =~ $re_uri ]]; then
      local indent=${BASH_REMATCH[1]}
      url=${BASH_REMATCH[2]//\{\{ .TagName \}\}/$tag}
      file="$out/${url##*/}"
      if [[ -f $file ]]; then
        built+=("${url##*/}")
        body+=$(printf '%suri: %s\n%ssha256: %s' "$indent" "$url" "$indent" "$(sha256_of "$file")")$'\n'
      elif [[ $allow_missing == 1 ]]; then
        missing+=("${url##*/}")
        keep=0
      else
        die "archive ${url##*/} not found in $out (build it with '$0 archive', or pass --allow-missing)"
      fi
    else
      line=${line//\{\{ .TagName \}\}/$tag}
      [[ $line != *'{{'* ]] || die "template line not understood: $line"
      body+="$line"$'\n'
    fi
    [[ $in_platforms == 1 ]] || { printf '%s' "$body" >>"$tmp"; body=''; }
  done <"$TEMPLATE"
  flush
  ((${#built[@]})) || die "no archive of any platform in $out: nothing to put in the manifest"
  {
    printf '# krew plugin manifest for kubectl-ko %s, rendered by krew-manifest/release.sh\n' "$tag"
    printf '# from krew-manifest/.krew.yaml (the krew-release-bot template).\n'
    printf '# Each sha256 is of the archive found in the output directory at render time;\n'
    printf '# this source tree was at %s.\n' "$(source_rev)"
    if ((${#missing[@]})); then
      printf '# Left out (no archive in this run; the release workflow renders every platform):\n'
      printf '#   %s\n' "${missing[@]}"
    fi
    cat "$tmp"
  } >"$tmp.2"
  mv "$tmp.2" "$dest"
  rm -f "$tmp"
  printf 'release.sh: rendered %s\n  platforms:   %s\n  left out:    %s\n' "$dest" \
    "${built[*]}" "${missing[*]:-none}" >&2
  printf '%s\n' "$dest"
}

sub=${1:-}
[[ -n $sub ]] || usage
shift
os='' arch='' bin='' tag='' out="$ROOT/target/krew" allow_missing=0
while (($#)); do
  case "$1" in
    --os) os=${2:?--os needs a value}; shift 2 ;;
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --bin) bin=${2:?--bin needs a path}; shift 2 ;;
    --version) tag=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --allow-missing) allow_missing=1; shift ;;
    -h | --help) usage ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
if [[ -z $tag ]]; then
  v=$(cargo_version)
  [[ -n $v ]] || die "could not read the package version from $ROOT/Cargo.toml"
  tag="v$v"
fi
[[ $tag == v* ]] || die "version $tag must start with v (krew requires a v-prefixed semver)"
mkdir -p "$out"
out=$(cd "$out" && pwd)

case "$sub" in
  archive)
    [[ -n $os && -n $arch && -n $bin ]] || die "archive needs --os, --arch and --bin"
    cmd_archive "$os" "$arch" "$bin" "$tag" "$out"
    ;;
  manifest)
    cmd_manifest "$tag" "$out" "$allow_missing"
    ;;
  build)
    read -r os arch < <(host_platform)
    (cd "$ROOT" && cargo build --release --bin kubectl-ko)
    exe="${CARGO_TARGET_DIR:-$ROOT/target}/release/kubectl-ko"
    [[ $os == windows ]] && exe="$exe.exe"
    cmd_archive "$os" "$arch" "$exe" "$tag" "$out" >/dev/null
    cmd_manifest "$tag" "$out" "$allow_missing"
    ;;
  *) usage ;;
esac
