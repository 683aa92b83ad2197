#!/usr/bin/env bash
# Builds the two images the test world's node runs, without a registry: `pause` (the pod sandbox,
# from the pinned Kubernetes module's build/pause/linux/pause.c) and `bot` (hack/node/bot.c, a
# stand-in for a user's bot that prints digests of its credentials, never the values). Each is one
# static binary (gcc -static) wrapped by buildah (vfs storage, chroot isolation) and written as an
# OCI archive under the cache ($BOTSECRET_CACHE, default ~/.cache/botsecret/node-images), named by
# the hash of its source and the compiler's version, so it is built once per content. Prints one
# line per image: `<name> <image reference> <archive path>`; tests/harness/node.py imports them
# with `ctr images import`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${BOTSECRET_CACHE:-$HOME/.cache/botsecret}/node-images
mkdir -p "$cache"
for tool in gcc buildah; do
  command -v "$tool" >/dev/null || { echo "build-node-images: $tool is missing" >&2; exit 2; }
done
exec 9>"$cache/.build.lock"
flock 9

buildah() { command buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs "$@"; }

pause_source=$(cd "$here/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
compiler=$(gcc --version | head -1)

image() { # name, C source, entrypoint argument list as JSON
  local name=$1 source=$2 entrypoint=$3
  local tag
  tag=$({ sha256sum <"$source"; echo "$compiler $entrypoint"; } | sha256sum | cut -c1-12)
  local ref="localhost/botsecret-$name:$tag" archive="$cache/$name-$tag.oci.tar"
  if [[ ! -s $archive ]]; then
    local start=$SECONDS work
    work=$(mktemp -d "$cache/$name.XXXX")
    gcc -static -O2 -o "$work/$name" "$source"
    strip "$work/$name"
    local container
    container=$(buildah from scratch)
    buildah copy --quiet --chmod 0755 "$container" "$work/$name" "/$name" >/dev/null
    buildah config --entrypoint "$entrypoint" --cmd '' --user 65532:65532 "$container"
    buildah commit --quiet --rm "$container" "$ref" >/dev/null
    buildah push --quiet "$ref" "oci-archive:$archive.tmp:$ref"
    buildah rmi "$ref" >/dev/null
    mv "$archive.tmp" "$archive"
    rm -rf "$work"
    # Archives of older sources only fill the disk.
    find "$cache" -maxdepth 1 -name "$name-*.oci.tar" ! -name "$name-$tag.oci.tar" -delete
    echo "build-node-images: $ref built in $((SECONDS - start)) s" >&2
  fi
  echo "$name $ref $archive"
}

image pause "$pause_source" '["/pause"]'
image bot "$here/node/bot.c" '["/bot"]'
