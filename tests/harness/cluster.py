"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The binaries come from ``hack/build-binaries.sh`` (Go builds of pinned modules, cached outside the
repository). There is no kubelet here: Deployments get ReplicaSets and Pods objects, but Pods run
only when a test asks for the node (tests/harness/node.py).
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import yaml

from . import processes
from .node_config import NODE_IP
from .pki import CertificateAuthority, service_account_keypair

REPO = Path(__file__).resolve().parents[2]
CONTROLLERS = ",".join([
    "deployment-controller", "replicaset-controller", "statefulset-controller", "daemonset-controller",
    "garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
    "serviceaccount-token-controller",
    # Fills the built-in admin/edit/view roles from the aggregated ClusterRoles the chart ships.
    "clusterrole-aggregation-controller",
])


def binaries() -> Path:
    """Build (or find cached) binaries and return their directory."""
    start = time.monotonic()
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "build-binaries.sh")], check=True, stdout=subprocess.PIPE, text=True,
    ).stdout.strip().splitlines()[-1]
    print(f"harness: control-plane binaries ready in {time.monotonic() - start:.1f} s")
    return Path(out)


def write_kubeconfig(path: Path, *, server: str, ca: Path, user: str, cert: Path | None = None,
                     key: Path | None = None, token: str | None = None) -> Path:
    creds: dict[str, Any] = {}
    if cert and key:
        creds = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        creds = {"token": token}
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": user,
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


OPERATOR_USER = "system:serviceaccount:botsecret-system:botsecret-operator"
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"


def audit_policy() -> dict[str, Any]:
    """Who did what to which object, and the bodies of what the operator itself writes.

    Tenancy tests read the log to prove what the operator did and did not touch; the leak scan
    reads the operator's own writes (status, events, workload patches) with their bodies, so it
    sees what was written, not only that something was. Secrets stay at Metadata: their bodies
    are where values belong. The first matching rule wins.
    """
    operator_writes = [
        {"group": "botsecret.dev", "resources": ["botsecrets", "botsecrets/status"]},
        {"group": "", "resources": ["events"]},
        {"group": "events.k8s.io", "resources": ["events"]},
        {"group": "apps", "resources": ["deployments", "statefulsets", "daemonsets"]},
        {"group": "argoproj.io", "resources": ["rollouts"]},
        {"group": "example.botsecret.dev", "resources": ["botrunners"]},  # tests/data/botrunner-crd.yaml
    ]
    return {
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
            {"level": "Request", "users": [OPERATOR_USER], "verbs": ["create", "update", "patch"],
             "resources": operator_writes},
            {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
            {"level": "Metadata"},
        ],
    }


@dataclass
class ControlPlane:
    workdir: Path
    bin_dir: Path
    procs: list[Popen[bytes]] = field(default_factory=list, repr=False)
    api_port: int = 0
    server: str = ""
    admin_kubeconfig: Path = Path()
    nobody_kubeconfig: Path = Path()
    audit_log: Path = Path()
    ca: CertificateAuthority | None = field(default=None, repr=False)
    etcd: Popen[bytes] | None = field(default=None, repr=False)
    apiserver: Popen[bytes] | None = field(default=None, repr=False)
    etcd_port: int = 0
    _apiserver_argv: list[str] = field(default_factory=list, repr=False)

    @property
    def ca_path(self) -> Path:
        assert self.ca is not None
        return self.ca.cert_path

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki_dir = self.workdir / "pki"
        self.ca = ca = CertificateAuthority(pki_dir)
        # The node's bridge address too: the chart's operator Pod reaches the apiserver there, through
        # a relay (tests/harness/incluster.py), and checks the name as any in-cluster client does.
        serving = ca.issue("apiserver", cn="kube-apiserver", server=True, ips=("127.0.0.1", NODE_IP))
        admin = ca.issue("admin", cn="botsecret-test-admin", org="system:masters")
        nobody = ca.issue("nobody", cn="nobody")
        kcm = ca.issue("controller-manager", cn="system:kube-controller-manager")
        # For `kubectl logs/exec` through a node's kubelet (tests/harness/node.py binds the user to
        # system:kubelet-api-admin); the kubelet's serving certificate is checked against the CA.
        kubelet_client = ca.issue("apiserver-kubelet-client", cn=KUBELET_CLIENT_USER)
        sa_key, sa_pub = service_account_keypair(pki_dir)

        self.etcd_port = etcd_port = processes.free_port()
        etcd_peer = processes.free_port()
        etcd_log = self.workdir / "etcd.log"
        self.procs.append(processes.start([
            str(self.bin_dir / "etcd"), "--name=default", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            "--log-level=warn", "--unsafe-no-fsync", "--quota-backend-bytes=4294967296",
        ], log=etcd_log))
        self.etcd = self.procs[-1]
        processes.wait_until(lambda: processes.port_open(etcd_port), timeout=30, what="etcd",
                             proc=self.procs[-1], log=etcd_log)

        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(audit_policy()))
        self.audit_log = self.workdir / "audit.log"

        self.api_port = processes.free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        api_log = self.workdir / "kube-apiserver.log"
        self._apiserver_argv = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--tls-cert-file={serving[0]}", f"--tls-private-key-file={serving[1]}",
            f"--client-ca-file={ca.cert_path}",
            "--authorization-mode=RBAC",
            # On by default in OpenShift and hardened clusters: setting blockOwnerDeletion needs
            # update on the owner's finalizers subresource.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.96.0.0/24",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--allow-privileged=true", "--v=1",
            # A node's kubelet is reached at its InternalIP (the node's bridge), never by host name.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={kubelet_client[0]}", f"--kubelet-client-key={kubelet_client[1]}",
            f"--kubelet-certificate-authority={ca.cert_path}",
            f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking", "--audit-log-format=json",
            # Never rotated (0: a plain file; the flag's default rotates at 100 MB): the benchmarks
            # read the log from an offset, and at N=5,000 one idle window writes more than 100 MB.
            "--audit-log-maxsize=0",
        ]
        self.apiserver = processes.start(self._apiserver_argv, log=api_log)
        self.procs.append(self.apiserver)
        self.admin_kubeconfig = write_kubeconfig(
            self.workdir / "admin.kubeconfig", server=self.server, ca=ca.cert_path, user="admin",
            cert=admin[0], key=admin[1])
        self.nobody_kubeconfig = write_kubeconfig(
            self.workdir / "nobody.kubeconfig", server=self.server, ca=ca.cert_path, user="nobody",
            cert=nobody[0], key=nobody[1])
        processes.wait_until(self._api_ready, timeout=120, what="kube-apiserver", proc=self.procs[-1], log=api_log)

        kcm_kubeconfig = write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig", server=self.server, ca=ca.cert_path,
            user="kcm", cert=kcm[0], key=kcm[1])
        kcm_log = self.workdir / "kube-controller-manager.log"
        self.procs.append(processes.start([
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}", f"--authorization-kubeconfig={kcm_kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={processes.free_port()}",
            f"--controllers={CONTROLLERS}",
            f"--service-account-private-key-file={sa_key}", f"--root-ca-file={ca.cert_path}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            "--concurrent-deployment-syncs=5", "--v=1",
        ], log=kcm_log))
        # The namespace "default" gets its ServiceAccount from the controller-manager; waiting for it
        # proves the controllers are running and can write.
        processes.wait_until(self._default_service_account_exists, timeout=120,
                             what="kube-controller-manager", proc=self.procs[-1], log=kcm_log)

    def restart_apiserver(self, *, compact: bool = False) -> int | None:
        """Stop kube-apiserver (SIGTERM, as a rolling control-plane upgrade does) and start it
        again with the same flags and port over the same etcd; wait until it is ready. With
        ``compact``, etcd's history is compacted while it is down, so that every watch resumed at
        an older resourceVersion is answered 410 Gone; then answer the compacted revision."""
        assert self.apiserver is not None
        old = self.apiserver
        processes.stop(old, timeout=15)
        revision = self.compact_etcd() if compact else None
        self.apiserver = processes.start(self._apiserver_argv, log=self.workdir / "kube-apiserver.log")
        self.procs[self.procs.index(old)] = self.apiserver
        processes.wait_until(self._api_ready, timeout=120, what="kube-apiserver after restart",
                             proc=self.apiserver, log=self.workdir / "kube-apiserver.log")
        return revision

    def compact_etcd(self) -> int:
        """Compact etcd up to its current revision (its JSON gateway); answer that revision."""
        import base64
        import json

        def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
            request = urllib.request.Request(f"http://127.0.0.1:{self.etcd_port}{path}", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer

        revision = int(call("/v3/kv/range", {"key": base64.b64encode(b"/").decode(), "limit": 1})["header"]["revision"])
        call("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def first_watch_event(self, path: str, resource_version: int) -> dict[str, Any]:
        """What an admin's watch of ``path`` from ``resource_version`` gets first (within 2 s): an
        event, or ``{"type": "HTTP", "code": N}`` when the request itself is refused. A version
        etcd has compacted away gets ``ERROR`` with a Status of code 410, reason ``Expired``."""
        import json

        url = f"{self.server}{path}?watch=true&resourceVersion={resource_version}&timeoutSeconds=2"
        try:
            with urllib.request.urlopen(url, context=self._ssl_context(), timeout=10) as response:
                line = response.readline()
        except urllib.error.HTTPError as e:
            return {"type": "HTTP", "code": e.code}
        event: dict[str, Any] = json.loads(line) if line.strip() else {"type": "NONE"}
        return event

    def pause_etcd(self) -> None:
        """SIGSTOP etcd: it keeps its sockets and answers nothing, as a disk stall does."""
        assert self.etcd is not None
        os.kill(self.etcd.pid, signal.SIGSTOP)

    def resume_etcd(self) -> None:
        assert self.etcd is not None
        os.kill(self.etcd.pid, signal.SIGCONT)

    def etcd_healthy(self) -> bool:
        """What the apiserver itself says about etcd (its readyz check), within two seconds."""
        try:
            with urllib.request.urlopen(f"{self.server}/readyz/etcd", context=self._ssl_context(), timeout=2) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        pki = self.workdir / "pki"
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return ctx

    def _api_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.server}/readyz", context=self._ssl_context(), timeout=2) as r:
            return bool(r.status == 200)

    def _default_service_account_exists(self) -> bool:
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        with urllib.request.urlopen(url, context=self._ssl_context(), timeout=2) as r:
            return bool(r.status == 200)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            processes.stop(proc, timeout=15)
        self.procs.clear()

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event so far (bodies only of the operator's own writes, see audit_policy)."""
        import json

        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.admin_kubeconfig)}
