#!/usr/bin/env bash
# Installs what the test world builds the operator's image with: buildah (rootful, vfs storage,
# chroot isolation: no daemon, no overlay, no user namespaces needed) and mmdebstrap (a Debian
# root filesystem with Debian's python3 as the image's base, since no container registry is
# reachable). Debian packages; needs root. A no-op when both are installed.
set -euo pipefail
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-image-tools: ${missing[*]} missing; as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
start=$SECONDS
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
echo "install-image-tools: installed ${missing[*]} in $((SECONDS - start)) s" >&2
