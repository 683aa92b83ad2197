"""The BotSecret CRD on a real apiserver: what it accepts, what it refuses and with which field path,
and that its schema defaults agree with ``botsecret.spec.parse_spec``."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from botsecret.spec import InvalidSpec, parse_spec
from tests.harness.cluster_fixtures import Kube
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.sync

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "botsecret.dev_botsecrets.yaml"
GROUP, VERSION, PLURAL = "botsecret.dev", "v1alpha1", "botsecrets"

# Every field set, one source of each kind.
VALID: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "BotSecret",
    "metadata": {"name": "bot"},
    "spec": {
        "sources": [
            {"name": "aws", "storeRef": {"kind": "BotSecretStore", "name": "aws-prod"}},
            {"name": "vault", "storeRef": {"kind": "BotSecretStore", "name": "vault.team-a"}},
            {"name": "gcp", "storeRef": {"kind": "ClusterBotSecretStore", "name": "gcp-shared"}},
        ],
        "data": [
            {"key": "token", "source": "aws", "remoteRef": {"name": "bots/telegram", "property": "token",
                                                            "version": "AWSCURRENT"}},
            {"key": "api.key", "source": "vault", "remoteRef": {"name": "bots/api", "property": "key"}},
            {"key": "signing-key", "source": "gcp", "remoteRef": {"name": "signing", "version": "3"}},
        ],
        "dataFrom": [{"source": "vault", "remoteRef": {"name": "bots/env", "version": "2"}}],
        "target": {
            "name": "bot-credentials", "type": "Opaque", "labels": {"app": "bot"},
            "annotations": {"team": "bots"}, "creationPolicy": "Orphan", "deletionPolicy": "Delete",
        },
        "refreshInterval": "1h30m",
        "required": ["token"],
        "rollout": {
            "targets": [{"kind": "Deployment", "name": "bot"},
                        {"kind": "StatefulSet", "selector": {"matchLabels": {"app": "bot"}}},
                        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "bot"},
                        {"apiVersion": "example.com/v1", "kind": "BotRunner", "name": "bot"}],
            "debounce": "30s",
            "progressDeadline": "15m",
        },
    },
}

# Only what is required, so that every default of the schema applies.
SPARSE: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "BotSecret",
    "metadata": {"name": "sparse"},
    "spec": {
        "sources": [
            {"name": "aws", "storeRef": {"name": "aws"}},
            {"name": "vault", "storeRef": {"name": "vault"}},
        ],
        "data": [{"key": "token", "source": "vault", "remoteRef": {"name": "bots/telegram"}}],
        "rollout": {"targets": [{"kind": "Deployment", "name": "bot"}]},
    },
}


@pytest.fixture(scope="module")
def botsecret_crd(kube: Kube) -> Iterator[dict[str, Any]]:
    """The CRDs from crds/ (the BotSecret's and the stores'), applied or replacing older versions, and served."""
    from tests.harness.operator_process import install_crd

    crd = yaml.safe_load(CRD_PATH.read_text())
    install_crd(kube)

    def served() -> bool:
        # A dry-run create goes through the served schema without storing anything.
        try:
            kube.custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                                        copy.deepcopy(VALID), dry_run="All")
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    wait_for(served)
    yield crd


def _create(kube: Kube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return result


def test_crd_schema_describes_every_field() -> None:
    crd = yaml.safe_load(CRD_PATH.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    undescribed: list[str] = []
    preserved: list[str] = []
    namespaces: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        # The apiserver refuses a description on metadata.
        if not node.get("description") and path != ".metadata":
            undescribed.append(path)
        if node.get("x-kubernetes-preserve-unknown-fields"):
            preserved.append(path)
        for key, child in (node.get("properties") or {}).items():
            if key == "namespace":
                namespaces.append(f"{path}.{key}")
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"].get("properties"):
            walk(node["additionalProperties"], f"{path}{{}}")

    walk(schema, "")
    assert not undescribed, f"fields without a description: {undescribed}"
    # The removed inline provider fields stay in the schema only to be refused with a message.
    assert preserved == [".spec.sources[].aws", ".spec.sources[].gcp", ".spec.sources[].vault"], \
        "the status the operator writes has a schema, so a test can see it pruned"
    # No reference may point into another Kubernetes namespace.
    assert namespaces == []


def test_valid_botsecret_is_accepted_and_unknown_fields_are_pruned(
    kube: Kube, botsecret_crd: dict[str, Any], namespace: str,
) -> None:
    body = copy.deepcopy(VALID)
    body["spec"]["colour"] = "blue"
    body["spec"]["target"]["colour"] = "blue"
    created = _create(kube, namespace, body)
    assert "colour" not in created["spec"], "unknown field under spec was not pruned"
    assert "colour" not in created["spec"]["target"], "unknown field under spec.target was not pruned"
    assert created["spec"] == VALID["spec"]
    listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["bot"]


def _case(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    body["metadata"]["name"] = "invalid"
    mutate(body["spec"])
    return body


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets spec field ``path`` (dots and list indexes, e.g. ``data.1.key``)."""
    *parents, last = path.split(".")

    def mutate(spec: dict[str, Any]) -> None:
        node: Any = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        # A copy each time: a mutation may run more than once (the chaos suite reruns these cases).
        if isinstance(node, list):
            node[int(last)] = copy.deepcopy(value)
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    return mutate


_DELETE = object()


def _both(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        for m in mutations:
            m(spec)
    return mutate


def _no_sources(spec: dict[str, Any]) -> None:
    spec["sources"] = []
    for item in spec["data"] + spec["dataFrom"]:
        item.pop("source", None)


# id, mutation of VALID's spec, field path the apiserver's message must name, a fragment of the
# message, and whether parse_spec refuses it too (False where the CRD is deliberately stricter).
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str, str, bool]] = [
    ("inline-aws-settings", _set("sources.0.aws", {"region": "eu-west-1", "endpoint": "https://x"}),
     "spec.sources[0]", "inline provider settings", True),
    ("inline-vault-without-store", _set("sources.1", {"name": "vault", "vault": {"address": "https://x"}}),
     "spec.sources[1]", "inline provider settings", True),
    ("source-without-store", _set("sources.2.storeRef", _DELETE),
     "spec.sources[2]", "storeRef is required", True),
    ("store-kind-unknown", _set("sources.0.storeRef.kind", "SecretStore"),
     "spec.sources[0].storeRef.kind", "Unsupported value", True),
    ("store-name-with-a-slash", _set("sources.0.storeRef.name", "team-a/aws"),
     "spec.sources[0].storeRef.name", "should match", True),
    ("source-name-with-upper-case", _both(_set("sources.0.name", "AWS"), _set("data.0.source", "AWS")),
     "spec.sources[0].name", "should match", False),
    ("target-name-with-a-slash", _set("target.name", "../bot"),
     "spec.target.name", "should match", True),
    ("target-name-with-upper-case", _set("target.name", "Bot"),
     "spec.target.name", "should match", True),
    ("remote-name-with-a-dotdot-segment", _set("data.1.remoteRef.name", "bots/../admin"),
     "spec.data[1].remoteRef.name", "should match", True),
    ("remote-name-with-two-leading-slashes", _set("data.1.remoteRef.name", "//bots/api"),
     "spec.data[1].remoteRef.name", "should match", True),
    ("remote-name-with-a-space", _set("dataFrom.0.remoteRef.name", "bots env"),
     "spec.dataFrom[0].remoteRef.name", "should match", True),
    ("rollout-target-name-with-a-slash", _set("rollout.targets.0.name", "apps/bot"),
     "spec.rollout.targets[0].name", "should match", False),
    ("data-source-missing-with-several-sources", _set("data.1.source", _DELETE),
     "spec.data[1].source", "is required when spec.sources has more than one entry", True),
    ("data-source-names-no-source", _set("data.1.source", "nowhere"),
     "spec.data[1].source", '"nowhere" names no entry of spec.sources', True),
    ("dataFrom-source-names-no-source", _set("dataFrom.0.source", "nowhere"),
     "spec.dataFrom[0].source", '"nowhere" names no entry of spec.sources', True),
    ("duplicate-data-keys", _set("data.1.key", "token"),
     "spec.data[1]", 'Duplicate value: {"key":"token"}', True),
    ("invalid-key-name", _set("data.1.key", "api key!"),
     "spec.data[1].key", "should match", True),
    ("refresh-interval-too-short", _set("refreshInterval", "2s"),
     "spec.refreshInterval", "between 5s and 168h", True),
    ("refresh-interval-too-long", _set("refreshInterval", "169h"),
     "spec.refreshInterval", "between 5s and 168h", True),
    ("refresh-interval-not-a-duration", _set("refreshInterval", "banana"),
     "spec.refreshInterval", "should match", True),
    ("target-type-service-account-token", _set("target.type", "kubernetes.io/service-account-token"),
     "spec.target.type", "the cluster fills in Secrets of those types", True),
    ("target-type-bootstrap-token", _set("target.type", "bootstrap.kubernetes.io/token"),
     "spec.target.type", "the cluster fills in Secrets of those types", True),
    ("rollout-target-with-name-and-selector", _set("rollout.targets.0.selector", {"matchLabels": {"app": "bot"}}),
     "spec.rollout.targets[0]", "exactly one of name and selector", True),
    ("rollout-target-with-neither", _set("rollout.targets.1.selector", _DELETE),
     "spec.rollout.targets[1]", "exactly one of name and selector", True),
    ("rollout-target-of-another-kind-without-api-version", _set("rollout.targets.0.kind", "Rollout"),
     "spec.rollout.targets[0].apiVersion", "apiVersion is required for kinds other than", True),
    ("rollout-target-deployment-of-another-group", _set("rollout.targets.0.apiVersion", "example.com/v1"),
     "spec.rollout.targets[0].apiVersion", "are apps/v1", True),
    ("rollout-target-api-version-of-the-core-group", _set("rollout.targets.2.apiVersion", "v1"),
     "spec.rollout.targets[2].apiVersion", "should match", True),
    ("rollout-target-kind-lower-case", _set("rollout.targets.3.kind", "botrunner"),
     "spec.rollout.targets[3].kind", "should match", True),
    ("rollout-progress-deadline-zero", _set("rollout.progressDeadline", "0s"),
     "spec.rollout.progressDeadline", "at least 1s", True),
    ("rollout-progress-deadline-not-a-duration", _set("rollout.progressDeadline", "soon"),
     "spec.rollout.progressDeadline", "should match", True),
    ("empty-sources", _no_sources,
     "spec.sources", "at least 1 items", True),
    ("neither-data-nor-dataFrom", _both(_set("data", []), _set("dataFrom", _DELETE), _set("required", _DELETE)),
     "spec.data", "spec.data or spec.dataFrom must name at least one remote secret", True),
    ("creation-policy-sometimes", _set("target.creationPolicy", "Sometimes"),
     "spec.target.creationPolicy", "Unsupported value", True),
    ("deletion-policy-sometimes", _set("target.deletionPolicy", "Sometimes"),
     "spec.target.deletionPolicy", "Unsupported value", True),
    ("duplicate-source-names", _set("sources.2.name", "aws"),
     "spec.sources[2]", "Duplicate value", True),
    ("required-key-not-in-data", _both(_set("dataFrom", _DELETE), _set("required", ["token", "nope"])),
     "spec.required[1]", "is not a key of spec.data", False),
    ("key-starting-with-two-dots", _set("data.1.key", "..data"),
     "spec.data[1].key", "may not be '.' or start with '..'", True),
    ("refresh-policy-unknown", _set("refreshPolicy", "Sometimes"),
     "spec.refreshPolicy", "Unsupported value", True),
    ("template-key-invalid", _set("target.template", {"data": {"bad key": "x"}}),
     "spec.target.template.data", "valid Secret keys", True),
    ("template-type-filled-in-by-the-cluster",
     _set("target.template", {"data": {"k": "x"}, "type": "kubernetes.io/service-account-token"}),
     "spec.target.template.type", "the cluster fills in", True),
    ("template-merge-policy-unknown", _set("target.template", {"data": {"k": "x"}, "mergePolicy": "Keep"}),
     "spec.target.template.mergePolicy", "Unsupported value", True),
]


@pytest.mark.parametrize(("mutate", "field_path", "fragment", "parser_refuses"),
                         [pytest.param(*case[1:], id=case[0]) for case in INVALID])
def test_invalid_botsecret_is_refused_naming_the_field(
    kube: Kube, botsecret_crd: dict[str, Any], namespace: str,
    mutate: Callable[[dict[str, Any]], None], field_path: str, fragment: str, parser_refuses: bool,
) -> None:
    body = _case(mutate)
    with pytest.raises(ApiException) as refused:
        _create(kube, namespace, body)
    assert refused.value.status == 422, refused.value.body
    message = json.loads(refused.value.body or "{}")["message"]
    assert field_path in message, message
    assert fragment in message, message

    if parser_refuses:
        # The operator's own parser refuses the same object and blames the same field (or its parent).
        with pytest.raises(InvalidSpec) as invalid:
            parse_spec(body["spec"], name="invalid")
        assert field_path.startswith(invalid.value.field) or invalid.value.field.startswith(field_path), \
            (invalid.value.field, field_path)
    else:
        parse_spec(body["spec"], name="invalid")


def test_parse_spec_reads_what_the_apiserver_stored_with_the_same_defaults(
    kube: Kube, botsecret_crd: dict[str, Any], namespace: str,
) -> None:
    full = _create(kube, namespace, copy.deepcopy(VALID))
    assert parse_spec(full["spec"], name="bot") == parse_spec(VALID["spec"], name="bot")

    stored = _create(kube, namespace, copy.deepcopy(SPARSE))
    spec = stored["spec"]
    # The apiserver filled in the schema's defaults ...
    assert [s["storeRef"] for s in spec["sources"]] == [
        {"kind": "BotSecretStore", "name": "aws"}, {"kind": "BotSecretStore", "name": "vault"}]
    assert spec["target"] == {"type": "Opaque", "creationPolicy": "Owner"}, "target.name and deletionPolicy " \
        "are defaulted by the operator, not by the schema"
    assert spec["refreshInterval"] == "1h"
    assert spec["rollout"]["debounce"] == "10s"

    # ... and they are the parser's defaults: the defaulted and the sparse spec parse the same.
    parsed = parse_spec(spec, name="sparse")
    assert parsed == parse_spec(SPARSE["spec"], name="sparse")
    assert [source.store.kind for source in parsed.sources] == ["BotSecretStore", "BotSecretStore"]
    target = parsed.target
    assert (target.name, target.type, target.creation_policy, target.deletion_policy) == \
        ("sparse", "Opaque", "Owner", "Delete")
    assert (parsed.refresh_seconds, parsed.debounce_seconds, parsed.progress_deadline_seconds) == (3600.0, 10.0, None)


def test_status_the_operator_writes_is_stored_as_written(
    kube: Kube, botsecret_crd: dict[str, Any], namespace: str,
) -> None:
    # Imported here: these modules are the operator's, and only this test needs them.
    from botsecret.assemble import KeyOrigin
    from botsecret.reconcile import SyncResult
    from botsecret.status import status_patch

    created = _create(kube, namespace, copy.deepcopy(VALID))
    result = SyncResult(
        ready=True, reason="Synced", message="3 keys written", secret_name="bot-credentials",
        origins=(KeyOrigin("token", "aws", "bots/telegram", "a1b2c3d4-0000-4000-8000-000000000000"),
                 KeyOrigin("api.key", "vault", "bots/api", "7"), KeyOrigin(".env", "", "", "", template=True)),
        data_hmac="hmac-sha256:" + "ab" * 32,
    )
    status = status_patch(result, current={}, generation=created["metadata"]["generation"],
                          now="2026-01-02T03:04:05Z", force_sync="2026-01-02")
    assert status is not None
    # What the rollout code writes, made by it: a restart followed, then newer data waiting.
    status.update(_rollout_status(created["metadata"]["generation"]))
    assert status["rollout"][0]["consumedKeys"] and status["pendingRollout"]["keys"] == ["token"]

    stored = kube.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "bot", {"status": status},
        _content_type="application/merge-patch+json",
    )
    assert stored["status"] == status, "the schema pruned or changed what the operator wrote"

    unready = SyncResult(ready=False, reason="MissingKeys", message="spec.data[0] (bots/telegram): not found")
    patch = status_patch(unready, current=stored["status"], generation=created["metadata"]["generation"],
                         now="2026-01-02T04:00:00Z", force_sync=None)
    assert patch is not None
    stored = kube.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "bot", {"status": patch},
        _content_type="application/merge-patch+json",
    )
    assert [(c["type"], c["status"], c["reason"]) for c in stored["status"]["conditions"]] == \
        [("Ready", "False", "MissingKeys")]


EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def _kubectl(cluster: Any, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = cluster.bin_dir / "kubectl"
    return subprocess.run([str(kubectl), f"--kubeconfig={cluster.admin_kubeconfig}", *args],
                          capture_output=True, text=True, timeout=60)


def test_kubectl_explain_describes_the_fields(cluster: Any, botsecret_crd: dict[str, Any]) -> None:
    explained = wait_for(lambda: (r := _kubectl(cluster, "explain", "botsecret.spec.data.remoteRef")).returncode == 0 and r)
    assert "property" in explained.stdout and "version" in explained.stdout
    assert "AWSPREVIOUS" in explained.stdout or "stage" in explained.stdout, explained.stdout


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_documented_examples_are_accepted_by_the_apiserver(
    cluster: Any, kube: Kube, botsecret_crd: dict[str, Any], example: str,
) -> None:
    try:
        kube.core.create_namespace({"metadata": {"name": "bots"}})
    except ApiException as e:
        if e.status != 409:
            raise
    applied = _kubectl(cluster, "apply", "--dry-run=server", "-f", str(EXAMPLES / example))
    assert applied.returncode == 0, applied.stderr
    assert "botsecret.botsecret.dev/" in applied.stdout
    from botsecret.stores import parse_store

    kinds = []
    for doc in yaml.safe_load_all((EXAMPLES / example).read_text()):
        kinds.append(doc["kind"])
        if doc["kind"] == "BotSecret":
            parse_spec(doc["spec"], name=doc["metadata"]["name"])
        if doc["kind"] in ("BotSecretStore", "ClusterBotSecretStore"):
            parse_store(doc["kind"], doc)
    assert "BotSecretStore" in kinds or "ClusterBotSecretStore" in kinds, "every example shows its store"


def test_kubectl_get_shows_the_printer_columns(cluster: Any, kube: Kube, botsecret_crd: dict[str, Any],
                                               namespace: str) -> None:
    _create(kube, namespace, copy.deepcopy(SPARSE))
    listed = _kubectl(cluster, "get", "bsec", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split("\n")[0].split() == ["NAME", "READY", "REASON", "SECRET", "SYNCED", "AGE"]


class _OneDeployment:
    """The workload store of botsecret.rollout, reduced to one Deployment that reads the whole Secret."""

    def __init__(self) -> None:
        self.annotations: dict[str, str] = {}

    def opted_in(self, secret_name: str) -> list[Any]:
        return []  # no workload opts in through botsecret.dev/restart-on

    def resolve(self, targets: Any) -> tuple[list[Any], list[str]]:
        from botsecret.rollout import Workload

        template = {"metadata": {"annotations": dict(self.annotations)},
                    "spec": {"containers": [{"name": "bot", "envFrom": [{"secretRef": {"name": "bot-credentials"}}]}]}}
        body = {"metadata": {"generation": 2}, "spec": {"replicas": 1, "template": template},
                "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 0}}
        return [Workload("Deployment", "bot", body, named=True)], []

    def restart(self, workload: Any, annotation: str, value: str) -> None:
        self.annotations[annotation] = value


def _rollout_status(generation: int) -> dict[str, Any]:
    import datetime

    from botsecret.fingerprint import data_hmac
    from botsecret.reconcile import SyncResult
    from botsecret.rollout import advance
    from botsecret.status import status_patch
    from botsecret.values import SecretValue

    spec = parse_spec(copy.deepcopy(SPARSE["spec"]), name="bot")
    store, key = _OneDeployment(), b"k" * 32
    status: dict[str, Any] = {}
    t0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    # A baseline, a change, its restart after the debounce, then a newer change that waits.
    for seconds, value in ((0, "v1"), (20, "v2"), (31, "v2"), (40, "v3")):
        data = {"token": SecretValue(value.encode())}
        result = SyncResult(True, "Synced", "", "bot-credentials", data_hmac=data_hmac(key, data),
                            changed_keys=("token",), spec=spec, data=data)
        outcome = advance(store, key, status, result, t0 + datetime.timedelta(seconds=seconds),  # type: ignore[arg-type]
                          botsecret="bot")
        status = {"rollout": outcome.entries, "pendingRollout": outcome.pending, "hmacKeyId": outcome.key_id}
    assert store.annotations, "the sequence above restarts once"
    patch = status_patch(result, current={}, generation=generation, now="2026-01-02T03:05:00Z", force_sync=None,
                         rollout={"entries": outcome.entries, "pending": outcome.pending,
                                  "condition": outcome.condition, "keyId": outcome.key_id})
    assert patch is not None
    return {k: v for k, v in patch.items() if k in ("rollout", "pendingRollout", "hmacKeyId", "conditions")}
