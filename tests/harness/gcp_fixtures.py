"""pytest plugin: the in-process Secret Manager fake, one per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .gcp_fake import GcpSecretManagerFake


@pytest.fixture(scope="session")
def gcp() -> Iterator[GcpSecretManagerFake]:
    fake = GcpSecretManagerFake()
    fake.start()
    yield fake
    fake.stop()
