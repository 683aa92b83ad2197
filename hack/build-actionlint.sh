#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow checker) from its Go module into the shared cache,
# keyed by version, for tests/e2e/test_workflow.py. actionlint runs shellcheck on every `run:`
# script when shellcheck is on PATH (Debian package `shellcheck`, installed here if missing, as
# root). Prints the binary's path last. A no-op when the version is already built.
set -euo pipefail

version=v1.7.12
cache=${BOTSECRET_CACHE:-$HOME/.cache/botsecret}
bin="$cache/bin"
out="$bin/actionlint-$version"
mkdir -p "$bin"

if ! command -v shellcheck >/dev/null; then
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
  else
    echo "build-actionlint: shellcheck missing (apt-get install shellcheck); run: scripts go unchecked" >&2
  fi
fi

# Shares the control plane's build lock: one Go build at a time on a shared machine.
exec 9>"$cache/.build.lock"
flock 9
if [[ ! -x "$out" ]]; then
  start=$SECONDS
  GOBIN="$bin/.actionlint-$version.tmp" go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
  mv "$bin/.actionlint-$version.tmp/actionlint" "$out"
  rmdir "$bin/.actionlint-$version.tmp"
  echo "build-actionlint: built $version in $((SECONDS - start)) s" >&2
fi
echo "$out"
