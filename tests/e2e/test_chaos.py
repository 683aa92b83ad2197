"""Chaos: the faults production injects, on the real control plane, and a table of bad input.

Each fault is injected for real (a proxy in front of moto that refuses, drops, black-holes or
throttles; SIGKILL of the operator; a restart of kube-apiserver over the same etcd; SIGSTOP of
etcd; a concurrent writer on the managed Secret) and every claim after it is checked against the
cluster: the Secret's bytes, the BotSecret's conditions, the ReplicaSets the controller made, the
apiserver's audit log. ``tests/harness/chaos.py`` counts what was injected and what survived and
prints the suite's one summary line.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from botsecret.limits import Limits
from tests.e2e import test_crd, test_store_crd
from tests.e2e.test_rollout import rollout_entry, sync_and_settle
from tests.harness import botsecrets as bs
from tests.harness import chaos
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import OPERATOR_USER, ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.fault_proxy import FaultProxy
from tests.harness.gcp_fake import GcpSecretManagerFake
from tests.harness.leaks import secret_value
from tests.harness.stores import create_cluster_store, create_store, delete_cluster_store, store_ref
from tests.harness.throttling_proxy import ThrottlingProxy
from tests.harness.vault import ROOT_TOKEN
from tests.harness.waiting import wait_for

# Faults on the harness's own processes (the operator, the apiserver, etcd): not for an external cluster.
pytestmark = [pytest.mark.chaos, pytest.mark.control_plane, pytest.mark.operator_process]

GROUP, VERSION = "botsecret.dev", "v1alpha1"
# How long etcd stands still (SIGSTOP): more than the 5 s refresh of the BotSecret in it. The
# test sleeps this long on purpose: the sleep is the injected fault, not a stand-in for evidence.
STALL_SECONDS = 6.0


@pytest.fixture(autouse=True)
def _timed() -> None:
    chaos.begin()


@pytest.fixture(scope="module")
def proxy(aws: MotoServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto; every test starts with it passing traffic."""
    fault_proxy = FaultProxy(aws.port)
    fault_proxy.start()
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture
def healthy_proxy(proxy: FaultProxy) -> Iterator[FaultProxy]:
    if not proxy.running:
        proxy.start()
    proxy.set_mode("pass")
    yield proxy
    if not proxy.running:
        proxy.start()
    proxy.set_mode("pass")


def aws_provider(kube: Kube, namespace: str, endpoint: str, secret: str = "aws-keys") -> dict[str, Any]:
    try:
        bs.credentials_secret(kube, namespace, secret, {"accessKeyId": "testing", "secretAccessKey": "testing"})
    except ApiException as e:
        if e.status != 409:
            raise
    return {"aws": {"region": "us-east-1", "endpoint": endpoint, "stsEndpoint": endpoint,
                    "credentialsSecretRef": {"name": secret}}}


class Bot:
    """A BotSecret ``bot`` of keys A and B from AWS (through ``endpoint``), feeding Deployment ``app``."""

    def __init__(self, kube: Kube, namespace: str, aws: MotoServer, endpoint: str, *, debounce: str = "1s",
                 replicas: int = 0, policy: str = "Owner", uses: str = "all", refresh: str = "1h") -> None:
        self.kube, self.namespace, self.sm = kube, namespace, aws.client()
        for key in ("A", "B"):
            self.sm.create_secret(Name=self.remote(key), SecretString=secret_value(f"chaos_{key}"))
        wl.deployment(kube, namespace, "app", replicas=replicas,
                      **(wl.uses_all("bot-env") if uses == "all" else wl.uses_key("bot-env", "A")))
        wait_for(lambda: wl.replicasets(kube, namespace, "app") == 1, what="the Deployment's first ReplicaSet")
        create_store(kube, namespace, "aws", aws_provider(kube, namespace, endpoint))
        bs.create(kube, namespace, "bot", {
            "sources": [{"name": "aws", "storeRef": store_ref("aws")}],
            "data": [{"key": k, "remoteRef": {"name": self.remote(k)}} for k in ("A", "B")],
            "target": {"name": "bot-env", "creationPolicy": policy},
            "refreshInterval": refresh,
            "rollout": {"targets": [{"kind": "Deployment", "name": "app"}], "debounce": debounce},
        })
        bs.wait_ready(kube, namespace, "bot", timeout=60)
        self.restarts = 0  # rotations that should each have given one ReplicaSet

    def remote(self, key: str) -> str:
        return f"{self.namespace}/bot/{key}"

    def value(self, key: str) -> bytes:
        return str(self.sm.get_secret_value(SecretId=self.remote(key))["SecretString"]).encode()

    def rotate(self, key: str, *, sync: bool = True) -> bytes:
        value = secret_value(f"chaos_{key}")
        self.sm.put_secret_value(SecretId=self.remote(key), SecretString=value)
        if sync:
            bs.force_sync(self.kube, self.namespace, "bot")
        self.restarts += 1
        return value.encode()

    def replicasets(self) -> int:
        return wl.replicasets(self.kube, self.namespace, "app")

    def assert_restarts(self) -> None:
        """Exactly one new ReplicaSet per rotation so far, recorded for the summary."""
        seen = self.replicasets()
        chaos.restarts(expected=1 + self.restarts, seen=seen)
        assert seen == 1 + self.restarts, f"{seen} ReplicaSets after {self.restarts} rotations"

    def settled(self) -> dict[str, Any]:
        return sync_and_settle(self.kube, self.namespace, "bot", timeout=60)


def secret_writes(cluster: ControlPlane, namespace: str, name: str, *, since: str = "") -> list[dict[str, Any]]:
    """The operator's successful writes of one Secret, from the apiserver's audit log."""
    return [e for e in cluster.audit_events()
            if e.get("user", {}).get("username") == OPERATOR_USER and e.get("stage") == "ResponseComplete"
            and (e.get("objectRef") or {}).get("resource") == "secrets"
            and (e.get("objectRef") or {}).get("namespace") == namespace
            and (e.get("objectRef") or {}).get("name") == name
            and e.get("verb") in ("create", "update", "patch")
            and 200 <= (e.get("responseStatus") or {}).get("code", 0) < 300
            and e.get("requestReceivedTimestamp", "") >= since]


def audit_now() -> str:
    """Now, as the audit log writes times (microseconds, UTC), so that strings compare."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------
# 1. Bad input, next to a healthy BotSecret that must not notice
# ---------------------------------------------------------------------------------------------

def snapshot(kube: Kube, namespace: str) -> dict[str, str]:
    """Every object of the namespace but events, as kind/name -> resourceVersion."""
    core, apps, custom = kube.core, kube.apps, kube.custom
    found: dict[str, str] = {}
    for kind, items in {
        "Secret": core.list_namespaced_secret(namespace).items,
        "ConfigMap": core.list_namespaced_config_map(namespace).items,
        "ServiceAccount": core.list_namespaced_service_account(namespace).items,
        "Deployment": apps.list_namespaced_deployment(namespace).items,
        "ReplicaSet": apps.list_namespaced_replica_set(namespace).items,
        "Pod": core.list_namespaced_pod(namespace).items,
    }.items():
        found.update({f"{kind}/{i.metadata.name}": i.metadata.resource_version for i in items})
    for plural in ("botsecrets", "botsecretstores"):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            found[f"{plural}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def refused_message(error: ApiException) -> str:
    return str(json.loads(error.body or "{}").get("message", ""))


def _crd_cases() -> list[tuple[str, dict[str, Any], str, str]]:
    """The CRD tests' refusals (id, body, field path, fragment), as whole objects."""
    cases = []
    for case_id, mutate, field_path, fragment, _ in test_crd.INVALID:
        body = test_crd._case(mutate)
        body["metadata"]["name"] = f"bad-{len(cases)}"
        cases.append((f"botsecret:{case_id}", body, field_path, fragment))
    for case_id, kind, mutate, field_path, fragment, _ in test_store_crd.INVALID:
        body = test_store_crd._body(kind, f"bad-store-{len(cases)}", test_store_crd.PROVIDERS["vault"])
        mutate(body["spec"])
        cases.append((f"{kind}:{case_id}", body, field_path, fragment))
    return cases


def _botsecret(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BotSecret", "metadata": {"name": name}, "spec": spec}


def _good_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"sources": [{"name": "aws", "storeRef": store_ref("aws")}],
                            "data": [{"key": "K", "remoteRef": {"name": "somewhere"}}]}
    spec.update(changes)
    return spec


_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/secret-changes"


def _events_store(name: str, events: dict[str, Any], *, cluster: bool = False, **aws: Any) -> dict[str, Any]:
    """A store whose aws.changeEvents is ``events``; the rest is valid."""
    spec: dict[str, Any] = {"provider": {"aws": {"region": "us-east-1", "changeEvents": events, **aws}}}
    if cluster:
        spec["conditions"] = [{"namespaces": ["nobody"]}]
    kind = "ClusterBotSecretStore" if cluster else "BotSecretStore"
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": f"{name}-store"}, "spec": spec}


_SUBSCRIPTION = "projects/central/subscriptions/secret-events"


def _gcp_events_store(name: str, events: Any, *, cluster: bool = False) -> dict[str, Any]:
    """A store whose gcp.changeEvents is ``events``; the rest is valid."""
    spec: dict[str, Any] = {"provider": {"gcp": {"project": "bots", "changeEvents": events}}}
    if cluster:
        spec["conditions"] = [{"namespaces": ["nobody"]}]
    kind = "ClusterBotSecretStore" if cluster else "BotSecretStore"
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": f"{name}-store"}, "spec": spec}


# More refusals than the CRD tests have: wrong types, the issue's list (id, body, field path, fragment).
EXTRA_REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("sources-not-a-list", _botsecret("x1", _good_spec(sources={"name": "aws"})), "spec.sources", "must be of type array"),
    ("data-a-string", _botsecret("x2", _good_spec(data="K=v")), "spec.data", "must be of type array"),
    ("refresh-interval-a-number", _botsecret("x3", _good_spec(refreshInterval=60)), "spec.refreshInterval", "must be of type string"),
    ("refresh-interval-zero", _botsecret("x4", _good_spec(refreshInterval="0s")), "spec.refreshInterval", "between 5s and 168h"),
    ("refresh-interval-negative", _botsecret("x5", _good_spec(refreshInterval="-5m")), "spec.refreshInterval", "should match"),
    ("key-with-unicode", _botsecret("x6", _good_spec(data=[{"key": "tökén", "remoteRef": {"name": "r"}}])), "spec.data[0].key", "should match"),
    ("key-with-a-control-character", _botsecret("x7", _good_spec(data=[{"key": "A\nB", "remoteRef": {"name": "r"}}])), "spec.data[0].key", "should match"),
    ("key-with-a-slash", _botsecret("x8", _good_spec(data=[{"key": "a/b", "remoteRef": {"name": "r"}}])), "spec.data[0].key", "should match"),
    ("empty-remote-name", _botsecret("x9", _good_spec(data=[{"key": "K", "remoteRef": {"name": ""}}])), "spec.data[0].remoteRef.name", ""),
    ("no-remote-ref", _botsecret("x10", _good_spec(data=[{"key": "K"}])), "spec.data[0].remoteRef", "Required value"),
    ("target-name-dotdot", _botsecret("x11", _good_spec(target={"name": ".."})), "spec.target.name", "should match"),
    ("store-ref-to-another-namespace", _botsecret("x12", _good_spec(
        sources=[{"name": "aws", "storeRef": {"name": "other-team/aws"}}])), "spec.sources[0].storeRef.name", "should match"),
    ("debounce-garbage", _botsecret("x13", _good_spec(rollout={"targets": [{"kind": "Deployment", "name": "app"}], "debounce": "later"})),
     "spec.rollout.debounce", "should match"),
    ("rollout-target-kind-pod", _botsecret("x14", _good_spec(rollout={"targets": [{"kind": "Pod", "name": "app"}]})),
     "spec.rollout.targets[0].apiVersion", "apiVersion is required"),
    ("rollout-strategy-unknown", _botsecret("x30", _good_spec(rollout={"strategy": "BlueGreen"})),
     "spec.rollout.strategy", "Unsupported value"),
    ("rollout-failure-policy-unknown", _botsecret("x31", _good_spec(rollout={"failurePolicy": "Retry"})),
     "spec.rollout.failurePolicy", "Unsupported value"),
    ("rollout-keep-one-version", _botsecret("x32", _good_spec(rollout={"keepVersions": 1})),
     "spec.rollout.keepVersions", "should be greater than or equal to 2"),
    ("rollout-keep-versions-a-string", _botsecret("x33", _good_spec(rollout={"keepVersions": "3"})),
     "spec.rollout.keepVersions", "must be of type integer"),
    ("rollout-max-restarts-zero", _botsecret("x34", _good_spec(rollout={"maxRestarts": 0})),
     "spec.rollout.maxRestarts", "should be greater than or equal to 1"),
    # spec.dataFrom[].find and rewrite
    ("find-and-remote-ref", _botsecret("x15", _good_spec(dataFrom=[{"find": {"path": "bots/"}, "remoteRef": {"name": "r"}}])),
     "spec.dataFrom[0]", "set exactly one of remoteRef, find"),
    ("find-selecting-nothing", _botsecret("x16", _good_spec(dataFrom=[{"find": {}}])),
     "spec.dataFrom[0].find", "find must select by at least one of path, name.regexp, tags"),
    ("find-max-matches-over-1000", _botsecret("x17", _good_spec(dataFrom=[{"find": {"path": "b", "maxMatches": 5000}}])),
     "spec.dataFrom[0].find.maxMatches", "less than or equal to 1000"),
    ("rewrite-without-find", _botsecret("x18", _good_spec(dataFrom=[{"remoteRef": {"name": "r"}, "rewrite": [{"stripPrefix": "r"}]}])),
     "spec.dataFrom[0].rewrite", "rewrite applies to find entries only"),
    ("rewrite-regexp-and-strip-prefix", _botsecret("x19", _good_spec(dataFrom=[{"find": {"path": "b"}, "rewrite": [
        {"stripPrefix": "b", "regexp": {"source": "x"}}]}])), "spec.dataFrom[0].rewrite[0]", "set exactly one of regexp, stripPrefix"),
    ("rollout-target-argo-without-api-version", _botsecret("x20", _good_spec(rollout={"targets": [
        {"kind": "Rollout", "name": "app"}]})), "spec.rollout.targets[0].apiVersion", "argoproj.io/v1alpha1 for an Argo Rollout"),
    ("rollout-target-api-version-a-number", _botsecret("x21", _good_spec(rollout={"targets": [
        {"apiVersion": 1, "kind": "Rollout", "name": "app"}]})), "spec.rollout.targets[0].apiVersion", "must be of type string"),
    ("rollout-target-api-version-without-version", _botsecret("x22", _good_spec(rollout={"targets": [
        {"apiVersion": "argoproj.io", "kind": "Rollout", "name": "app"}]})), "spec.rollout.targets[0].apiVersion", "should match"),
    ("rollout-target-kind-with-a-slash", _botsecret("x23", _good_spec(rollout={"targets": [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "argoproj.io/Rollout", "name": "app"}]})),
     "spec.rollout.targets[0].kind", "should match"),
    ("rollout-target-statefulset-of-another-group", _botsecret("x24", _good_spec(rollout={"targets": [
        {"apiVersion": "example.com/v1", "kind": "StatefulSet", "name": "app"}]})),
     "spec.rollout.targets[0].apiVersion", "are apps/v1"),
    # spec.provider.aws.changeEvents of a store (issue 12: change events through SQS)
    ("store-change-events-queue-not-a-url", _events_store("x40", {"sqsQueueURL": "not a url"}),
     "spec.provider.aws.changeEvents.sqsQueueURL", "should match"),
    ("store-change-events-queue-without-account", _events_store("x41", {
        "sqsQueueURL": "https://sqs.us-east-1.amazonaws.com/changes"}), "spec.provider.aws.changeEvents.sqsQueueURL",
     "should match"),
    ("store-change-events-fallback-not-a-duration", _events_store("x42", {
        "sqsQueueURL": _QUEUE, "fallbackRefreshInterval": "hourly"}),
     "spec.provider.aws.changeEvents.fallbackRefreshInterval", "should match"),
    ("store-change-events-without-a-queue", _events_store("x43", {"fallbackRefreshInterval": "1h"}),
     "spec.provider.aws.changeEvents.sqsQueueURL", "Required value"),
    ("store-change-events-plain-http-queue", _events_store("x44", {
        "sqsQueueURL": "http://127.0.0.1:9/123456789012/changes"}), "spec.provider", "insecureAllowPlainHTTP"),
    ("store-change-events-on-parameter-store", _events_store("x45", {"sqsQueueURL": _QUEUE}, service="ParameterStore"),
     "spec.provider.aws.changeEvents", "Secrets Manager only"),
    ("cluster-store-change-events-without-credentials", _events_store("x46", {"sqsQueueURL": _QUEUE}, cluster=True),
     "spec.provider.aws.changeEvents", "needs credentialsSecretRef"),
    # spec.provider.gcp.changeEvents of a store (issue 12: change events through Pub/Sub)
    ("store-gcp-change-events-subscription-a-bare-name", _gcp_events_store("x47", {"subscription": "secret-events"}),
     "spec.provider.gcp.changeEvents.subscription", "should match"),
    ("store-gcp-change-events-a-topic", _gcp_events_store("x48", {"subscription": "projects/bots/topics/secret-events"}),
     "spec.provider.gcp.changeEvents.subscription", "should match"),
    ("store-gcp-change-events-without-a-subscription", _gcp_events_store("x49", {"fallbackRefreshInterval": "1h"}),
     "spec.provider.gcp.changeEvents.subscription", "Required value"),
    ("store-gcp-change-events-fallback-not-a-duration", _gcp_events_store("x50", {
        "subscription": _SUBSCRIPTION, "fallbackRefreshInterval": "hourly"}),
     "spec.provider.gcp.changeEvents.fallbackRefreshInterval", "should match"),
    ("store-gcp-change-events-not-an-object", _gcp_events_store("x51", "projects/bots/subscriptions/events"),
     "spec.provider.gcp.changeEvents", "must be of type object"),
    ("cluster-store-gcp-change-events-without-credentials", _gcp_events_store("x52", {"subscription": _SUBSCRIPTION},
                                                                              cluster=True),
     "spec.provider.gcp.changeEvents", "needs credentialsSecretRef"),
]


def test_bad_input_is_refused_or_reported_and_disturbs_nothing(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer, vault: Any,
) -> None:
    # The healthy neighbour: synced, restarted once already, settled.
    bot = Bot(kube, namespace, aws, aws.endpoint)
    bot.rotate("A")
    wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "app")) and e.get("phase") == "Complete",
             timeout=60, what="the rotation's rollout")
    bot.settled()
    healthy_data = bs.secret_data(kube, namespace, "bot-env")

    # What the runtime cases read: values that are not JSON, binary, and too large together.
    sm = aws.client()
    sm.create_secret(Name=f"{namespace}/plain", SecretString=secret_value("chaos_plain"))
    sm.create_secret(Name=f"{namespace}/binary", SecretBinary=b"\xff\xfe" + secret_value("chaos_bin").encode())
    kv = vault.client().secrets.kv.v2
    for i in range(2):
        kv.create_or_update_secret(path=f"{namespace}/big{i}", secret={"v": secret_value("chaos_big") + "x" * (600 * 1024)})
    create_store(kube, namespace, "vault", {"vault": {"address": vault.address, "credentialsSecretRef": bs.credentials_secret(
        kube, namespace, "vault-token", {"token": ROOT_TOKEN})}})
    kube.core.create_namespaced_secret(namespace, {
        "metadata": {"name": "default-token", "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token"})
    wait_for(lambda: (kube.core.read_namespaced_secret("default-token", namespace).data or {}).get("token"),
             timeout=60, what="the token controller to fill the ServiceAccount token Secret")
    bs.wait_ready(kube, namespace, "bot", timeout=30)
    wait_for(lambda: all(bs.condition(s, "Ready") for s in kube.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "botsecretstores")["items"]), timeout=60, what="every store checked")
    before = snapshot(kube, namespace)

    # Refused by the apiserver: 422 naming the field.
    refused_cases = [*_crd_cases(), *EXTRA_REFUSED]
    for case_id, body, field_path, fragment in refused_cases:
        chaos.bad_input(case_id)
        with pytest.raises(ApiException) as refused:
            if body["kind"] == "ClusterBotSecretStore":
                kube.custom.create_cluster_custom_object(GROUP, VERSION, "clusterbotsecretstores", copy.deepcopy(body))
            else:
                plural = "botsecrets" if body["kind"] == "BotSecret" else "botsecretstores"
                kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, copy.deepcopy(body))
        message = refused_message(refused.value)
        assert refused.value.status == 422 and field_path in message and fragment in message, (case_id, message)
        chaos.rejected(case_id)

    # Accepted, then reported in Ready with a message naming the field (or the key and remote name).
    reported: list[tuple[str, str, dict[str, Any], str, str]] = []  # id, plural, body, reason, fragment

    def report(case_id: str, name: str, spec: dict[str, Any], reason: str, fragment: str) -> None:
        reported.append((case_id, "botsecrets", _botsecret(name, spec), reason, fragment))

    def data(key: str, remote: str, **ref: Any) -> list[dict[str, Any]]:
        return [{"key": key, "remoteRef": {"name": remote, **ref}}]

    report("unknown-store", "r-store", _good_spec(sources=[{"name": "aws", "storeRef": store_ref("nowhere")}]),
           "StoreNotFound", "spec.sources[0].storeRef")
    report("cluster-store-not-admitting-the-namespace", "r-cluster", _good_spec(
        sources=[{"name": "aws", "storeRef": store_ref(f"{namespace}-elsewhere", "ClusterBotSecretStore")}]),
        "StoreNotAllowed", "spec.sources[0].storeRef")
    report("property-on-a-non-json-value", "r-plain", _good_spec(data=data("P", f"{namespace}/plain", property="x")),
           "MissingKeys", "P:")
    report("property-on-a-binary-value", "r-binary", _good_spec(data=data("BIN", f"{namespace}/binary", property="x")),
           "MissingKeys", "BIN:")
    report("data-from-a-non-json-value", "r-from-plain", _good_spec(data=[], dataFrom=[{"remoteRef": {"name": f"{namespace}/plain"}}]),
           "MissingKeys", "dataFrom")
    report("version-that-does-not-exist", "r-version", _good_spec(
        data=data("V", bot.remote("A"), version="00000000-0000-4000-8000-000000000000")), "MissingKeys", "V:")
    report("remote-secret-that-does-not-exist", "r-absent", _good_spec(data=data("ABSENT", f"{namespace}/absent")),
           "MissingKeys", "ABSENT:")
    report("target-another-botsecret-owns", "r-target", _good_spec(data=data("A", bot.remote("A")), target={"name": "bot-env"}),
           "TargetConflict", "bot-env")
    report("merge-into-another-botsecrets-secret", "r-merge", _good_spec(
        data=data("EXTRA", bot.remote("B")), target={"name": "bot-env", "creationPolicy": "Merge"}), "TargetConflict", "bot-env")
    report("service-account-token-secret-by-merge", "r-sat", _good_spec(
        data=data("token", bot.remote("B")), target={"name": "default-token", "creationPolicy": "Merge"}), "TargetConflict", "default-token")
    report("values-over-the-size-limit", "r-big", {"sources": [{"name": "vault", "storeRef": store_ref("vault")}],
                                                   "data": [{"key": f"BIG{i}", "remoteRef": {"name": f"{namespace}/big{i}", "property": "v"}}
                                                            for i in range(2)]}, "DataTooLarge", "a Secret holds at most")

    # A find the schema cannot judge: a regular expression, groups a rewrite names, what a provider can select by.
    finds = {"find": {"path": f"{namespace}/"}}
    report("find-regexp-python-refuses", "r-find-regexp", _good_spec(data=[], dataFrom=[{"find": {"name": {"regexp": "(?<=a+)b"}}}]),
           "InvalidSpec", "spec.dataFrom[0].find.name.regexp")
    report("rewrite-naming-a-missing-group", "r-rewrite-group", _good_spec(data=[], dataFrom=[{
        **finds, "rewrite": [{"regexp": {"source": "^(.*)$", "target": "$2"}}]}]),
        "InvalidSpec", "spec.dataFrom[0].rewrite[0].regexp.target")
    report("find-by-tags-on-vault", "r-find-vault-tags", {"sources": [{"name": "vault", "storeRef": store_ref("vault")}],
                                                          "dataFrom": [{"find": {"path": f"{namespace}/", "tags": {"a": "b"}}}]},
           "InvalidSpec", "spec.dataFrom[0].find.tags")
    report("find-over-max-matches", "r-find-many", _good_spec(data=[], dataFrom=[{"find": {"path": f"{namespace}/", "maxMatches": 1}}]),
           "TooManyMatches", "maxMatches")

    # Stores accepted at admission that cannot work; the BotSecret using each one names the field.
    bad_stores = {
        "vault-unreachable-address": ({"vault": {"address": "http://127.0.0.1:9", "credentialsSecretRef": {"name": "vault-token"}}},
                                      "ProviderError", "spec.provider.vault.address"),
        "vault-ca-bundle-not-pem": ({"vault": {"address": "https://127.0.0.1:9", "caBundle": "not a certificate",
                                               "credentialsSecretRef": {"name": "vault-token"}}}, "AccessDenied", "caBundle"),
        "aws-credentials-secret-missing": ({"aws": {"region": "us-east-1", "endpoint": aws.endpoint,
                                                    "credentialsSecretRef": {"name": "no-such-secret"}}},
                                           "AccessDenied", "credentialsSecretRef"),
        "aws-credentials-secret-without-keys": ({"aws": {"region": "us-east-1", "endpoint": aws.endpoint,
                                                         "credentialsSecretRef": {"name": "vault-token"}}},
                                                "AccessDenied", "credentialsSecretRef"),
    }
    for i, (case_id, (provider, reason, fragment)) in enumerate(bad_stores.items()):
        store = f"bad-store-{i}"
        reported.append((f"store:{case_id}", "botsecretstores", {"provider": provider, "name": store}, reason, fragment))
        report(f"botsecret-on-store:{case_id}", f"r-on-store-{i}", {
            "sources": [{"name": "s", "storeRef": store_ref(store)}], "data": data("K", f"{namespace}/x")}, reason, fragment)

    cluster_provider = aws_provider(kube, namespace, aws.endpoint)
    cluster_provider["aws"]["credentialsSecretRef"]["namespace"] = namespace
    create_cluster_store(kube, f"{namespace}-elsewhere", cluster_provider, conditions=[{"namespaces": ["some-other-team"]}])
    created: list[tuple[str, str]] = []
    try:
        for case_id, plural, body, _, _ in reported:
            chaos.bad_input(case_id)
            if plural == "botsecretstores":
                create_store(kube, namespace, body["name"], body["provider"])
                created.append((plural, body["name"]))
            else:
                kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
                created.append((plural, body["metadata"]["name"]))

        def condition_of(plural: str, name: str) -> dict[str, Any] | None:
            got = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            return bs.condition(got, "Ready")

        unclear = []
        for case_id, plural, body, reason, fragment in reported:
            name = body["name"] if plural == "botsecretstores" else body["metadata"]["name"]
            ready = wait_for(lambda p=plural, n=name: (c := condition_of(p, n)) and c["status"] == "False" and c,
                             timeout=90, what=f"{case_id} reported")
            if (ready["reason"], fragment in ready["message"]) == (reason, True):
                chaos.rejected(case_id)
            else:
                unclear.append((case_id, reason, fragment, ready["reason"], ready["message"]))
        assert unclear == [], "reported without naming the field"
    finally:
        for plural, name in created:
            kube.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        delete_cluster_store(kube, f"{namespace}-elsewhere")
    for plural, name in created:
        wait_for(lambda p=plural, n=name: _gone(kube, namespace, p, n), timeout=60, what=f"{plural}/{name} deleted")

    after = snapshot(kube, namespace)
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    appeared = sorted(set(after) - set(before))
    assert (changed, appeared) == ({}, []), "bad input disturbed its neighbours"
    assert bs.secret_data(kube, namespace, "bot-env") == healthy_data
    bot.settled()
    bot.assert_restarts()
    assert len(chaos.RECORD.bad_inputs) >= 40


def _gone(kube: Kube, namespace: str, plural: str, name: str) -> bool:
    try:
        kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as e:
        return e.status == 404
    return False


# ---------------------------------------------------------------------------------------------
# 2. The provider goes away mid-sync, drops connections, throttles; and comes back
# ---------------------------------------------------------------------------------------------

def test_a_provider_outage_keeps_the_secret_and_recovery_restarts_nothing(
    operator: Any, cluster: ControlPlane, kube: Kube, namespace: str, aws: MotoServer, healthy_proxy: FaultProxy,
) -> None:
    proxy = healthy_proxy
    # A short interval: a throttled store is next asked after two of them, not at once.
    bot = Bot(kube, namespace, aws, proxy.endpoint, refresh="5s")
    bot.settled()
    good = bs.secret_data(kube, namespace, "bot-env")
    assert good == {"A": bot.value("A"), "B": bot.value("B")}

    def mid_sync_stop() -> None:
        # The operator's request is in flight (held by the black hole) when the server goes.
        proxy.set_mode("blackhole")
        bs.force_sync(kube, namespace, "bot")
        wait_for(lambda: proxy.held() > 0, timeout=30, what="the operator's request held by the black hole")
        proxy.stop()

    faults: list[tuple[str, Callable[[], None], str]] = [
        ("provider stops mid-sync", mid_sync_stop, "unreachable"),
        ("provider drops every connection", lambda: proxy.set_mode("drop"), "unreachable"),
        ("provider throttles (ThrottlingException)", lambda: proxy.set_mode("throttle"), "throttled"),
    ]
    for fault, inject, fragment in faults:
        with chaos.fault(fault):
            since = audit_now()
            inject()
            handled = bs.force_sync(kube, namespace, "bot")
            body = wait_for(lambda h=handled: (b := bs.get(kube, namespace, "bot")).get("status", {}).get(
                "forceSyncHandled") == h and b, timeout=60, what=f"the force-sync during '{fault}'")
            ready = bs.ready(body)
            assert ready is not None and (ready["status"], ready["reason"]) == ("False", "ProviderError"), ready
            assert fragment in ready["message"], ready
            assert bs.secret_data(kube, namespace, "bot-env") == good, "an outage changed the Secret"
            if fault.startswith("provider throttles"):
                assert proxy.throttled > 0

            # Back, and nobody asks: the backoff alone brings it back.
            if not proxy.running:
                proxy.start()
            proxy.set_mode("pass")
            bs.wait_ready(kube, namespace, "bot", reason="Synced", timeout=120)
            data = bs.secret_data(kube, namespace, "bot-env")
            chaos.writes_lost(sum(data.get(k) != v for k, v in good.items()) if data else len(good))
            assert data == good
            rewrites = secret_writes(cluster, namespace, "bot-env", since=since)
            assert rewrites == [], [(w["verb"], w["requestReceivedTimestamp"], since) for w in rewrites]
            bot.assert_restarts()

    # And a rotation after all that restarts exactly once.
    bot.rotate("A")
    wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the rotation's restart")
    bot.settled()
    bot.assert_restarts()


# Reads of one BotSecret (refresh 5 s) are counted where they arrive, in windows of fixed length
# (a count per window, not a rate guessed from the span of a few reads). The healthy rate is steady
# (one read per refresh), so half a minute counts it; the first minute of throttling is counted
# whole, since the backoff grows inside it (2, 4, 8 ... refresh intervals).
HEALTHY_WINDOW = 30.0
THROTTLED_WINDOW = 60.0
# Longer than the operator's first throttled backoff (2 x 5 s, +-10 %): a GCP read sooner than
# RetryInfo's delay after a throttled answer shows the delay was ignored.
GCP_RETRY_DELAY = 15.0


def _per_minute(times: list[float], start: float, window: float) -> float:
    return sum(start <= t < start + window for t in times) * 60.0 / window


def test_throttled_providers_are_asked_less_often_and_recover_by_themselves(
    operator: Any, cluster: ControlPlane, kube: Kube, namespace: str, aws: MotoServer, gcp: GcpSecretManagerFake,
) -> None:
    """AWS throttled by a loopback proxy (HTTP 429, ThrottlingException) and GCP by the Secret
    Manager fake (gRPC RESOURCE_EXHAUSTED, ErrorInfo RATE_LIMIT_EXCEEDED, RetryInfo), side by side
    so that both cost one wait. Each BotSecret feeds a Deployment of its own."""
    proxy = ThrottlingProxy(aws.endpoint)  # answers 429 with a ThrottlingException body while throttling
    proxy.start()
    project, aws_name, gcp_id = f"quota-{namespace}", f"{namespace}/throttled", "throttled"
    try:
        aws.client().create_secret(Name=aws_name, SecretString=secret_value("chaos_aws_throttled"))
        gcp.put(project, gcp_id, secret_value("chaos_gcp_throttled").encode())
        sources = {"aws": bs.aws_source(kube, namespace, proxy.endpoint), "gcp": bs.gcp_source(gcp.endpoint, project=project)}
        remote = {"aws": aws_name, "gcp": gcp_id}
        for provider in ("aws", "gcp"):
            wl.deployment(kube, namespace, provider, **wl.uses_all(f"{provider}-env"))
            bs.create(kube, namespace, provider, {
                "sources": [sources[provider]], "refreshInterval": "5s", "target": {"name": f"{provider}-env"},
                "data": [{"key": "K", "remoteRef": {"name": remote[provider]}}],
                "rollout": {"targets": [{"kind": "Deployment", "name": provider}]}})
        for provider in ("aws", "gcp"):
            bs.wait_ready(kube, namespace, provider, reason="Synced", timeout=60)
            wait_for(lambda p=provider: wl.replicasets(kube, namespace, p) == 1, what=f"Deployment {provider}'s ReplicaSet")
        good = {p: bs.secret_data(kube, namespace, f"{p}-env") for p in ("aws", "gcp")}

        def reads() -> dict[str, list[float]]:
            return {"aws": [a.at for a in proxy.arrivals() if aws_name in a.secret_ids],
                    "gcp": [a.at for a in gcp.arrivals(resource_prefix=f"projects/{project}/secrets/{gcp_id}/",
                                                       method="AccessSecretVersion")]}

        def window(seconds: float) -> float:
            """Count for ``seconds``; every second of it, the Secrets keep their data and nothing restarts."""
            start = time.monotonic()
            while (left := start + seconds - time.monotonic()) > 0:
                for p in ("aws", "gcp"):
                    assert bs.secret_data(kube, namespace, f"{p}-env") == good[p], f"throttling changed Secret {p}-env"
                    assert wl.replicasets(kube, namespace, p) == 1, f"throttling restarted Deployment {p}"
                time.sleep(min(1.0, left))
            return start

        healthy_from = window(HEALTHY_WINDOW)
        with chaos.fault("AWS throttles (HTTP 429 ThrottlingException)"), \
                chaos.fault("GCP throttles (RESOURCE_EXHAUSTED with RetryInfo)"):
            since = audit_now()
            proxy.throttling = True
            gcp.throttle(project, GCP_RETRY_DELAY)
            throttled_from = window(THROTTLED_WINDOW)
            for provider in ("aws", "gcp"):
                ready = bs.ready(bs.get(kube, namespace, provider))
                assert ready is not None and (ready["status"], ready["reason"]) == ("False", "ProviderError"), ready
                assert "throttled" in ready["message"], ready
            proxy.throttling = False
            gcp.throttle(project, None)
            lifted = time.monotonic()

            # Back by the backoff alone: no force-sync is sent.
            for provider in ("aws", "gcp"):
                bs.wait_ready(kube, namespace, provider, reason="Synced", timeout=120)
            recovered = time.monotonic() - lifted
            counted = reads()
            rates = {p: (_per_minute(t, healthy_from, HEALTHY_WINDOW), _per_minute(t, throttled_from, THROTTLED_WINDOW))
                     for p, t in counted.items()}
            throttled_gcp = [a.at for a in gcp.arrivals(resource_prefix=f"projects/{project}/", method="AccessSecretVersion")
                             if a.throttled]
            # Every GCP read that followed a throttled answer, the first one after the lift included.
            gaps = [round(later - at, 1) for at, later in zip(counted["gcp"], counted["gcp"][1:], strict=False)
                    if at in throttled_gcp]
            print(f"throttling, reads of one BotSecret per minute (refresh 5 s), healthy -> throttled: "
                  f"AWS {rates['aws'][0]:.1f} -> {rates['aws'][1]:.1f}, GCP {rates['gcp'][0]:.1f} -> {rates['gcp'][1]:.1f}; "
                  f"GCP gaps after a throttled answer {gaps} s (RetryInfo {GCP_RETRY_DELAY:.0f} s); "
                  f"Synced again {recovered:.0f} s after the lift")
            for provider, (healthy, throttled) in rates.items():
                assert 0 < throttled < healthy, f"{provider}: {throttled:.1f} reads/min throttled, {healthy:.1f} healthy"
            assert proxy.arrivals(throttled=True), "no AWS read was throttled"
            assert len(gaps) >= 2 and min(gaps) >= GCP_RETRY_DELAY, gaps
            for provider in ("aws", "gcp"):
                data = bs.secret_data(kube, namespace, f"{provider}-env") or {}
                chaos.writes_lost(sum(data.get(k) != v for k, v in good[provider].items()))
                assert data == good[provider]
                seen = wl.replicasets(kube, namespace, provider)
                chaos.restarts(expected=1, seen=seen)
                assert seen == 1, f"Deployment {provider}: {seen} ReplicaSets"
                writes = secret_writes(cluster, namespace, f"{provider}-env", since=since)
                assert writes == [], [(w["verb"], w["requestReceivedTimestamp"]) for w in writes]
    finally:
        gcp.throttle(project, None)
        proxy.stop()


# ---------------------------------------------------------------------------------------------
# 3. A slow provider: 30 BotSecrets on a black hole, and a healthy one elsewhere
# ---------------------------------------------------------------------------------------------

def test_botsecrets_stuck_on_a_black_hole_do_not_delay_another_namespace(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    hole = FaultProxy(aws.port, mode="blackhole")
    hole.start()
    stuck = f"{namespace}-stuck"
    kube.core.create_namespace({"metadata": {"name": stuck, "labels": {"botsecret.dev/test": "true"}}})
    try:
        with chaos.fault("30 BotSecrets on a black-holed provider"):
            create_store(kube, stuck, "hole", aws_provider(kube, stuck, hole.endpoint))
            for i in range(30):
                kube.custom.create_namespaced_custom_object(GROUP, VERSION, stuck, "botsecrets", _botsecret(
                    f"stuck-{i}", {"sources": [{"name": "aws", "storeRef": store_ref("hole")}],
                                   "data": [{"key": "K", "remoteRef": {"name": f"stuck/{i}"}}]}))
            # The healthy BotSecret comes once the black hole holds every request it will get (the 30
            # syncs and the store's check): it must not slip through before the stuck ones have
            # taken what they will take. (With asyncio's default pool, 6 threads here, only 6 were
            # ever held and the healthy BotSecret waited behind them.)
            # The 30 references of one identity are gathered into BatchGetSecretValue calls of up to
            # 20 (at least 2 requests), and at most the operator's concurrency limit per endpoint is
            # in flight there: waiting for 31 would let every stuck sync time out before the healthy
            # BotSecret even exists.
            holds = min(2, Limits().concurrency)
            wait_for(lambda: hole.held() >= holds, timeout=30, what=f"{holds} requests held by the black hole")

            value = secret_value("chaos_beside_hole")
            aws.client().create_secret(Name=f"{namespace}/healthy", SecretString=value)
            create_store(kube, namespace, "aws", aws_provider(kube, namespace, aws.endpoint))
            bs.create(kube, namespace, "healthy", {"sources": [{"name": "aws", "storeRef": store_ref("aws")}],
                                                   "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/healthy"}}]})

            def timed_out() -> list[str]:
                # A sync refused by the operator's own limit (LimitReached, after waiting for a slot)
                # is not a timeout of the black hole: only the held requests' timeouts count.
                return [item["metadata"]["name"] for item in kube.custom.list_namespaced_custom_object(
                    GROUP, VERSION, stuck, "botsecrets")["items"]
                    if bs.ready(item) and "own limit" not in (bs.ready(item) or {}).get("message", "")]

            def healthy_ready() -> bool:
                return (bs.ready(bs.get(kube, namespace, "healthy")) or {}).get("status") == "True"

            # Whichever comes first: the healthy one synced, or a stuck one's timeout reported.
            wait_for(lambda: healthy_ready() or timed_out(), timeout=120, what="the healthy BotSecret or a timeout")
            first_timeouts = timed_out()
            assert healthy_ready() and first_timeouts == [], \
                f"{len(first_timeouts)} stuck BotSecrets timed out before the healthy one was synced"
            assert bs.secret_data(kube, namespace, "healthy") == {"K": value.encode()}
    finally:
        hole.set_mode("drop")  # let the stuck syncs fail fast so that their deletion is quick
        kube.core.delete_namespace(stuck)
        wait_for(lambda: not kube.custom.list_namespaced_custom_object(GROUP, VERSION, stuck, "botsecrets")["items"],
                 timeout=120, what="the stuck BotSecrets released")
        hole.stop()


# ---------------------------------------------------------------------------------------------
# 4. SIGKILL of the operator at bad moments
# ---------------------------------------------------------------------------------------------

def test_operator_sigkill_during_a_debounce_gives_one_restart(operator: Any, kube: Kube, namespace: str,
                                                              aws: MotoServer) -> None:
    bot = Bot(kube, namespace, aws, aws.endpoint, debounce="5s")
    bot.settled()
    with chaos.fault("operator SIGKILL during a debounce"):
        bot.rotate("A")
        wait_for(lambda: (bs.get(kube, namespace, "bot").get("status") or {}).get("pendingRollout"),
                 timeout=30, what="the restart pending in its debounce")
        try:
            operator.kill()
            assert bot.replicasets() == 1, "the restart came before the debounce ended"
        finally:
            if operator.proc is None:  # killed: start it again (a failure before the kill leaves it running)
                operator.start()
        wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the debounced restart after the kill")
        bot.settled()
        bot.assert_restarts()
        bot.rotate("B")
        wait_for(lambda: bot.replicasets() == 3, timeout=60, what="the next rotation's restart")
        bot.settled()
        bot.assert_restarts()


def test_operator_sigkill_with_a_rollout_in_progress_gives_one_restart_per_rotation(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    # One replica and no kubelet: a restart's rollout progresses until the Deployment is scaled to 0.
    bot = Bot(kube, namespace, aws, aws.endpoint, replicas=1)
    bot.settled()
    with chaos.fault("operator SIGKILL with a rollout in progress"):
        bot.rotate("A")
        wait_for(lambda: (e := rollout_entry(kube, namespace, "bot", "Deployment", "app")) and e.get("phase") == "Progressing"
                 and bot.replicasets() == 2, timeout=60, what="the rotation's rollout in progress")
        try:
            operator.kill()
            bot.rotate("B")  # while it is gone, and while the rollout is still going
        finally:
            if operator.proc is None:  # killed: start it again (a failure before the kill leaves it running)
                operator.start()
        wait_for(lambda: (c := bs.condition(bs.get(kube, namespace, "bot"), "RolloutComplete"))
                 and c["reason"] == "WaitingForRollout", timeout=60, what="the new restart waiting for the rollout")
        assert bot.replicasets() == 2
        wl.scale(kube, namespace, "Deployment", "app", 0)
        wait_for(lambda: bot.replicasets() == 3, timeout=60, what="the waiting restart after the rollout ended")
        bot.settled()
        bot.assert_restarts()
        entry = rollout_entry(kube, namespace, "bot", "Deployment", "app")
        assert entry is not None and entry["restartedFor"] == ["B"], entry


@contextlib.contextmanager
def withheld(kube: Kube, group: str, resource: str, verb: str) -> Iterator[None]:
    """The operator's ClusterRole without one verb on one resource, restored afterwards: a way to
    stop a cycle at one exact step (the apiserver answers 403 there) without touching the code."""
    role = kube.rbac.read_cluster_role("botsecret-operator")
    original = kube.api.sanitize_for_serialization(role)["rules"]
    rules = copy.deepcopy(original)
    for rule in rules:
        if group in rule.get("apiGroups", []) and resource in rule.get("resources", []):
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    kube.rbac.patch_cluster_role("botsecret-operator", {"rules": rules})
    try:
        yield
    finally:
        kube.rbac.patch_cluster_role("botsecret-operator", {"rules": original})


def test_operator_sigkill_between_the_secret_write_and_the_template_patch(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    bot = Bot(kube, namespace, aws, aws.endpoint)
    bot.settled()
    with chaos.fault("operator SIGKILL between the Secret write and the template patch"):
        try:
            with withheld(kube, "apps", "deployments", "patch"):
                value = bot.rotate("A")
                wait_for(lambda: (bs.secret_data(kube, namespace, "bot-env") or {}).get("A") == value, timeout=60,
                         what="the Secret written")
                wait_for(lambda: (c := bs.condition(bs.get(kube, namespace, "bot"), "RolloutComplete"))
                         and c["reason"] == "RolloutError", timeout=60, what="the template patch refused")
                operator.kill()
                assert bot.replicasets() == 1
        finally:
            if operator.proc is None:  # killed: start it again (a failure before the kill leaves it running)
                operator.start()
        wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the restart after the operator came back")
        bot.settled()
        bot.assert_restarts()


def test_operator_sigkill_between_the_template_patch_and_the_status_write(
    operator: Any, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    # No debounce: the restart comes in the cycle that writes the Secret, before its status write.
    # (With one, the pending restart lives only in status, so an unwritable status holds it back.)
    bot = Bot(kube, namespace, aws, aws.endpoint, debounce="0s")
    bot.settled()
    with chaos.fault("operator SIGKILL between the template patch and the status write"):
        try:
            with withheld(kube, "botsecret.dev", "botsecrets/status", "patch"):
                rotated_status = (bs.get(kube, namespace, "bot").get("status") or {}).get("dataHMAC")
                bot.rotate("A")
                wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the template patched")
                operator.kill()
                assert (bs.get(kube, namespace, "bot").get("status") or {}).get("dataHMAC") == rotated_status, \
                    "the status was written: the kill came too late to test anything"
        finally:
            if operator.proc is None:  # killed: start it again (a failure before the kill leaves it running)
                operator.start()
        bot.settled()
        bot.assert_restarts()
        bot.rotate("B")
        wait_for(lambda: bot.replicasets() == 3, timeout=60, what="the next rotation's restart")
        bot.settled()
        bot.assert_restarts()


# ---------------------------------------------------------------------------------------------
# 5. The control plane: kube-apiserver restarts, etcd stalls
# ---------------------------------------------------------------------------------------------

def test_an_apiserver_restart_costs_nothing(operator: Any, cluster: ControlPlane, kube: Kube, namespace: str,
                                            aws: MotoServer) -> None:
    bot = Bot(kube, namespace, aws, aws.endpoint)
    bot.settled()
    with chaos.fault("kube-apiserver restart over the same etcd"):
        since = audit_now()
        cluster.restart_apiserver()
        # Only a resumed watch delivers a force-sync to the operator.
        bot.settled()
        assert secret_writes(cluster, namespace, "bot-env", since=since) == []
        bot.assert_restarts()
        value = bot.rotate("A")
        wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the rotation's restart after the apiserver restart")
        bot.settled()
        bot.assert_restarts()
        assert bs.secret_data(kube, namespace, "bot-env")["A"] == value


BOTSECRETS = f"/apis/{GROUP}/{VERSION}/botsecrets"


def _resource_version(uri: str) -> int | None:
    found = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query).get("resourceVersion", [""])[0]
    return int(found) if found else None


def operator_botsecret_streams(cluster: ControlPlane, *, since: str) -> list[dict[str, Any]]:
    """The operator's cluster-wide lists and watches of BotSecrets received since ``since``, in
    order: verb, resourceVersion asked for, and the status code of each audit stage."""
    requests: dict[str, dict[str, Any]] = {}
    for e in cluster.audit_events():
        uri = e.get("requestURI", "")
        if (e.get("user", {}).get("username") == OPERATOR_USER and uri.split("?")[0] == BOTSECRETS
                and e.get("verb") in ("list", "watch") and e.get("requestReceivedTimestamp", "") >= since):
            request = requests.setdefault(e["auditID"], {"verb": e["verb"], "from": _resource_version(uri),
                                                         "at": e["requestReceivedTimestamp"], "stages": {}})
            request["stages"][e["stage"]] = (e.get("responseStatus") or {}).get("code")
    return sorted(requests.values(), key=lambda r: str(r["at"]))


def test_a_watch_expired_by_compaction_is_relisted_without_a_write_or_restart(
    operator: Any, cluster: ControlPlane, kube: Kube, namespace: str, aws: MotoServer,
) -> None:
    """The relist must come from the 410 itself, not from a bookmark or an error: the operator is
    frozen (SIGSTOP) across the apiserver's restart over a compacted etcd, and thawed only once an
    admin's watch from the newest version it can hold is answered ``Expired``; its first watch
    after that then resumes from a version that is proven gone. kopf (watching.py) lists only when
    a stream starts afresh: at start-up, after a 410, or after an error escapes (the log is checked
    for none)."""
    bot = Bot(kube, namespace, aws, aws.endpoint)
    bot.settled()
    with chaos.fault("watch expiry: etcd compacted past the operator's resourceVersion"):
        since = audit_now()
        operator.pause()
        try:
            # Nothing the frozen operator has read (events, bookmarks) is newer than this list.
            held = int(kube.custom.list_cluster_custom_object(GROUP, VERSION, "botsecrets")["metadata"]["resourceVersion"])
            # One write after it, so that the compaction passes every version the operator holds.
            kube.core.create_namespaced_config_map(namespace, {"metadata": {"name": "after-the-freeze"}})
            compacted = cluster.restart_apiserver(compact=True)
            assert compacted is not None and compacted > held, (compacted, held)
            expired = wait_for(lambda: (e := cluster.first_watch_event(BOTSECRETS, held)).get("type") == "ERROR" and e,
                               timeout=60, what=f"an admin watch from resourceVersion {held} answered with an error")
            assert (expired["object"]["code"], expired["object"]["reason"]) == (410, "Expired"), expired
        finally:
            thawed = audit_now()
            operator.resume()

        def resumed_then_relisted() -> list[dict[str, Any]] | None:
            streams = operator_botsecret_streams(cluster, since=thawed)
            return streams[:3] if len(streams) >= 3 and "ResponseComplete" in streams[0]["stages"] else None

        old, relist, fresh = wait_for(resumed_then_relisted, timeout=60,
                                      what="the operator's watch from its old version, a list and a new watch")
        streams = [(r["verb"], r["from"], r["stages"]) for r in (old, relist, fresh)]
        # The old version's watch: answered 200 (the 410 is an event inside the stream) and ended.
        assert old["verb"] == "watch" and old["from"] is not None and old["from"] <= held, streams
        assert old["stages"] == {"ResponseStarted": 200, "ResponseComplete": 200}, streams
        # Straight after it a list from nothing, then a watch from the list's version (past the compaction).
        assert relist["verb"] == "list" and relist["from"] is None, streams
        assert fresh["verb"] == "watch" and fresh["from"] is not None and fresh["from"] >= compacted, streams
        assert "Error in the watch-stream" not in operator.output()
        print(f"watch expiry: operator held {held}, etcd compacted at {compacted}; audit after the thaw: {streams}")

        bot.settled()
        assert secret_writes(cluster, namespace, "bot-env", since=since) == []
        bot.assert_restarts()
        bot.rotate("A")
        wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the rotation's restart after the relist")
        bot.settled()
        bot.assert_restarts()


def test_an_etcd_stall_is_survived_and_nothing_is_written_twice(
    operator: Any, cluster: ControlPlane, kube: Kube, namespace: str, aws: MotoServer, healthy_proxy: FaultProxy,
) -> None:
    bot = Bot(kube, namespace, aws, healthy_proxy.endpoint, refresh="5s")
    bot.settled()
    with chaos.fault("etcd SIGSTOP"):
        value = bot.rotate("A", sync=False)
        since = audit_now()
        cluster.pause_etcd()
        try:
            wait_for(lambda: not cluster.etcd_healthy(), timeout=30, what="the apiserver to find etcd unresponsive")
            # This sleep is the fault itself, not a wait for evidence: etcd stands still for
            # STALL_SECONDS, longer than a refresh interval (5 s), so that the operator's requests run
            # into it. What follows checks the evidence: the audit log shows a request of the
            # operator received during the stall and answered after it, and one Secret write.
            time.sleep(STALL_SECONDS)
        finally:
            resumed = audit_now()
            cluster.resume_etcd()
        wait_for(cluster.etcd_healthy, timeout=60, what="etcd back")
        wait_for(lambda: (bs.secret_data(kube, namespace, "bot-env") or {}).get("A") == value, timeout=60,
                 what="the new value after the stall")
        wait_for(lambda: bot.replicasets() == 2, timeout=60, what="the rotation's restart after the stall")
        bot.settled()
        bot.assert_restarts()
        writes = secret_writes(cluster, namespace, "bot-env", since=since)
        assert len(writes) == 1, [(w["verb"], w["requestReceivedTimestamp"]) for w in writes]
        stalled = [e for e in cluster.audit_events() if e.get("user", {}).get("username") == OPERATOR_USER
                   and since <= e.get("requestReceivedTimestamp", "") <= resumed
                   and e.get("stageTimestamp", "") > resumed]
        assert stalled, "no request of the operator ran into the stall"


# ---------------------------------------------------------------------------------------------
# 6. Conflicts: other writers on the managed Secret
# ---------------------------------------------------------------------------------------------

def test_concurrent_writers_on_the_managed_secret_lose_nothing(operator: Any, cluster: ControlPlane, kube: Kube,
                                                               namespace: str, aws: MotoServer) -> None:
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "bot-env"}, "stringData": {"W0": "0", "W1": "0"}})
    bot = Bot(kube, namespace, aws, aws.endpoint, policy="Merge")
    bot.settled()
    stop = threading.Event()
    acknowledged = {"W0": 0, "W1": 0}
    conflicts = [0]

    def writer(key: str) -> None:
        # Read-modify-write with the resourceVersion read, as controllers and `kubectl edit` do.
        while not stop.is_set():
            secret = kube.core.read_namespaced_secret("bot-env", namespace)
            count = acknowledged[key] + 1
            secret.data[key] = base64.b64encode(str(count).encode()).decode()
            try:
                kube.core.replace_namespaced_secret("bot-env", namespace, secret)
                acknowledged[key] = count
            except ApiException as e:
                if e.status != 409:
                    raise
                conflicts[0] += 1

    with chaos.fault("two read-modify-write writers on the managed Secret"):
        threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in acknowledged]
        for t in threads:
            t.start()
        since = audit_now()
        try:
            rotated = {}
            for key in ("A", "B"):
                rotated[key] = bot.rotate(key)
                wait_for(lambda: bot.replicasets() == 1 + bot.restarts, timeout=60, what=f"the restart for {key}")
                bot.settled()
            wait_for(lambda: conflicts[0] > 0, timeout=30, what="409 conflicts between the writers")
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        data = bs.secret_data(kube, namespace, "bot-env") or {}
        expected = {**{k: str(v).encode() for k, v in acknowledged.items()}, **rotated}
        chaos.writes_lost(sum(data.get(k) != v for k, v in expected.items()))
        assert data == expected, sorted(k for k in expected if data.get(k) != expected[k])
        bot.settled()
        bot.assert_restarts()
        # The operator's apply is not a read-modify-write: one write per rotation, no retries.
        assert len(secret_writes(cluster, namespace, "bot-env", since=since)) == len(rotated)


def test_concurrent_writers_on_the_botsecrets_status_cost_no_restart(operator: Any, cluster: ControlPlane,
                                                                     kube: Kube, namespace: str, aws: MotoServer) -> None:
    bot = Bot(kube, namespace, aws, aws.endpoint)
    bot.settled()
    stop = threading.Event()
    conflicts, written = [0], [0]

    def writer(kind: str) -> None:
        # Another controller that keeps a condition of its own in the status, read-modify-write.
        while not stop.is_set():
            body = bs.get(kube, namespace, "bot")
            conditions = [c for c in body["status"].get("conditions", []) if c["type"] != kind]
            conditions.append({"type": kind, "status": "True", "reason": "Seen", "message": str(written[0]),
                               "lastTransitionTime": "2026-01-01T00:00:00Z"})
            body["status"]["conditions"] = conditions
            try:
                kube.custom.replace_namespaced_custom_object_status(GROUP, VERSION, namespace, "botsecrets", "bot", body)
                written[0] += 1
            except ApiException as e:
                if e.status != 409:
                    raise
                conflicts[0] += 1

    with chaos.fault("two read-modify-write writers on the BotSecret's status"):
        threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in ("AuditedA", "AuditedB")]
        for t in threads:
            t.start()
        since = audit_now()
        try:
            rotated = {}
            for key in ("A", "B"):
                rotated[key] = bot.rotate(key)
                wait_for(lambda: bot.replicasets() == 1 + bot.restarts, timeout=60, what=f"the restart for {key}")
                bot.settled()
            wait_for(lambda: conflicts[0] > 0, timeout=30, what="409 conflicts on the status")
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert written[0] > 0
        status = bot.settled()
        assert bs.ready({"status": status})["status"] == "True"
        data = bs.secret_data(kube, namespace, "bot-env") or {}
        chaos.writes_lost(sum(data.get(k) != v for k, v in rotated.items()))
        assert {k: data.get(k) for k in rotated} == rotated
        bot.assert_restarts()
        assert len(secret_writes(cluster, namespace, "bot-env", since=since)) == len(rotated)


# ---------------------------------------------------------------------------------------------
# Last: no value of the suite leaked anywhere, and the summary
# ---------------------------------------------------------------------------------------------

def test_zz_no_value_leaked_and_the_summary(kube: Kube, artifacts: Any) -> None:
    from tests.e2e.test_zz_leaks import find_leaks, operator_texts
    from tests.harness import leaks
    from tests.harness.leak_scan import SNAPSHOTS, namespace_texts

    texts = {**SNAPSHOTS, **namespace_texts(kube), **operator_texts(artifacts)}
    found = find_leaks(texts, list(leaks.ISSUED))
    chaos.RECORD.leaked = len(found)  # the summary line is printed at the session's end (tests/harness/chaos.py)
    assert found == []
    assert chaos.RECORD.spurious_restarts == 0 and chaos.RECORD.writes_lost == 0
    unexpected = [f for f in chaos.RECORD.faults if f not in chaos.RECORD.survived and f not in chaos.RECORD.known]
    assert unexpected == []
    assert chaos.RECORD.rejected == chaos.RECORD.bad_inputs
