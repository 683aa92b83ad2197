#!/usr/bin/env bash
# Installs what the test world's node runs pods with (tests/harness/node.py): containerd and runc
# (Debian 12 ships containerd 1.6.20 and runc 1.1.5) and the CNI plugins (bridge, host-local in
# /usr/lib/cni). Debian packages; needs root. A no-op when all three are installed. The packages'
# own services are kept from starting (a policy-rc.d that refuses, for the install only): the
# harness runs its own containerd with its state under the test run's scratch folder.
set -euo pipefail
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || missing+=(containernetworking-plugins)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-node-tools: ${missing[*]} missing; as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
start=$SECONDS
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# install-node-tools.sh: no service starts while it installs.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-node-tools: installed ${missing[*]} in $((SECONDS - start)) s" >&2
