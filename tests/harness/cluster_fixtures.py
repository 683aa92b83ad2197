"""pytest fixtures for the control plane: the cluster, API clients, a namespace per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from .cluster import ControlPlane, binaries


@dataclass
class Kube:
    """Typed API groups over one ApiClient."""

    api: Any

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        return client.AppsV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def crds(self) -> Any:
        return client.ApiextensionsV1Api(self.api)

    @property
    def rbac(self) -> Any:
        return client.RbacAuthorizationV1Api(self.api)

    @property
    def authn(self) -> Any:
        return client.AuthenticationV1Api(self.api)


def kube_for(kubeconfig: Path) -> Kube:
    return Kube(config.new_client_from_config(config_file=str(kubeconfig)))


@pytest.fixture(scope="session")
def cluster(artifacts: Path) -> Iterator[ControlPlane]:
    from . import external

    existing = external.existing_kubeconfig()
    if existing is not None:  # BOTSECRET_KUBECONFIG: a cluster the suite did not start
        yield external.ExistingCluster.from_kubeconfig(existing, artifacts / "cluster")  # type: ignore[misc]
        return
    plane = ControlPlane(workdir=artifacts / "cluster", bin_dir=binaries())
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(cluster: ControlPlane) -> Kube:
    return kube_for(cluster.admin_kubeconfig)


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    kube.core.create_namespace({"metadata": {"name": name, "labels": {"botsecret.dev/test": "true"}}})
    yield name
    from .leak_scan import capture

    capture(kube, name)
    kube.core.delete_namespace(name)


@pytest.fixture(scope="session")
def operator(kube: Kube, cluster: ControlPlane, artifacts: Path) -> Iterator[Any]:
    from . import external
    from .operator_process import deploy

    if external.operator_is_external():  # BOTSECRET_OPERATOR=external: it runs in the cluster
        yield external.ExternalOperator(kube, external.operator_namespace(), artifacts / "operator-pods.log")
        return
    running = deploy(kube, cluster, artifacts)
    yield running
    running.stop()
