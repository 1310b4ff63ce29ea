#!/usr/bin/env bash
# Build one Go program pinned under tools/go/NAME (go.mod, go.sum, main.go) into a cache outside
# the work tree, keyed by the hash of those files, and print the binary's absolute path.
# A program that is another module's command (named by a `tool` directive in go.mod, e.g.
# Prometheus) has no main.go: tools/go/NAME/gotool.env sets PKG (its import path) and TAGS
# (build tags), and is part of the hash.
#
#   scripts/gotool.sh NAME            build when missing, print the path
#   scripts/gotool.sh --path NAME     print the path, exit 1 when not built
#
# Cache: $PHOENIX_GOTOOLS_CACHE (default ~/.cache/phoenix/gotools)/NAME-<hash16>/NAME. Every clone,
# CI run and `make test` on this machine reuses a build; a build is written under a temporary
# name and renamed, and a lock serialises two builds of the same tool.
set -euo pipefail
only_path=0
if [[ "${1:-}" == "--path" ]]; then only_path=1; shift; fi
name="${1:?usage: scripts/gotool.sh [--path] NAME}"
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tools/go/$name"
[[ -f "$src/go.mod" ]] || { echo "gotool: no tools/go/$name/go.mod" >&2; exit 2; }
# shellcheck disable=SC2046 # the file list is word-split on purpose (no spaces in these names)
hash=$(cd "$src" && cat go.mod go.sum $(compgen -G '*.go'; compgen -G gotool.env) | sha256sum | cut -c1-16)
PKG=. TAGS=
# shellcheck disable=SC1091 # PKG=… TAGS=…, committed beside go.mod
[[ -f "$src/gotool.env" ]] && source "$src/gotool.env"
cache="${PHOENIX_GOTOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/phoenix/gotools}"
dir="$cache/$name-$hash"
bin="$dir/$name"
if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
if (( only_path )); then echo "gotool: $name is not built (scripts/gotool.sh $name)" >&2; exit 1; fi
command -v go >/dev/null || { echo "gotool: building $name needs Go (https://go.dev) and the Go module proxy" >&2; exit 1; }
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [[ ! -x "$bin" ]]; then
  echo "gotool: building $name into $dir (once per manifest; see tools/go/$name)" >&2
  start=$(date +%s)
  # -mod=readonly: go.sum is committed; a build never rewrites the manifest it is keyed by.
  (cd "$src" && GOFLAGS="-mod=readonly -buildvcs=false" go build -tags "$TAGS" -trimpath -ldflags="-s -w" -o "$bin.tmp" "$PKG") \
    >"$dir/build.log" 2>&1 || { echo "gotool: building $name failed; last lines of $dir/build.log:" >&2; tail -20 "$dir/build.log" >&2; exit 1; }
  mv "$bin.tmp" "$bin"
  echo "gotool: built $name in $(( $(date +%s) - start )) s" >&2
fi
echo "$bin"
