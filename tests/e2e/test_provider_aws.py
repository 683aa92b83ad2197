"""AwsProvider against a real moto server: exact bytes, batches, versions, errors, no leaks."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from botsecret.providers.aws import AwsCredentials, AwsProvider
from botsecret.providers.base import AccessDenied, NotFound, RemoteRef, Unavailable
from botsecret.spec import AwsSource
from tests.harness import processes
from tests.harness.aws import REGION, MotoServer
from tests.harness.leaks import secret_value
from tests.harness.provider_checks import assert_no_leak, fetched
from tests.harness.throttling_proxy import ThrottlingProxy

pytestmark = pytest.mark.sync

TEST_CREDENTIALS = AwsCredentials(access_key_id="testing", secret_access_key="testing")


def unique(label: str) -> str:
    return f"e2e/provider/{label}-{secrets.token_hex(4)}"


def provider_for(endpoint: str, credentials: AwsCredentials = TEST_CREDENTIALS,
                 timeout: float = 5.0) -> AwsProvider:
    return AwsProvider(AwsSource(region=REGION, endpoint=endpoint), credentials=credentials, timeout=timeout)


@pytest.fixture
def sm(aws: MotoServer) -> Any:
    return aws.client()


@pytest.fixture
def provider(aws: MotoServer) -> Iterator[AwsProvider]:
    p = provider_for(aws.endpoint)
    yield p
    p.close()


def test_string_value_keeps_exact_bytes(sm: Any, provider: AwsProvider) -> None:
    name, value = unique("string"), secret_value("aws_string") + "\n"
    created = sm.create_secret(Name=name, SecretString=value)

    results = provider.fetch([RemoteRef(name)])

    got = fetched(results[RemoteRef(name)])
    assert got.value.reveal() == value.encode("utf-8")
    assert got.version == created["VersionId"]
    assert_no_leak(results, value)


def test_binary_value_keeps_exact_bytes(sm: Any, provider: AwsProvider) -> None:
    name, marker = unique("binary"), secret_value("aws_binary")
    value = b"\xff\xfe\x00" + marker.encode() + b"\x80\n"
    sm.create_secret(Name=name, SecretBinary=value)

    results = provider.fetch([RemoteRef(name), RemoteRef(name, "AWSCURRENT")])

    assert fetched(results[RemoteRef(name)]).value.reveal() == value
    assert fetched(results[RemoteRef(name, "AWSCURRENT")]).value.reveal() == value
    assert_no_leak(results, marker)


def test_batch_with_one_missing_fails_only_that_one(sm: Any, provider: AwsProvider) -> None:
    stored = {unique(f"batch{i}"): secret_value(f"aws_batch{i}") for i in range(4)}
    for name, value in stored.items():
        sm.create_secret(Name=name, SecretString=value)
    missing = unique("missing")
    refs = [RemoteRef(n) for n in stored] + [RemoteRef(missing)]

    results = provider.fetch(refs)

    assert set(results) == set(refs)
    for name, value in stored.items():
        assert fetched(results[RemoteRef(name)]).value.reveal() == value.encode()
    error = results[RemoteRef(missing)]
    assert isinstance(error, NotFound)
    assert missing in error.message
    assert_no_leak(results, *stored.values())


def test_more_refs_than_one_batch_holds(sm: Any, provider: AwsProvider) -> None:
    stored = {unique(f"many{i}"): secret_value(f"aws_many{i}") for i in range(23)}
    for name, value in stored.items():
        sm.create_secret(Name=name, SecretString=value)

    results = provider.fetch([RemoteRef(n) for n in stored])

    assert {ref.name: fetched(r).value.reveal().decode() for ref, r in results.items()} == stored


def test_ref_by_arn(sm: Any, provider: AwsProvider) -> None:
    name, value = unique("arn"), secret_value("aws_arn")
    arn = sm.create_secret(Name=name, SecretString=value)["ARN"]

    results = provider.fetch([RemoteRef(arn), RemoteRef(arn, "AWSCURRENT")])

    assert fetched(results[RemoteRef(arn)]).value.reveal() == value.encode()
    assert fetched(results[RemoteRef(arn, "AWSCURRENT")]).value.reveal() == value.encode()


def test_pinned_versions_after_rotation(sm: Any, provider: AwsProvider) -> None:
    name, old, new = unique("rotated"), secret_value("aws_old"), secret_value("aws_new")
    old_id = sm.create_secret(Name=name, SecretString=old)["VersionId"]
    new_id = sm.put_secret_value(SecretId=name, SecretString=new)["VersionId"]
    refs = {
        RemoteRef(name): (new, new_id),
        RemoteRef(name, "AWSCURRENT"): (new, new_id),
        RemoteRef(name, "AWSPREVIOUS"): (old, old_id),
        RemoteRef(name, old_id): (old, old_id),
        RemoteRef(name, new_id): (new, new_id),
    }

    results = provider.fetch(list(refs))

    for ref, (value, version) in refs.items():
        got = fetched(results[ref])
        assert (got.value.reveal(), got.version) == (value.encode(), version), ref
    assert_no_leak(results, old, new)


def test_pinned_current_follows_a_stage_move(sm: Any, provider: AwsProvider) -> None:
    name, old, new = unique("staged"), secret_value("aws_staged_old"), secret_value("aws_staged_new")
    old_id = sm.create_secret(Name=name, SecretString=old)["VersionId"]
    new_id = sm.put_secret_value(SecretId=name, SecretString=new)["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                   RemoveFromVersionId=new_id, MoveToVersionId=old_id)

    got = fetched(provider.fetch([RemoteRef(name, "AWSCURRENT")])[RemoteRef(name, "AWSCURRENT")])

    assert (got.value.reveal(), got.version) == (old.encode(), old_id)


def test_unpinned_follows_a_stage_move(sm: Any, provider: AwsProvider) -> None:
    """Real AWS answers an unqualified read with whatever version holds AWSCURRENT; the harness's
    moto is patched to do the same (tests/harness/aws.py)."""
    name, old, new = unique("moved"), secret_value("aws_moved_old"), secret_value("aws_moved_new")
    old_id = sm.create_secret(Name=name, SecretString=old)["VersionId"]
    new_id = sm.put_secret_value(SecretId=name, SecretString=new)["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                   RemoveFromVersionId=new_id, MoveToVersionId=old_id)

    unqualified = sm.get_secret_value(SecretId=name)
    assert (unqualified["SecretString"], unqualified["VersionId"]) == (old, old_id)
    # A lone reference and one in a batch of several both go through BatchGetSecretValue.
    other = unique("moved-other")
    sm.create_secret(Name=other, SecretString=secret_value("aws_moved_other"))
    for refs in ([RemoteRef(name)], [RemoteRef(name), RemoteRef(other)]):
        got = fetched(provider.fetch(refs)[RemoteRef(name)])
        assert (got.value.reveal(), got.version) == (old.encode(), old_id), refs

    # And forward again, as a rotation's last step does.
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                   RemoveFromVersionId=old_id, MoveToVersionId=new_id)
    got = fetched(provider.fetch([RemoteRef(name)])[RemoteRef(name)])
    assert (got.value.reveal(), got.version) == (new.encode(), new_id)
    previous = fetched(provider.fetch([RemoteRef(name, "AWSPREVIOUS")])[RemoteRef(name, "AWSPREVIOUS")])
    assert previous.version == old_id


def test_missing_versions_are_not_found(sm: Any, provider: AwsProvider) -> None:
    name, value = unique("versions"), secret_value("aws_versions")
    sm.create_secret(Name=name, SecretString=value)
    refs = [
        RemoteRef(name, "AWSPREVIOUS"),  # never rotated
        RemoteRef(name, "NO-SUCH-STAGE"),
        RemoteRef(name, "00000000-0000-4000-8000-000000000000"),
        RemoteRef(unique("absent"), "AWSCURRENT"),
    ]

    results = provider.fetch(refs)

    for ref in refs:
        assert isinstance(results[ref], NotFound), (ref, results[ref])
        assert ref.name in results[ref].message  # type: ignore[union-attr]
    assert_no_leak(results, value)


def test_secret_scheduled_for_deletion_is_not_found(sm: Any, provider: AwsProvider) -> None:
    name, value = unique("deleted"), secret_value("aws_deleted")
    sm.create_secret(Name=name, SecretString=value)
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    refs = [RemoteRef(name), RemoteRef(name, "AWSCURRENT")]

    results = provider.fetch(refs)

    for ref in refs:
        assert isinstance(results[ref], NotFound), (ref, results[ref])
    assert_no_leak(results, value)


def test_unreachable_endpoint_is_unavailable_quickly() -> None:
    endpoint = f"http://127.0.0.1:{processes.free_port()}"  # nothing listens there
    p = provider_for(endpoint, timeout=2.0)
    try:
        for refs in ([RemoteRef("a"), RemoteRef("b")], [RemoteRef("a", "AWSPREVIOUS")]):
            start = time.monotonic()
            with pytest.raises(Unavailable) as raised:
                p.fetch(refs)
            assert time.monotonic() - start < 10
            assert raised.value.reason == "ProviderError"
    finally:
        p.close()


def test_credentials_repr_hides_secrets(aws: MotoServer) -> None:
    secret_key, token = secret_value("aws_secret_key"), secret_value("aws_session_token")
    creds = AwsCredentials(access_key_id="AKIDEXAMPLE", secret_access_key=secret_key, session_token=token)
    p = provider_for(aws.endpoint, credentials=creds)
    try:
        for text in (repr(creds), str(creds), repr(p), str(p)):
            assert secret_key not in text
            assert token not in text
        assert "AKIDEXAMPLE" in repr(creds)
    finally:
        p.close()


@pytest.fixture(scope="module")
def iam_moto(artifacts: Path) -> Iterator[MotoServer]:
    """A moto of its own that enforces IAM; the session server must stay permissive."""
    server = MotoServer(port=processes.free_port(), log=artifacts / "moto-iam.log")
    server.start()
    yield server
    server.stop()


def _user_with_policy(iam: Any, name: str, actions: list[str]) -> AwsCredentials:
    iam.create_user(UserName=name)
    if actions:
        document = json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        })
        iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return AwsCredentials(access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])


def test_access_denied(iam_moto: MotoServer) -> None:
    iam, sm = iam_moto.client("iam"), iam_moto.client()
    name, value = unique("guarded"), secret_value("aws_guarded")
    sm.create_secret(Name=name, SecretString=value)
    single_only = _user_with_policy(iam, "single-only", ["secretsmanager:GetSecretValue"])
    nothing = _user_with_policy(iam, "nothing", [])
    # From here on every request must carry credentials IAM knows.
    request = urllib.request.Request(f"{iam_moto.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    # Allowed GetSecretValue but not BatchGetSecretValue: the provider falls back to single reads.
    with_single = provider_for(iam_moto.endpoint, credentials=single_only)
    denied = provider_for(iam_moto.endpoint, credentials=nothing)
    stranger = provider_for(iam_moto.endpoint, credentials=AwsCredentials("AKIAUNKNOWN0000000", "nope"))
    try:
        assert fetched(with_single.fetch([RemoteRef(name)])[RemoteRef(name)]).value.reveal() == value.encode()

        results = denied.fetch([RemoteRef(name), RemoteRef(name, "AWSPREVIOUS")])
        for result in results.values():
            assert isinstance(result, AccessDenied), result
            assert name in result.message
        assert_no_leak(results, value)

        # Real AWS names a refused identity (the batch raises); moto's XML error body leaves only
        # the HTTP status, so each reference is answered on its own. Both are AccessDenied.
        try:
            answers: object = stranger.fetch([RemoteRef(name)])
            assert isinstance(answers, dict)
            assert all(isinstance(r, AccessDenied) for r in answers.values()), answers
        except AccessDenied as refused:
            answers = refused
        assert_no_leak(answers, value)
    finally:
        for p in (with_single, denied, stranger):
            p.close()


def test_throttling_is_left_to_the_operator_and_retry_after_is_kept(aws: MotoServer) -> None:
    # The SDK must not retry a throttled call on its own: every retry is the operator's, with its backoff.
    proxy = ThrottlingProxy(aws.endpoint)
    proxy.start()
    p = provider_for(proxy.endpoint)
    try:
        for status, refs in ((429, [RemoteRef("a"), RemoteRef("b")]), (400, [RemoteRef("a", "AWSPREVIOUS")])):
            proxy.throttling, proxy.status, proxy.retry_after = True, status, "17"
            since = time.monotonic()
            with pytest.raises(Unavailable) as raised:
                p.fetch(refs)
            assert len(proxy.arrivals(since=since)) == 1, "the SDK retried a throttled call"
            assert "throttled" in raised.value.message
            assert raised.value.retry_after == 17.0
            assert type(raised.value).__name__ == "Throttled"
    finally:
        p.close()
        proxy.stop()
