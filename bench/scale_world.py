"""The scale benchmark's world and fleet: control plane, the three providers behind counters, and
N BotSecrets of three keys each, half of the references shared, each with a target Deployment.

Layout: the BotSecrets are spread over namespaces of at most ``PER_NAMESPACE``; each namespace has
one store per provider (its own identity, so sharing happens within a namespace). BotSecret ``i``
reads ``K1`` from a remote secret shared by about ten BotSecrets, ``K2`` from one of its own and
``K3`` shared for odd ``i``, its own for even ``i``: half of the 3 N references name a remote
secret another BotSecret names too. The providers rotate over the keys (``K1`` of BotSecret ``i``
comes from provider ``i % 3``), so each provider serves a third of everything.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.harness import botsecrets as bs
from tests.harness import processes
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane, binaries
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.counting_proxy import CountingProxy
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.http_counter import HttpCountingProxy
from tests.harness.operator_process import OperatorProcess, deploy
from tests.harness.stores import create_store, store_ref
from tests.harness.vault import OpenBao

PROVIDERS = ("aws", "gcp", "vault")
PER_NAMESPACE = 250
SHARED_GROUP = 10  # BotSecrets per shared remote secret
KEYS = ("K1", "K2", "K3")
LABEL = "botsecret.dev/bench"
PROJECT = "bench"


@dataclass
class Ref:
    provider: str
    remote: str
    shared: bool


@dataclass
class Bot:
    namespace: str
    name: str
    refs: dict[str, Ref]

    @property
    def own(self) -> Ref:
        return self.refs["K2"]


@dataclass
class World:
    workdir: Path
    plane: ControlPlane = field(init=False)
    moto: MotoServer = field(init=False)
    aws_proxy: CountingProxy = field(init=False)
    vault: OpenBao = field(init=False)
    vault_proxy: HttpCountingProxy = field(init=False)
    gcp: GcpSecretManagerFake = field(init=False)
    kube: Kube = field(init=False)
    operator: OperatorProcess | None = None
    bots: list[Bot] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def start(self, operator_env: dict[str, str], providers: tuple[str, ...] = PROVIDERS) -> None:
        """The control plane, the ``providers`` asked for (moto is always started: it serves SQS
        too) behind their counters, and the operator."""
        # Only what this world starts is stopped with it: in the test suite the session's own
        # control plane and servers are in processes.STARTED too.
        self.first_process = len(processes.STARTED)
        self.plane = ControlPlane(workdir=self.workdir / "cluster", bin_dir=binaries())
        self.moto = MotoServer(port=processes.free_port(), log=self.workdir / "moto.log")
        self.plane.start()
        self.moto.start()
        self.aws_proxy = CountingProxy(self.moto.endpoint)
        self.aws_proxy.start()
        if "vault" in providers:
            self.vault = OpenBao(port=processes.free_port(span=2), log=self.workdir / "openbao.log")
            self.vault.start()
            self.vault_proxy = HttpCountingProxy(self.vault.address)
            self.vault_proxy.start()
        if "gcp" in providers:
            self.gcp = GcpSecretManagerFake(workers=32)
            self.gcp.start()
        self.kube = kube_for(self.plane.admin_kubeconfig)
        self.operator = deploy(self.kube, self.plane, self.workdir, **operator_env)

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        for server in ("aws_proxy", "vault_proxy"):
            if hasattr(self, server):
                getattr(self, server).stop()
        for name in ("gcp", "vault", "moto", "plane"):
            if hasattr(self, name):
                getattr(self, name).stop()
        if hasattr(self, "kube"):
            self.kube.api.close()
        for proc in processes.STARTED[getattr(self, "first_process", len(processes.STARTED)):]:
            if proc.poll() is None:
                processes.stop(proc)

    # -- the fleet --------------------------------------------------------------------------

    def plan(self, n: int) -> None:
        run = secrets.token_hex(3)
        count = (n + PER_NAMESPACE - 1) // PER_NAMESPACE
        self.namespaces = [f"scale-{run}-{i}" for i in range(count)]
        for i in range(n):
            namespace = self.namespaces[i // PER_NAMESPACE]
            local = i % PER_NAMESPACE
            name = f"bot-{i:05d}"

            def provider(k: int, i: int = i) -> str:
                return PROVIDERS[(i + k) % 3]

            group = local // SHARED_GROUP
            refs = {
                "K1": Ref(provider(0), f"{namespace}-shared-a-{group}", True),
                "K2": Ref(provider(1), f"{namespace}-own-{name}", False),
                "K3": Ref(provider(2), f"{namespace}-shared-b-{group}", True) if i % 2
                else Ref(provider(2), f"{namespace}-own3-{name}", False),
            }
            self.bots.append(Bot(namespace, name, refs))

    def distinct_remotes(self) -> dict[str, int]:
        """Distinct remote secrets per provider and identity (namespace), summed per provider."""
        seen: set[tuple[str, str, str]] = set()
        for bot in self.bots:
            for ref in bot.refs.values():
                seen.add((ref.provider, bot.namespace, ref.remote))
        totals = dict.fromkeys(PROVIDERS, 0)
        for provider, _, _ in seen:
            totals[provider] += 1
        return totals

    def put_remote(self, ref: Ref, value: str) -> None:
        if ref.provider == "aws":
            client = self._aws_client()
            try:
                client.put_secret_value(SecretId=ref.remote, SecretString=value)
            except client.exceptions.ResourceNotFoundException:
                client.create_secret(Name=ref.remote, SecretString=value)
        elif ref.provider == "gcp":
            self.gcp.put(PROJECT, ref.remote, value.encode())
        else:
            self._vault_client().secrets.kv.v2.create_or_update_secret(path=ref.remote, secret={"value": value})

    def _aws_client(self) -> Any:
        if not hasattr(self, "_sm"):
            self._sm = self.moto.client()
        return self._sm

    def _vault_client(self) -> Any:
        if not hasattr(self, "_hvac"):
            self._hvac = self.vault.client()
        return self._hvac

    def seed(self) -> None:
        """Namespaces, stores, remote secrets and Deployments; no BotSecret yet."""
        for namespace in self.namespaces:
            self.kube.core.create_namespace({"metadata": {"name": namespace, "labels": {LABEL: "true"}}})
            aws = bs.aws_source(self.kube, namespace, self.aws_proxy.endpoint)
            create_store(self.kube, namespace, "aws", {"aws": aws["aws"]})
            vault = bs.vault_source(self.kube, namespace, self.vault_proxy.endpoint)
            create_store(self.kube, namespace, "vault", {"vault": vault["vault"]})
            create_store(self.kube, namespace, "gcp", {"gcp": {"project": PROJECT, "endpoint": self.gcp.endpoint}})
        self.seed_fleet()

    def seed_fleet(self) -> None:
        """The planned BotSecrets' remote secrets (first values) and Deployments."""
        remotes = {(ref.provider, ref.remote): ref for bot in self.bots for ref in bot.refs.values()}
        _parallel([lambda r=ref: self.put_remote(r, f"v0-{secrets.token_hex(8)}") for ref in remotes.values()],
                  workers=8)
        _parallel([lambda b=bot: self._deployment(b) for bot in self.bots], workers=8)

    def _deployment(self, bot: Bot) -> None:
        try:
            wl.deployment(self.kube, bot.namespace, bot.name, replicas=0, labels={LABEL: "true"},
                          **wl.uses_all(bot.name))
        except ApiException as e:
            if e.status != 409:
                raise

    def botsecret_body(self, bot: Bot, refresh: str) -> dict[str, Any]:
        used = {ref.provider for ref in bot.refs.values()}
        sources = [{"name": p, "storeRef": store_ref(p)} for p in PROVIDERS if p in used]
        spec = {
            "refreshInterval": refresh,
            "sources": sources,
            "data": [{"key": key, "source": ref.provider, "remoteRef": _remote_ref(ref)}
                     for key, ref in bot.refs.items()],
            "rollout": {"targets": [{"kind": "Deployment", "name": bot.name}], "debounce": "0s"},
        }
        return {"apiVersion": "botsecret.dev/v1alpha1", "kind": "BotSecret",
                "metadata": {"name": bot.name, "labels": {LABEL: "true"}}, "spec": spec}

    def apply(self, refresh: str, workers: int = 8) -> None:
        def create(bot: Bot) -> None:
            self.kube.custom.create_namespaced_custom_object(
                "botsecret.dev", "v1alpha1", bot.namespace, "botsecrets", self.botsecret_body(bot, refresh))
        _parallel([lambda b=bot: create(b) for bot in self.bots], workers=workers)

    def fresh_client(self) -> Kube:
        return kube_for(self.plane.admin_kubeconfig)


def _remote_ref(ref: Ref) -> dict[str, str]:
    # A Vault KV document holds the value under one property; the others hold the value itself.
    return {"name": ref.remote, "property": "value"} if ref.provider == "vault" else {"name": ref.remote}


def _parallel(tasks: list[Callable[[], None]], workers: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()
