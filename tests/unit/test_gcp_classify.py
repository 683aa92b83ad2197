"""botsecret.providers.gcp._classify over google.api_core errors built by hand (the fake server
sends no error details)."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from botsecret.providers.base import NotFound, Throttled, TlsError, Unavailable
from botsecret.providers.gcp import _classify

SHOWN = "gcp secret 'x' version latest"


def test_quota_exceeded_is_throttled_and_keeps_googles_retry_delay() -> None:
    delay = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=30, nanos=500_000_000))
    error = _classify(gexc.ResourceExhausted("Quota exceeded for quota metric 'Access requests'",
                                             details=[error_details_pb2.QuotaFailure(), delay]), SHOWN)
    assert isinstance(error, Throttled)
    assert error.retry_after == 30.5
    assert "Quota exceeded" not in error.message  # Google's own text is never repeated


def test_quota_exceeded_without_retry_info_has_no_retry_after() -> None:
    error = _classify(gexc.ResourceExhausted("quota"), SHOWN)
    assert isinstance(error, Throttled) and error.retry_after is None


def test_disabled_and_destroyed_versions_name_their_state() -> None:
    disabled = _classify(gexc.FailedPrecondition("Secret Version [...] is in DISABLED state."), SHOWN)
    destroyed = _classify(gexc.FailedPrecondition("Secret Version [...] is in DESTROYED state."), SHOWN)
    assert isinstance(disabled, NotFound) and disabled.message == f"{SHOWN} is disabled"
    assert isinstance(destroyed, NotFound) and destroyed.message == f"{SHOWN} is destroyed"


def test_an_untrusted_certificate_is_a_tls_error_not_an_outage() -> None:
    # What grpc answers when the server's certificate does not verify (seen against the TLS fake).
    message = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:33425: Ssl handshake failed "
               "(TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
               "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate: OK")
    error = _classify(gexc.ServiceUnavailable(message), SHOWN)
    assert isinstance(error, TlsError)
    assert error.message == f"{SHOWN}: TLS handshake failed (server certificate not trusted, or the server does not speak TLS)"
    assert isinstance(_classify(gexc.ServiceUnavailable("failed to connect to all addresses"), SHOWN), Unavailable)
    assert not isinstance(_classify(gexc.ServiceUnavailable("failed to connect to all addresses"), SHOWN), TlsError)
