"""The Helm chart: it lints, renders the operator's flags from its values, ships exactly the RBAC
rules and the CRD of the plain manifests, refuses invalid values by its schema, and installs into
and uninstalls from the real test apiserver without touching the Secrets the operator made."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness import botsecrets as bs
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane
from tests.harness.cluster_fixtures import Kube
from tests.harness.leaks import secret_value

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "botsecret-operator"
CRD_NAME = "botsecrets.botsecret.dev"
# helm template assumes Kubernetes v1.20 unless told; the chart requires >= 1.29.
KUBE_VERSION = "1.29.0"


def helm_binary() -> Path:
    cache = os.environ.get("BOTSECRET_CACHE") or str(Path.home() / ".cache" / "botsecret")
    return Path(cache) / "bin" / "helm"


@pytest.fixture(scope="module")
def helm(cluster: ControlPlane) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs helm; the cluster fixture has built it (hack/build-binaries.sh) by now."""
    binary = helm_binary()
    assert binary.exists(), f"{binary} missing; hack/build-binaries.sh builds it"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    return run


def render(helm: Callable[..., subprocess.CompletedProcess[str]], *args: str,
           people: bool = False) -> list[dict[str, Any]]:
    """The rendered objects: the operator's own, or (``people``) the ClusterRoles for people."""
    out = helm("template", "rel", str(CHART), "--namespace", "ops", "--kube-version", KUBE_VERSION, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc and _for_people(doc) == people]


def _for_people(doc: dict[str, Any]) -> bool:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels)


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return dict(containers[0])


def manifest_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPO / "manifests" / name).read_text()) if d]


def manifest_rules(kind: str = "ClusterRole") -> list[dict[str, Any]]:
    return list(one(manifest_docs("rbac.yaml"), kind)["rules"])


def test_helm_lint_passes(helm: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = helm("lint", str(CHART), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_default_values_render_the_operator_of_the_manifests(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    docs = render(helm)
    assert sorted(d["kind"] for d in docs) == ["ClusterRole", "ClusterRoleBinding", "Deployment",
                                               "PodDisruptionBudget", "Role", "RoleBinding", "ServiceAccount"]
    deployment = one(docs, "Deployment")
    plain_docs = manifest_docs("operator.yaml")
    plain = one(plain_docs, "Deployment")
    assert deployment["spec"]["replicas"] == plain["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert deployment["spec"]["strategy"] == plain["spec"]["strategy"]
    container = operator_container(docs)
    args = container["args"]
    assert args[0] == "run"
    assert flag_values(args, "--liveness") == ["http://0.0.0.0:8080/healthz"]
    assert flag_values(args, "--metrics-port") == ["9102"]
    assert flag_values(args, "--metrics-address") == ["0.0.0.0"]
    assert "--json-logs" in args
    assert "-n" not in args, "default must watch all namespaces"
    assert "--allow-ambient-credentials" not in args, "default must allow no namespace ambient credentials"
    assert container["env"][0] == {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    assert container["env"][1] == {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert flag_values(args, "--lease-name") == ["rel-botsecret-operator"]
    assert flag_values(args, "--lease-duration") == ["15"]
    assert "--no-leader-election" not in args

    # Two replicas on different nodes, one at a time disrupted.
    terms = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert [t["podAffinityTerm"]["topologyKey"] for t in terms] == ["kubernetes.io/hostname"]
    assert terms[0]["podAffinityTerm"]["labelSelector"] == deployment["spec"]["selector"]
    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}
    assert one(plain_docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1

    # Security settings and resources as in manifests/operator.yaml.
    plain_pod = plain["spec"]["template"]["spec"]
    plain_container = plain_pod["containers"][0]
    assert deployment["spec"]["template"]["spec"]["securityContext"] == plain_pod["securityContext"]
    assert container["securityContext"] == plain_container["securityContext"]
    assert container["resources"] == plain_container["resources"]

    # Standard labels, and names that carry the release's name.
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "botsecret-operator"
    assert labels["app.kubernetes.io/instance"] == "rel"
    assert labels["app.kubernetes.io/version"] == "0.1.0"
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert labels["helm.sh/chart"] == "botsecret-operator-0.1.0"
    assert {d["metadata"]["name"] for d in docs} == {"rel-botsecret-operator", "rel-botsecret-operator-leader-election"}
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-botsecret-operator", "namespace": "ops"}]
    assert binding["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"]


def test_values_render_the_matching_flags(
    helm: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path,
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "allowAmbientCredentialsNamespaces": ["a", "b"],
        "watchNamespaces": ["x"],
        "logFormat": "plain",
        "metrics": {"port": 9200},
        "extraEnv": [{"name": "BOTSECRET_PROVIDER_TIMEOUT", "value": "10"}],
    }))
    args = operator_container(render(helm, "--values", str(values)))["args"]
    assert flag_values(args, "--allow-ambient-credentials") == ["a", "b"]
    assert flag_values(args, "-n") == ["x"]
    assert flag_values(args, "--metrics-port") == ["9200"]
    assert "--json-logs" not in args

    container = operator_container(render(helm, "--set", "metrics.enabled=false", "--values", str(values)))
    assert "--metrics-port" not in container["args"]
    assert "--metrics-address" not in container["args"]
    assert {"name": "BOTSECRET_PROVIDER_TIMEOUT", "value": "10"} in container["env"]


def test_rendered_clusterrole_rules_equal_the_manifests(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    docs = render(helm)
    assert one(docs, "ClusterRole")["rules"] == manifest_rules()
    # Leases only in the operator's own namespace, for leader election.
    assert one(docs, "Role")["rules"] == manifest_rules("Role")
    assert manifest_rules("Role") == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                       "verbs": ["get", "create", "update"]}]
    binding = one(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == "ops"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-botsecret-operator", "namespace": "ops"}]


def test_extra_rules_extend_the_operators_cluster_role(
    helm: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path,
) -> None:
    argo = {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "patch"]}
    assert argo in manifest_rules(), "Argo Rollouts are granted without extraRules"
    extra = [{"apiGroups": ["example.com"], "resources": ["botrunners"], "verbs": ["get", "list", "patch"]}]
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"rbac": {"extraRules": extra}}))
    assert one(render(helm, "--values", str(values)), "ClusterRole")["rules"] == [*manifest_rules(), *extra]
    values.write_text(yaml.safe_dump({"rbac": {"extraRules": [{"apiGroups": ["example.com"], "verbs": ["get"]}]}}))
    done = helm("template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--values", str(values), check=False)
    assert done.returncode != 0 and "resources" in done.stderr, done.stderr


def test_leader_election_can_be_turned_off_for_one_replica_only(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    docs = render(helm, "--set", "leaderElection.enabled=false", "--set", "replicas=1")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--no-leader-election" in operator_container(docs)["args"]
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding", "PodDisruptionBudget")]
    done = helm("template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
                "--set", "leaderElection.enabled=false", check=False)
    assert done.returncode != 0 and "leaderElection.enabled" in done.stderr, done.stderr


def test_rbac_and_serviceaccount_can_be_left_out(helm: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    docs = render(helm, "--set", "rbac.create=false", "--set", "serviceAccount.create=false",
                  "--set", "serviceAccount.name=existing")
    assert sorted(d["kind"] for d in docs) == ["Deployment", "PodDisruptionBudget"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


def test_chart_crds_are_the_crd_files() -> None:
    names = sorted(p.name for p in (REPO / "crds").iterdir())
    assert names == ["botsecret.dev_botsecrets.yaml", "botsecret.dev_botsecretstores.yaml",
                     "botsecret.dev_clusterbotsecretstores.yaml"]
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == names
    for name in names:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"copy crds/{name} to charts/botsecret-operator/crds/ (python3 hack/store_crds.py writes both stores)")


def test_roles_for_people_equal_the_manifests_and_can_be_left_out(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    plain = [d for d in yaml.safe_load_all((REPO / "manifests" / "user-roles.yaml").read_text()) if d]
    rendered = render(helm, people=True)
    assert [d["metadata"]["name"] for d in rendered] == [
        "rel-botsecret-operator-" + d["metadata"]["name"].removeprefix("botsecret-") for d in plain]
    for mine, theirs in zip(rendered, plain, strict=True):
        assert mine["rules"] == theirs["rules"]
        aggregate = {k: v for k, v in theirs["metadata"]["labels"].items() if k.startswith("rbac.")}
        assert aggregate.items() <= mine["metadata"]["labels"].items()
    store_admin = next(d for d in plain if d["metadata"]["name"] == "botsecret-store-admin")
    assert "rbac.authorization.k8s.io/aggregate-to-edit" not in store_admin["metadata"]["labels"], \
        "editors must not manage stores"
    assert render(helm, "--set", "rbac.aggregateToDefaultRoles=false", people=True) == []


def test_uninstall_hook_is_opt_in_and_runs_botsecret_uninstall_as_the_operator(
    helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert not [d for d in render(helm) if d["kind"] == "Job"], "the hook is off by default"
    docs = render(helm, "--set", "uninstallHook.enabled=true", "--set", "watchNamespaces={a,b}")
    job = one(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    assert "hook-succeeded" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["args"][:2] == ["uninstall", "--yes"] and flag_values(container["args"], "-n") == ["a", "b"]
    assert container["image"] == operator_container(docs)["image"]
    assert container["securityContext"] == operator_container(docs)["securityContext"]
    rules = one(docs, "ClusterRole")["rules"]
    assert any("botsecrets" in r["resources"] and "delete" in r["verbs"] for r in rules), "uninstall deletes BotSecrets"


@pytest.mark.parametrize(("setting", "field"), [
    ("logFormat=xml", "logFormat"),
    ("metrics.port=abc", "metrics/port"),
    ("metrics.port=70000", "metrics/port"),
    ("watchNamespaces={Not_A_Namespace}", "watchNamespaces"),
    ("metrics.enabeld=true", "enabeld"),
    ("replicas=0", "replicas"),
    ("leaderElection.leaseDurationSeconds=1", "leaseDurationSeconds"),
])
def test_schema_refuses_invalid_values(
    helm: Callable[..., subprocess.CompletedProcess[str]], setting: str, field: str,
) -> None:
    done = helm("template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--set", setting, check=False)
    assert done.returncode != 0, f"{setting} was accepted"
    assert "schema" in done.stderr, done.stderr
    assert field in done.stderr, done.stderr


def wait_gone(read: Callable[[], Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read()
        except ApiException as e:
            if e.status == 404:
                return
            raise
        time.sleep(0.2)
    pytest.fail(f"{what} still exists {timeout} s after helm uninstall")


def crd_exists(kube: Kube) -> bool:
    try:
        kube.crds.read_custom_resource_definition(CRD_NAME)
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


@pytest.fixture
def release(kube: Kube, cluster: ControlPlane) -> Iterator[tuple[str, str]]:
    """A release name and a namespace for it that helm creates; both are removed afterwards."""
    name, namespace = f"bs-{secrets.token_hex(3)}", f"chart-{secrets.token_hex(4)}"
    yield name, namespace
    # Cleanup after a failure half-way; a no-op when the test uninstalled.
    subprocess.run([str(helm_binary()), "uninstall", name, "--namespace", namespace, "--ignore-not-found",
                    "--kubeconfig", str(cluster.admin_kubeconfig)], capture_output=True, check=False, timeout=60)
    try:
        kube.core.delete_namespace(namespace)
    except ApiException as e:
        if e.status != 404:
            raise


def test_install_and_uninstall_on_the_apiserver(
    helm: Callable[..., subprocess.CompletedProcess[str]], cluster: ControlPlane, kube: Kube,
    namespace: str, release: tuple[str, str], operator: Any, aws: MotoServer,
) -> None:
    name, release_ns = release
    fullname = f"{name}-botsecret-operator"
    kubeconfig = ["--kubeconfig", str(cluster.admin_kubeconfig)]
    skip_crds = ["--skip-crds"] if crd_exists(kube) else []

    done = helm("install", name, str(CHART), "--namespace", release_ns, "--create-namespace", *skip_crds,
                *kubeconfig)
    assert "STATUS: deployed" in done.stdout
    assert "kind: BotSecret" in done.stdout, "NOTES.txt shows how to create a first BotSecret"
    assert crd_exists(kube)

    deployment = kube.apps.read_namespaced_deployment(fullname, release_ns)
    assert deployment.spec.template.spec.service_account_name == fullname
    assert deployment.spec.template.spec.containers[0].args[0] == "run"
    assert kube.core.read_namespaced_service_account(fullname, release_ns).metadata.labels[
        "app.kubernetes.io/instance"] == name
    role = kube.rbac.read_cluster_role(fullname)
    assert kube.api.sanitize_for_serialization(role)["rules"] == manifest_rules()
    lease_role = kube.rbac.read_namespaced_role(f"{fullname}-leader-election", release_ns)
    assert kube.api.sanitize_for_serialization(lease_role)["rules"] == manifest_rules("Role")
    assert deployment.spec.replicas == 2
    assert kube.api.sanitize_for_serialization(
        client.PolicyV1Api(kube.api).read_namespaced_pod_disruption_budget(fullname, release_ns))["spec"][
        "maxUnavailable"] == 1
    binding = kube.rbac.read_cluster_role_binding(fullname)
    assert binding.role_ref.name == fullname
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [("ServiceAccount", fullname, release_ns)]
    status = helm("status", name, "--namespace", release_ns, *kubeconfig).stdout
    assert "STATUS: deployed" in status

    # A Secret the operator (the test's, running beside the release) synced lives on in another namespace.
    value = secret_value("chart")
    aws.client().create_secret(Name=f"{namespace}/k", SecretString=value)
    bs.create(kube, namespace, "bot", {"sources": [bs.aws_source(kube, namespace, aws.endpoint)],
                                       "data": [{"key": "K", "remoteRef": {"name": f"{namespace}/k"}}],
                                       "target": {"name": "bot-credentials"}})
    bs.wait_ready(kube, namespace, "bot", reason="Synced")
    made = kube.core.read_namespaced_secret("bot-credentials", namespace)
    assert made.metadata.labels["botsecret.dev/botsecret"] == "bot", "a Secret the operator made"

    helm("uninstall", name, "--namespace", release_ns, *kubeconfig)
    wait_gone(lambda: kube.apps.read_namespaced_deployment(fullname, release_ns), "the Deployment")
    wait_gone(lambda: kube.core.read_namespaced_service_account(fullname, release_ns), "the ServiceAccount")
    wait_gone(lambda: kube.rbac.read_cluster_role(fullname), "the ClusterRole")
    wait_gone(lambda: kube.rbac.read_cluster_role_binding(fullname), "the ClusterRoleBinding")
    wait_gone(lambda: kube.rbac.read_namespaced_role(f"{fullname}-leader-election", release_ns), "the Role")

    kept = kube.core.read_namespaced_secret("bot-credentials", namespace)
    assert kept.metadata.uid == made.metadata.uid
    assert kept.metadata.deletion_timestamp is None
    assert bs.secret_data(kube, namespace, "bot-credentials") == {"K": value.encode()}
    assert not bs.gone(kube, namespace, "bot"), "without the opt-in hook, helm uninstall keeps the BotSecrets"
    assert crd_exists(kube), "helm never deletes the CRDs of crds/; BotSecrets and their Secrets stay"
