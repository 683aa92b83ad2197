"""Changes a test makes to the host, recorded and undone newest first, and proof they were.

The node (tests/harness/node.py) needs root and changes the machine: a bridge, mounts, cgroups,
sysctls the kubelet tunes, files under /run and /var, maybe iptables rules. Each change is
recorded in a :class:`Ledger` with the step that undoes it, as soon as it is made; ``undo``
runs every step, newest first, whatever fails, and raises at the end if any did.
:class:`HostSnapshot` is what the host looked like (iptables rules, mounts, links, cgroups,
sysctls, watched directories); ``differences`` lists what did not come back, so tear-down fails
loudly on a leftover instead of passing it to the next run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Sysctls the kubelet sets at start (its "kernel tunables") and the CNI bridge plugin may set.
WATCHED_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
                   "net/bridge/bridge-nf-call-iptables")
# Places containerd, runc, CNI and the kubelet write to whatever their configuration says (shim
# sockets, network namespaces, the kubelet's container log links, CNI's cache); the harness points
# everything else at the run's scratch folder.
WATCHED_DIRS = ("/run/netns", "/run/containerd", "/run/runc", "/var/lib/cni", "/var/log/containers",
                "/var/log/pods", "/var/lib/kubelet", "/var/lib/containerd", "/opt/containerd", "/etc/cni",
                "/run/kubernetes")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class HostNotRestored(RuntimeError):
    """An undo step failed, or the host differs from what it was before the node started."""


@dataclass
class Ledger:
    """Undo steps of the host changes made so far, run newest first."""

    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def record(self, what: str, undo: Callable[[], object]) -> None:
        self.steps.append((what, undo))

    def undo(self) -> None:
        failures = []
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - every step runs; the failures are raised together below
                failures.append(f"undo {what}: {type(e).__name__}: {e}")
        if failures:
            raise HostNotRestored("; ".join(failures))


def run(*argv: str) -> str:
    """Run a command; its output, or an error that quotes what it said."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _iptables(family: str) -> dict[str, set[str]]:
    """Rules and chains per table, without counters and comments."""
    tool = f"{family}-save"
    if shutil.which(tool) is None:
        return {}
    tables: dict[str, set[str]] = {}
    table = ""
    for line in run(tool).splitlines():
        if line.startswith("*"):
            table = line[1:]
            tables[table] = set()
        elif line.startswith((":", "-A")):
            tables[table].add(line.rsplit(" [", 1)[0] if line.startswith(":") else line)
    return {t: rules for t, rules in tables.items() if rules}


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        points.append(point.encode().decode("unicode_escape"))
    return points


def _links() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link", "show").splitlines()}


def _cgroup_hierarchies() -> list[Path]:
    if (CGROUP_ROOT / "cgroup.procs").exists():
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir() if not p.is_symlink() and (p / "cgroup.procs").exists())


def _cgroups() -> set[str]:
    return {str(child) for h in _cgroup_hierarchies() for child in h.iterdir() if child.is_dir()}


def _sysctls() -> dict[str, str]:
    values = {}
    for name in WATCHED_SYSCTLS:
        path = Path("/proc/sys") / name
        if path.exists():
            values[name] = path.read_text().strip()
    return values


def _dirs() -> dict[str, frozenset[str] | None]:
    return {d: frozenset(os.listdir(d)) if os.path.isdir(d) else None for d in WATCHED_DIRS}


@dataclass(frozen=True)
class HostSnapshot:
    iptables: dict[str, dict[str, set[str]]]
    mounts: list[str]
    links: set[str]
    cgroups: set[str]
    sysctls: dict[str, str]
    dirs: dict[str, frozenset[str] | None]

    @classmethod
    def take(cls) -> HostSnapshot:
        return cls(iptables={f: _iptables(f) for f in ("iptables", "ip6tables")}, mounts=_mount_points(),
                   links=_links(), cgroups=_cgroups(), sysctls=_sysctls(), dirs=_dirs())

    def differences(self, now: HostSnapshot | None = None) -> list[str]:
        """What differs between this snapshot and the host now, one line each."""
        now = now or HostSnapshot.take()
        found = []
        for family, tables in now.iptables.items():
            for table in sorted(set(tables) | set(self.iptables[family])):
                added = tables.get(table, set()) - self.iptables[family].get(table, set())
                removed = self.iptables[family].get(table, set()) - tables.get(table, set())
                found += [f"{family} {table}: added {r!r}" for r in sorted(added)]
                found += [f"{family} {table}: removed {r!r}" for r in sorted(removed)]
        extra = collections.Counter(now.mounts) - collections.Counter(self.mounts)
        found += [f"mount left: {m}" for m in sorted(extra)]
        found += [f"link left: {name}" for name in sorted(now.links - self.links)]
        found += [f"cgroup left: {c}" for c in sorted(now.cgroups - self.cgroups)]
        found += [f"sysctl {k}: {self.sysctls.get(k)} -> {v}" for k, v in sorted(now.sysctls.items())
                  if self.sysctls.get(k) != v]
        for d, entries in now.dirs.items():
            before = self.dirs.get(d)
            if before is None and entries is not None:
                found.append(f"directory left: {d}")
            elif before is not None and entries is None:
                found.append(f"directory removed: {d}")
            elif before is not None and entries is not None:
                found += [f"file left: {d}/{name}" for name in sorted(entries - before)]
        return found

    # Undo steps that bring one aspect back to this snapshot.

    def restore_iptables(self) -> None:
        for family, tables in HostSnapshot.take().iptables.items():
            for table, rules in tables.items():
                before = self.iptables[family].get(table, set())
                for rule in sorted(rules - before):
                    if rule.startswith("-A "):
                        run(family, "-t", table, "-D", *shlex.split(rule)[1:])
                new_chains = [r.split()[0][1:] for r in rules - before if r.startswith(":")]
                for chain in new_chains:
                    run(family, "-t", table, "-F", chain)
                for chain in new_chains:
                    run(family, "-t", table, "-X", chain)

    def unmount_new(self) -> None:
        extra = collections.Counter(_mount_points()) - collections.Counter(self.mounts)
        # Deepest first: a mount under another must go before it.
        for point in sorted(extra.elements(), key=len, reverse=True):
            if subprocess.run(["umount", point], stderr=subprocess.DEVNULL).returncode != 0:
                run("umount", "--lazy", point)

    def remove_new_files(self) -> None:
        for d, entries in _dirs().items():
            before = self.dirs.get(d)
            if entries is None:
                continue
            if before is None:
                shutil.rmtree(d)
                continue
            for name in entries - before:
                path = Path(d) / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def remove_new_links(self) -> None:
        for name in _links() - self.links:
            run("ip", "link", "delete", name)

    def remove_new_cgroups(self, timeout: float = 10) -> None:
        """Kill what still runs in cgroups made since (containers whose shim is gone), then
        remove them, deepest first."""
        for top in sorted(_cgroups() - self.cgroups):
            groups = sorted((Path(p) for p, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
            for group in groups:
                deadline = time.monotonic() + timeout
                while pids := (group / "cgroup.procs").read_text().split():
                    for pid in pids:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                    if time.monotonic() > deadline:
                        raise HostNotRestored(f"cgroup {group} still has processes {pids}")
                    time.sleep(0.2)
                group.rmdir()

    def restore_sysctls(self) -> None:
        for name, value in _sysctls().items():
            if name in self.sysctls and self.sysctls[name] != value:
                (Path("/proc/sys") / name).write_text(self.sysctls[name])
