"""The node's configuration files: containerd's, the CNI network's and the kubelet's.

Everything a daemon would keep under /var or /run is pointed at the run's scratch folder; what
cannot be (shim sockets, network namespaces, the kubelet's log links) is watched by
tests/harness/host_changes.py. Why each setting is there: docs/design.md, "A node that runs pods".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

BRIDGE = "bsnode0"
NODE_IP = "10.214.0.1"
SUBNET = "10.214.0.0/24"
NODE_NAME = "bsnode"
KUBELET_PORT = 10250
CNI_BIN = Path("/usr/lib/cni")


def containerd_toml(scratch: Path, sandbox_image: str) -> str:
    d = scratch / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
[grpc]
  address = "{d / 'containerd.sock'}"
[ttrpc]
  address = "{d / 'containerd.sock.ttrpc'}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"
[{cri}]
  sandbox_image = "{sandbox_image}"
  # runc 1.1 cannot lower its own oom_score_adj below the caller's without it.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d / 'runc'}"
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{scratch / 'cni'}"
    max_conf_num = 1
"""


def cni_conflist(scratch: Path) -> str:
    """One bridge on the host-only network; no gateway, no masquerade: pods need no route off it,
    and so no iptables rule or ip_forward change is made for them."""
    return json.dumps({
        "cniVersion": "0.4.0", "name": "bsnode",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": False, "ipMasq": False,
            "ipam": {"type": "host-local", "dataDir": str(scratch / "cni-ipam"),
                     "ranges": [[{"subnet": SUBNET, "rangeStart": "10.214.0.10", "rangeEnd": "10.214.0.250"}]]},
        }],
    }, indent=2)


def kubelet_yaml(scratch: Path, *, ca: Path, serving: tuple[Path, Path], healthz_port: int) -> str:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        # Serves on the bridge only; the apiserver comes with a client certificate of the test CA.
        "address": NODE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz_port,
        "tlsCertFile": str(serving[0]), "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(ca)}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{scratch / 'containerd' / 'containerd.sock'}",
        "podLogsDir": str(scratch / "pods"),
        # This machine: cgroup v1, no systemd, swap allowed, and iptables left to their owner.
        "failCgroupV1": False, "cgroupDriver": "cgroupfs", "failSwapOn": False, "makeIPTablesUtilChains": False,
        # The images are imported, not pulled: garbage collection would lose them for good.
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        # A shared test machine: evict nothing for the others' disk or memory use.
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "serializeImagePulls": False, "rotateCertificates": False, "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        "resolvConf": "/etc/resolv.conf", "staticPodPath": "",
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(config)
