"""Rotation benchmark: how fast a rotated key reaches the Secret and restarts the bot, and how many
ReplicaSets the restarts leave behind.

Run it with ``make bench`` (or ``.venv/bin/python -m bench.rotation`` from the repository root). It
starts the test world of ``tests/harness`` (control plane, moto, the operator under its own
ServiceAccount) in a temporary directory, drives sequential rotations, prints figures, and stops
everything it started. It never asserts on time: speed targets are read off its output.

Scenario: one namespace; a Deployment with 0 replicas (rollouts complete without a kubelet) that
reads the whole Secret through envFrom; a BotSecret of 5 keys, each its own AWS secret in moto, with
the Deployment as its one rollout target and a debounce of 0s. Each rotation puts a fresh value into
one key, then sets the force-sync annotation. The time from that PATCH returning to the watch event
that shows the Deployment's new ``restarted-for.botsecret.dev/<name>`` template annotation is the headline
figure; the watch on the Secret gives the time to the new data.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from bench.workdir import in_workdir
from tests.harness import botsecrets as bs
from tests.harness import processes
from tests.harness import workloads as wl
from tests.harness.aws import MotoServer
from tests.harness.cluster import ControlPlane, binaries
from tests.harness.cluster_fixtures import Kube, kube_for
from tests.harness.operator_process import OperatorProcess, deploy
from tests.harness.waiting import wait_for

NAME = "bench-bot"  # the BotSecret, and by default its Secret
APP = "bench-app"  # the Deployment
KEYS = ("K1", "K2", "K3", "K4", "K5")
# Tried in order; the first the CRD accepts is used (and printed). "0s" passes the CRD's pattern.
DEBOUNCE_CANDIDATES = ("0s", "1ms", "100ms", "1s")
STEP_TIMEOUT = 60.0
POLL = 0.05
WATCH_WINDOW = 300  # seconds the server keeps one watch open before the watcher resumes it


class ObjectWatch:
    """A watch on one named object that records each event's arrival (monotonic clock) and a value
    extracted from the object. It resumes from the last resourceVersion when the server ends it."""

    def __init__(self, kubeconfig: Path, lister: Callable[[Kube], Callable[..., Any]], namespace: str, name: str,
                 extract: Callable[[Any], Any]) -> None:
        self.kube = kube_for(kubeconfig)  # its own client: a watch holds a connection for its lifetime
        self._list_fn, self._namespace, self._name = lister(self.kube), namespace, name
        self._extract = extract
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self.events: list[tuple[float, str, Any]] = []
        self.resumes = 0
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)

    def start(self, timeout: float = 30) -> None:
        """Start, and return once the initial ADDED event proves the watch is established."""
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self.events), timeout):
                raise TimeoutError(f"watch on {self._name} not established: {self.errors}")

    def _run(self) -> None:
        resource_version: str | None = None
        while not self._stop.is_set():
            self._watch = watch.Watch()
            kwargs: dict[str, Any] = {"field_selector": f"metadata.name={self._name}",
                                      "timeout_seconds": WATCH_WINDOW}
            if resource_version:
                kwargs["resource_version"] = resource_version
            try:
                for event in self._watch.stream(self._list_fn, self._namespace, **kwargs):
                    arrived = time.monotonic()
                    obj = event["object"]
                    resource_version = obj.metadata.resource_version
                    with self._cond:
                        self.events.append((arrived, event["type"], self._extract(obj)))
                        self._cond.notify_all()
                    if self._stop.is_set():
                        break
            except ApiException as e:
                if e.status == 410:
                    resource_version = None  # too old: list again; the ADDED event carries the state
                elif not self._stop.is_set():
                    self.errors.append(f"HTTP {e.status}: {e.reason}")
                    time.sleep(0.2)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                if not self._stop.is_set():
                    self.errors.append(repr(e))
                    time.sleep(0.2)
            if not self._stop.is_set():
                self.resumes += 1

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def latest(self) -> Any:
        with self._cond:
            return self.events[-1][2]

    def wait(self, since: int, predicate: Callable[[Any], bool], timeout: float, what: str) -> tuple[float, Any]:
        """The arrival time and value of the first event at index ``since`` or later that satisfies
        ``predicate``."""
        found: list[tuple[float, Any]] = []

        def match() -> bool:
            for arrived, _, value in self.events[since:]:
                if predicate(value):
                    found.append((arrived, value))
                    return True
            return False

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                raise TimeoutError(f"{what} not seen within {timeout} s (watch errors: {self.errors})")
        return found[0]

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def join(self, timeout: float = 5) -> None:
        self._thread.join(timeout)


def restart_annotation(deployment: Any) -> str | None:
    annotations = deployment.spec.template.metadata.annotations or {}
    value: str | None = annotations.get(wl.restart_annotation(NAME))
    return value


def secret_data(secret: Any) -> dict[str, str]:
    return dict(secret.data or {})


def condition(body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def rollout_settled(kube: Kube, namespace: str, handled: str | None, annotation: str | None) -> bool:
    """The operator has handled the force-sync ``handled``, the Deployment entry records
    ``annotation`` as Complete, and RolloutComplete is True."""
    body = bs.get(kube, namespace, NAME)
    status = body.get("status") or {}
    if handled is not None and status.get("forceSyncHandled") != handled:
        return False
    complete = condition(body, "RolloutComplete")
    if not complete or complete.get("status") != "True":
        return False
    if annotation is None:
        return True
    entries = [e for e in status.get("rollout") or [] if e.get("kind") == "Deployment" and e.get("name") == APP]
    return bool(entries) and entries[0].get("dataHMAC") == annotation and entries[0].get("phase") == "Complete"


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def proc_status(pid: int, field: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def kib_to_mib(text: str | None) -> str:
    if not text or not text.endswith("kB"):
        return "unavailable"
    return f"{int(text.split()[0]) / 1024:.1f} MiB"


def create_botsecret(kube: Kube, namespace: str, moto: MotoServer, remote: Callable[[str], str]) -> str:
    """Create the BotSecret with the smallest debounce the CRD accepts; answer that debounce."""
    source = bs.aws_source(kube, namespace, moto.endpoint)
    rejected: list[str] = []
    for debounce in DEBOUNCE_CANDIDATES:
        spec = {
            "sources": [source],
            "data": [{"key": k, "remoteRef": {"name": remote(k)}} for k in KEYS],
            "rollout": {"targets": [{"kind": "Deployment", "name": APP}], "debounce": debounce},
        }
        try:
            bs.create(kube, namespace, NAME, spec)
        except ApiException as e:
            if e.status != 422:
                raise
            rejected.append(debounce)
            continue
        if rejected:
            print(f"note: the CRD rejected debounce {', '.join(repr(d) for d in rejected)}; using {debounce!r}")
        return debounce
    raise RuntimeError(f"the CRD rejected every debounce tried: {DEBOUNCE_CANDIDATES}")


def run(workdir: Path, rotations: int) -> int:
    plane = ControlPlane(workdir=workdir / "cluster", bin_dir=binaries())
    moto = MotoServer(port=processes.free_port(), log=workdir / "moto.log")
    operator: OperatorProcess | None = None
    watches: list[ObjectWatch] = []
    clients: list[Kube] = []
    try:
        plane.start()
        moto.start()
        kube = kube_for(plane.admin_kubeconfig)
        clients.append(kube)
        operator = deploy(kube, plane, workdir)
        assert operator.proc is not None
        operator_pid = operator.proc.pid

        namespace = f"bench-{secrets.token_hex(4)}"
        kube.core.create_namespace({"metadata": {"name": namespace}})
        sm = moto.client()

        def remote(key: str) -> str:
            return f"{namespace}/{NAME}/{key}"

        for key in KEYS:
            sm.create_secret(Name=remote(key), SecretString=f"bench-{key}-{secrets.token_hex(16)}")

        wl.deployment(kube, namespace, APP, replicas=0, **wl.uses_all(NAME))
        # The default revisionHistoryLimit (10) would let the controller delete old ReplicaSets, and the
        # count below is meant to show every ReplicaSet the rotations made.
        kube.apps.patch_namespaced_deployment(APP, namespace, {"spec": {"revisionHistoryLimit": rotations + 10}})
        wait_for(lambda: wl.replicasets(kube, namespace, APP) == 1, timeout=30, what="the first ReplicaSet")

        debounce = create_botsecret(kube, namespace, moto, remote)
        bs.wait_ready(kube, namespace, NAME, timeout=60)
        wait_for(lambda: rollout_settled(kube, namespace, None, None), timeout=60, interval=POLL,
                 what="RolloutComplete after the first sync")
        time.sleep(2.0)  # a restart the first sync must not cause would show by now
        replicasets_before = wl.replicasets(kube, namespace, APP)

        deployment_watch = ObjectWatch(plane.admin_kubeconfig, lambda k: k.apps.list_namespaced_deployment,
                                       namespace, APP, restart_annotation)
        secret_watch = ObjectWatch(plane.admin_kubeconfig, lambda k: k.core.list_namespaced_secret,
                                   namespace, NAME, secret_data)
        watches += [deployment_watch, secret_watch]
        clients += [w.kube for w in watches]
        for w in watches:
            w.start()

        print(f"botsecret rotation benchmark: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
              f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}")
        print(f"scenario: 1 namespace, Deployment with 0 replicas reading the whole Secret via envFrom, "
              f"BotSecret of {len(KEYS)} keys (one AWS secret each, moto), rollout debounce {debounce!r}")
        print(f"first sync settled; ReplicaSets before the rotations: {replicasets_before}; "
              f"template annotation: {deployment_watch.latest()!r}")

        patch_ms: list[float] = []
        secret_ms: list[float] = []
        complete_ms: list[float] = []
        for i in range(rotations):
            key = KEYS[i % len(KEYS)]
            old_annotation = deployment_watch.latest()
            old_data = secret_watch.latest()
            d_mark, s_mark = deployment_watch.mark(), secret_watch.mark()
            sm.put_secret_value(SecretId=remote(key), SecretString=f"bench-{key}-{secrets.token_hex(16)}")

            handled = bs.force_sync(kube, namespace, NAME)
            t0 = time.monotonic()

            patched_at, annotation = deployment_watch.wait(
                d_mark, lambda v, old=old_annotation: v != old, STEP_TIMEOUT, f"rotation {i + 1}: template patch")
            updated_at, _ = secret_watch.wait(
                s_mark, lambda v, old=old_data: v != old, STEP_TIMEOUT, f"rotation {i + 1}: Secret update")
            wait_for(lambda h=handled, a=annotation: rollout_settled(kube, namespace, h, a), timeout=STEP_TIMEOUT,
                     interval=POLL, what=f"rotation {i + 1}: RolloutComplete")
            completed_at = time.monotonic()

            patch_ms.append((patched_at - t0) * 1000)
            secret_ms.append((updated_at - t0) * 1000)
            complete_ms.append((completed_at - t0) * 1000)
            print(f"  rotation {i + 1:2d} ({key}): Secret {secret_ms[-1]:7.1f} ms, "
                  f"template patch {patch_ms[-1]:7.1f} ms, RolloutComplete {complete_ms[-1]:7.1f} ms")

        time.sleep(1.0)  # a second, unwanted restart would show as one more ReplicaSet
        replicasets_after = wl.replicasets(kube, namespace, APP)
        revision = (kube.apps.read_namespaced_deployment(APP, namespace).metadata.annotations or {}).get(
            "deployment.kubernetes.io/revision")
        peak_rss = proc_status(operator_pid, "VmHWM")
        rss_now = proc_status(operator_pid, "VmRSS")

        print()
        print(f"rotations: {rotations}, sequential, keys {KEYS[0]}..{KEYS[-1]} in turn, each then force-synced")
        print(f"force-sync -> Deployment template patched (watch), ms: median {statistics.median(patch_ms):.1f}, "
              f"p90 {nearest_rank(patch_ms, 0.9):.1f}, min {min(patch_ms):.1f}, max {max(patch_ms):.1f}")
        print(f"force-sync -> Secret data updated (watch), ms: median {statistics.median(secret_ms):.1f}")
        print(f"force-sync -> RolloutComplete=True (polled every {POLL * 1000:.0f} ms), ms: "
              f"median {statistics.median(complete_ms):.1f}")
        print(f"new ReplicaSets: {replicasets_after - replicasets_before} for {rotations} rotations "
              f"(ReplicaSets now {replicasets_after}, Deployment revision {revision})")
        print(f"operator peak RSS (VmHWM): {kib_to_mib(peak_rss)}; RSS at the end: {kib_to_mib(rss_now)}")
        resumes = sum(w.resumes for w in watches)
        if resumes:
            print(f"note: the watches were resumed {resumes} time(s); an event in such a gap arrives late")
        print("p90 is nearest-rank; figures are wall-clock on this machine, not targets")
        return 0
    finally:
        for w in watches:
            w.stop()
        if operator is not None:
            operator.stop()
        moto.stop()
        plane.stop()
        for w in watches:
            w.join()
        for kube_client in clients:
            kube_client.api.close()
        # A process whose harness object never came back (say, an operator that failed its health check).
        for proc in processes.STARTED:
            if proc.poll() is None:
                processes.stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rotation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rotations", type=int, default=20, help="sequential rotations to time (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    args = parser.parse_args()

    return in_workdir("botsecret-bench-", args.keep, lambda workdir: run(workdir, args.rotations) == 0)


if __name__ == "__main__":
    sys.exit(main())
