"""pytest plugin: the in-process Secret Manager fakes, one of each per session.

``gcp`` is plaintext and anonymous, as emulators are reached. ``gcp_tls`` is Google as a
service-account key meets it: TLS with a certificate of a CA of its own, and every RPC checked
for a bearer credential made from a live key (see gcp_auth.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .gcp_auth import GoogleAuth
from .gcp_fake import GcpSecretManagerFake
from .pki import CertificateAuthority


@dataclass
class GcpTls:
    fake: GcpSecretManagerFake
    auth: GoogleAuth
    ca_path: Path  # the CA that signed the fake's certificate

    @property
    def endpoint(self) -> str:
        return self.fake.endpoint


@pytest.fixture(scope="session")
def gcp() -> Iterator[GcpSecretManagerFake]:
    fake = GcpSecretManagerFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def gcp_tls(artifacts: Path) -> Iterator[GcpTls]:
    ca = CertificateAuthority(artifacts / "gcp-tls")
    cert, key = ca.issue("secretmanager", cn="secretmanager.googleapis.com", server=True)
    auth = GoogleAuth()
    auth.start()
    fake = GcpSecretManagerFake(tls=(cert.read_bytes(), key.read_bytes()), auth=auth)
    fake.start()
    yield GcpTls(fake, auth, ca.cert_path)
    fake.stop()
    auth.stop()
