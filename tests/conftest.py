"""Session-wide test world: a real control plane, real provider servers, all on loopback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import processes, shards
from tests.harness.aws import MotoServer
from tests.harness.vault import OpenBao

ARTIFACTS = Path(os.environ.get("BOTSECRET_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))

pytest_plugins = ["tests.harness.cluster_fixtures", "tests.harness.gcp_fixtures", "tests.harness.chaos",
                  "tests.harness.node_fixtures"]


@pytest.hookimpl(trylast=True)  # after -m and -k: a shard splits what is left of the run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = shards.own_share(items)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    # The leak scan reads what every other test left behind, so it runs last; the check that a
    # failed node start leaves the host as it was runs first, before the session's node holds it.
    items.sort(key=lambda item: (item.get_closest_marker("leaks") is not None,
                                 item.get_closest_marker("hostcheck") is None))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    # Logs of an earlier run would confuse the leak scan; start from nothing.
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def aws(artifacts: Path) -> Iterator[MotoServer]:
    server = MotoServer(port=processes.free_port(), log=artifacts / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vault(artifacts: Path) -> Iterator[OpenBao]:
    server = OpenBao(port=processes.free_port(span=2), log=artifacts / "openbao.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vault_tls(artifacts: Path) -> Iterator[OpenBao]:
    """A second OpenBao dev server, on HTTPS with a CA of its own."""
    server = OpenBao(port=processes.free_port(span=2), log=artifacts / "openbao-tls.log", tls=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_run() -> Iterator[None]:
    yield
    alive = processes.survivors()
    for pid in alive:
        print(f"harness: process {pid} outlived its fixture")
    assert not alive, f"processes outlived the test run: {alive}"
