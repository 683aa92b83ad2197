#!/usr/bin/env bash
# Builds the operator's image from the Dockerfile, as the test world does: buildah with vfs storage
# and chroot isolation, on a base made by mmdebstrap (Debian bookworm with its python3), because no
# container registry is reachable. Everything lives under the cache ($BOTSECRET_CACHE, default
# ~/.cache/botsecret/image): the base is made once per package list, the image once per content of
# the Dockerfile, pyproject.toml, README.md and operator/. Prints the image's name last.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${BOTSECRET_CACHE:-$HOME/.cache/botsecret}/image
mkdir -p "$cache"
bash "$here/install-image-tools.sh"
# Runs that share the cache build one at a time (vfs storage is not safe for concurrent writers).
exec 9>"$cache/.build.lock"
flock 9

buildah() { command buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs "$@"; }

packages=python3,python3-venv,ca-certificates
base_tag=$(printf '%s' "bookworm $packages" | sha256sum | cut -c1-12)
base="localhost/botsecret-base:$base_tag"
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  start=$SECONDS
  rm -f "$cache/base.tmp.tar"
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    bookworm "$cache/base.tmp.tar"
  container=$(buildah from scratch)
  buildah add --quiet "$container" "$cache/base.tmp.tar" / >/dev/null
  buildah commit --quiet --rm "$container" "$base" >/dev/null
  rm -f "$cache/base.tmp.tar"
  echo "build-image: base $base made in $((SECONDS - start)) s" >&2
else
  echo "build-image: base $base cached" >&2
fi

content=$(cd "$repo" && { sha256sum Dockerfile .dockerignore pyproject.toml README.md;
  git ls-files -co --exclude-standard operator | grep -v -e '__pycache__' -e '\.egg-info' | sort | xargs sha256sum; } |
  sha256sum | cut -c1-12)
image="localhost/botsecret-operator:$content"
if ! buildah inspect --type image "$image" >/dev/null 2>&1; then
  start=$SECONDS
  # The host's CA bundle for pip during the build only (it may hold a proxy's CA); not in the image.
  ca=/etc/ssl/certs/ca-certificates.crt
  buildah bud --quiet --isolation chroot --layers=false --build-arg "BASE=$base" \
    --build-arg "PIP_CERT=$ca" --volume "$ca:$ca:ro" --build-arg "PIP_INDEX_URL=${PIP_INDEX_URL:-https://pypi.org/simple}" \
    -t "$image" "$repo" >/dev/null
  echo "build-image: $image built in $((SECONDS - start)) s" >&2
  # Images of older sources only fill the disk (vfs stores every layer in full).
  buildah images --noheading --format '{{.Name}}:{{.Tag}}' | grep '^localhost/botsecret-operator:' |
    { grep -vxF "$image" || true; } | xargs -r -n1 buildah rmi >/dev/null 2>&1 || true
else
  echo "build-image: $image cached" >&2
fi
echo "$image"
