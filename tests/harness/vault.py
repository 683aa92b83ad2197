"""A real OpenBao dev server (the Vault API), KV v2 mounted at ``secret/``."""

from __future__ import annotations

import shutil
import ssl
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from . import processes
from .external import provider_host

ROOT_TOKEN = "root-token-for-tests"


@dataclass
class OpenBao:
    port: int  # the cluster listener takes port + 1
    log: Path
    tls: bool = False  # HTTPS with a CA of its own, written to ca_path
    proc: Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{'https' if self.tls else 'http'}://{provider_host()}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.log.parent / f"openbao-tls-{self.port}" / "vault-ca.pem"

    def start(self) -> None:
        exe = str(Path(sys.executable).with_name("bao"))
        exe = exe if Path(exe).exists() else (shutil.which("bao") or "bao")
        argv = [exe, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}", f"-dev-listen-address={provider_host()}:{self.port}"]
        context = None
        if self.tls:
            self.ca_path.parent.mkdir(parents=True, exist_ok=True)
            argv += ["-dev-tls", f"-dev-tls-cert-dir={self.ca_path.parent}"]
        self.proc = processes.start(argv, log=self.log, env={"HOME": str(self.log.parent), "BAO_ADDR": self.address})

        def healthy() -> bool:
            nonlocal context
            if self.tls and context is None:
                context = ssl.create_default_context(cafile=str(self.ca_path))
            return bool(urllib.request.urlopen(f"{self.address}/v1/sys/health", timeout=1, context=context).status == 200)

        processes.wait_until(healthy, timeout=30, what="OpenBao dev server", proc=self.proc, log=self.log)

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def client(self, token: str = ROOT_TOKEN) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token, verify=str(self.ca_path) if self.tls else True)


def enable_kubernetes_auth(vault: OpenBao, kube: Any, server: str, ca_pem: str, namespace: str, mount: str) -> None:
    """Turn on OpenBao's Kubernetes auth method against the local apiserver.

    OpenBao checks every login token with TokenReview, as a reviewer ServiceAccount allowed to
    (system:auth-delegator).
    """
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "openbao-reviewer"}})
    kube.rbac.create_cluster_role_binding({
        "metadata": {"name": f"openbao-reviewer-{namespace}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "openbao-reviewer", "namespace": namespace}],
    })
    reviewer = kube.core.create_namespaced_service_account_token(
        "openbao-reviewer", namespace, {"spec": {"expirationSeconds": 86400}}).status.token
    admin = vault.client()
    admin.sys.enable_auth_method("kubernetes", path=mount)
    admin.auth.kubernetes.configure(kubernetes_host=server, kubernetes_ca_cert=ca_pem, token_reviewer_jwt=reviewer,
                                    disable_local_ca_jwt=True, mount_point=mount)


def bind_role(vault: OpenBao, mount: str, role: str, namespace: str, service_account: str, path: str) -> None:
    """A role for one ServiceAccount that may read the KV v2 secrets under ``secret/<path>/``."""
    admin = vault.client()
    admin.sys.create_or_update_policy(role, f'path "secret/data/{path}/*" {{ capabilities = ["read"] }}')
    admin.auth.kubernetes.create_role(role, bound_service_account_names=[service_account],
                                      bound_service_account_namespaces=[namespace], audience="vault",
                                      policies=[role], mount_point=mount)
