"""AWS Secrets Manager behind the :class:`~botsecret.providers.base.Provider` interface.

Unpinned references are read in batches (``BatchGetSecretValue``, 20 ids a call); pinned ones
one by one (``GetSecretValue``), because the batch call only reads the current version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError, SSLError

from .. import metrics
from ..remote import FindQuery
from ..spec import AwsSource
from ..values import SecretValue
from .base import AccessDenied, Fetched, NotFound, ProviderError, RemoteRef, Throttled, TlsError, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["AwsCredentials", "AwsProvider", "WebIdentity", "known_region"]

BATCH_SIZE = 20  # the most ids BatchGetSecretValue takes in one SecretIdList
LIST_PAGE_SIZE = 100  # the most ListSecrets answers in one page
# What ListSecrets accepts in a filter value; a tag value outside it is checked here only.
_FILTER_VALUE = re.compile(r"^[a-zA-Z0-9 :_@/+=.-]{1,512}$")
CURRENT = "AWSCURRENT"
THROTTLE_RETRY_AFTER = 5.0

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Error codes are shown in messages; anything not shaped like one is not repeated.
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,63}$")
# Secrets Manager's own codes, plus the IAM/STS spellings some endpoints (moto) answer with.
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})
_IDENTITY_REFUSED = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
    "InvalidClientTokenId", "SignatureDoesNotMatch", "AuthFailure", "ExpiredToken",
    # STS AssumeRoleWithWebIdentity refusing the ServiceAccount token.
    "InvalidIdentityToken", "IDPRejectedClaim", "IDPCommunicationError",
})
_THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})


@dataclass(frozen=True)
class AwsCredentials:
    """Static credentials, e.g. read from the Secret a source's ``credentialsSecretRef`` names."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WebIdentity:
    """Credentials from STS AssumeRoleWithWebIdentity, renewed before they expire (the IRSA
    pattern). ``token`` mints a fresh ServiceAccount token; it is called only to renew."""

    role_arn: str
    session_name: str
    token: Callable[[], str] = field(repr=False)
    duration_seconds: int = 3600


class AwsProvider:
    """One Secrets Manager endpoint in one region, bound to one identity."""

    def __init__(self, source: AwsSource, *, credentials: AwsCredentials | WebIdentity | None = None,
                 timeout: float = 10.0) -> None:
        self._source = source
        self._timeout = timeout
        self._session = _make_session(source, credentials, timeout)
        self._client: SecretsManagerClient = self._session.client(
            "secretsmanager", endpoint_url=source.endpoint, config=_config(timeout))

    def __repr__(self) -> str:
        return f"AwsProvider(region={self._source.region!r}, endpoint={self._source.endpoint!r})"

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        unique = list(dict.fromkeys(refs))
        results: dict[RemoteRef, Fetched | ProviderError] = {}
        unpinned = [ref for ref in unique if ref.version is None]
        for chunk in _chunks(unpinned, BATCH_SIZE):
            results.update(self._fetch_batch(chunk))
        for ref in unique:
            if ref.version is not None:
                results[ref] = self._fetch_one(ref)
        return results

    def close(self) -> None:
        self._client.close()

    def list_matching(self, query: FindQuery) -> list[str]:
        """Names of the secrets that match ``query`` (at most one more than its ``max_matches``),
        listed with ListSecrets' own filters: ``name`` for the prefix, ``tag-key`` and
        ``tag-value`` for each tag. AWS matches tag keys and values independently, so every
        condition is checked again on the tags each entry carries."""
        filters = list_filters(query)
        what = f"(ListSecrets {describe_query(query)})"
        names: list[str] = []
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
                if filters:
                    kwargs["Filters"] = filters
                if token:
                    kwargs["NextToken"] = token
                page = self._client.list_secrets(**kwargs)
                for entry in page.get("SecretList", []):
                    tags = {t.get("Key", ""): t.get("Value", "") for t in entry.get("Tags", [])}
                    name = str(entry.get("Name", ""))
                    if name and query.matches(name, tags):
                        names.append(name)
                token = page.get("NextToken")
                if not token or len(names) > query.max_matches:
                    return names
        except ClientError as exc:
            raise _classify(exc, what) from None
        except BotoCoreError as exc:
            raise _classify_transport(exc, what) from None

    def check(self) -> str:
        """Prove the identity works: STS GetCallerIdentity, which every identity may call."""
        sts = self._session.client("sts", endpoint_url=self._source.sts_endpoint, config=_config(self._timeout))
        try:
            identity = sts.get_caller_identity()
        except ClientError as exc:
            raise _classify_code(_code(exc), "", "(GetCallerIdentity)") from None
        except BotoCoreError as exc:
            raise _classify_transport(exc, "(GetCallerIdentity)") from None
        finally:
            sts.close()
        return f"authenticated as account {identity.get('Account', '?')}"

    def _fetch_batch(self, refs: Sequence[RemoteRef]) -> dict[RemoteRef, Fetched | ProviderError]:
        ids = [ref.name for ref in refs]
        try:
            entries, errors = self._batch_get(ids)
        except ClientError as exc:
            error = _classify(exc, _describe_batch(ids))
            # Least-privilege IAM often grants GetSecretValue on named secrets but not the batch
            # action, and one bad id can fail the whole call: a definite answer about the *call*
            # is worth retrying one by one. A refused identity or a flaky store is not.
            if isinstance(error, Unavailable) or _code(exc) in _IDENTITY_REFUSED:
                raise error from None
            return {ref: self._fetch_one(ref) for ref in refs}
        except ParamValidationError:
            return {ref: self._fetch_one(ref) for ref in refs}
        except BotoCoreError as exc:
            raise _classify_transport(exc, _describe_batch(ids)) from None
        return {ref: self._batch_result(ref, entries, errors) for ref in refs}

    def _batch_get(self, ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every value and error entry of one SecretIdList, keyed by each name the entry answers to."""
        entries: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        token: str | None = None
        # At most one page per id, so a server that keeps handing out tokens cannot loop us;
        # ids left unanswered are read one by one afterwards.
        for _ in range(len(ids)):
            if token:
                page = self._client.batch_get_secret_value(SecretIdList=ids, NextToken=token)
            else:
                page = self._client.batch_get_secret_value(SecretIdList=ids)
            for entry in page.get("SecretValues", []):
                for key in (entry.get("Name"), entry.get("ARN")):
                    if key:
                        entries[key] = entry
            for error in page.get("Errors", []):
                errors[error.get("SecretId", "")] = error
            token = page.get("NextToken")
            if not token:
                break
        return entries, errors

    def _batch_result(self, ref: RemoteRef, entries: Mapping[str, Any],
                      errors: Mapping[str, Any]) -> Fetched | ProviderError:
        if ref.name in errors:
            error = errors[ref.name]
            return _classify_code(error.get("ErrorCode", ""), error.get("Message", ""), _describe(ref))
        if ref.name in entries:
            return _fetched(entries[ref.name], ref)
        # A partial ARN matches neither Name nor ARN of its entry; ask for it by itself.
        return self._fetch_one(ref)

    def _fetch_one(self, ref: RemoteRef) -> Fetched | ProviderError:
        try:
            if ref.version is not None and _is_version_id(ref.version):
                response = self._client.get_secret_value(SecretId=ref.name, VersionId=ref.version)
            else:
                # Always name the stage: moto (and only moto) answers an unqualified read with a
                # stale version after update_secret_version_stage.
                stage = ref.version or CURRENT
                response = self._client.get_secret_value(SecretId=ref.name, VersionStage=stage)
        except ClientError as exc:
            error = _classify(exc, _describe(ref))
            # A refused identity fails every reference alike; a throttled account would only be
            # asked again, and harder, by the next reference in the batch.
            if _code(exc) in _IDENTITY_REFUSED or isinstance(error, Throttled):
                raise error from None
            return error
        except ParamValidationError:
            return NotFound(f"AWS secret {_describe(ref)} is not a valid secret id or version")
        except BotoCoreError as exc:
            # The endpoint is down or the identity is missing: every other reference would fail
            # the same way after the same wait, so give up on the batch.
            raise _classify_transport(exc, _describe(ref)) from None
        return _fetched(response, ref)


def list_filters(query: FindQuery) -> list[dict[str, Any]]:
    """ListSecrets filters for what ``query`` selects (filters of different keys are ANDed)."""
    filters: list[dict[str, Any]] = []
    if query.prefix is not None and _FILTER_VALUE.match(query.prefix):
        filters.append({"Key": "name", "Values": [query.prefix]})
    keys = [k for k in sorted(query.tags) if _FILTER_VALUE.match(k)]
    values = [v for v in sorted(set(query.tags.values())) if _FILTER_VALUE.match(v)]
    if keys:
        filters.append({"Key": "tag-key", "Values": keys})
    if values:
        filters.append({"Key": "tag-value", "Values": values})
    return filters


def describe_query(query: FindQuery) -> str:
    parts = []
    if query.prefix is not None:
        parts.append(f"prefix {query.prefix!r}")
    if query.name_regexp is not None:
        parts.append(f"name matching {query.name_regexp!r}")
    parts += [f"tag {k}={v}" for k, v in sorted(query.tags.items())]
    return ", ".join(parts) or "all"


def _config(timeout: float, **extra: Any) -> Config:
    return Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        # No retry inside botocore: its standard mode retries throttling too, which multiplies the
        # requests a throttled account gets. The daemon is the only retry, with its own backoff.
        retries={"total_max_attempts": 1, "mode": "standard"},
        **extra,
    )


def _web_identity_session(source: AwsSource, identity: WebIdentity, timeout: float) -> boto3.session.Session:
    # AssumeRoleWithWebIdentity is an unsigned call: the token is the proof.
    sts = boto3.session.Session(region_name=source.region).client(
        "sts", endpoint_url=source.sts_endpoint, config=_config(timeout, signature_version=UNSIGNED))
    what = f"role {identity.role_arn!r}"

    def refresh() -> dict[str, str]:
        try:
            response = sts.assume_role_with_web_identity(
                RoleArn=identity.role_arn, RoleSessionName=identity.session_name,
                WebIdentityToken=identity.token(), DurationSeconds=identity.duration_seconds)
        except ClientError as exc:
            error = _classify_code(_code(exc), "", what)
            if isinstance(error, Unavailable) and _code(exc) in _DENIED:
                error = AccessDenied(f"STS refused to let the ServiceAccount assume {what}")
            raise error from None
        except BotoCoreError as exc:
            raise Unavailable(f"STS unreachable assuming {what} ({type(exc).__name__})") from None
        metrics.PROVIDER_LOGINS.labels("aws").inc()
        creds = response["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    core = botocore.session.get_session()
    # Fetched now, so that a refused identity shows when the client is built, not mid-batch.
    core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
        metadata=refresh(), refresh_using=refresh, method="assume-role-with-web-identity")
    return boto3.session.Session(botocore_session=core, region_name=source.region)


def _make_session(source: AwsSource, credentials: AwsCredentials | WebIdentity | None,
                  timeout: float) -> boto3.session.Session:
    if credentials is None:
        session = boto3.session.Session(region_name=source.region)
    elif isinstance(credentials, WebIdentity):
        session = _web_identity_session(source, credentials, timeout)
    else:
        session = boto3.session.Session(
            region_name=source.region,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
        )
    return session


def _chunks(items: Sequence[RemoteRef], size: int) -> Iterator[Sequence[RemoteRef]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _is_version_id(version: str) -> bool:
    """VersionIds are UUIDs in practice; anything else is taken as a staging label."""
    return bool(_UUID.match(version))


def _fetched(entry: Mapping[str, Any], ref: RemoteRef) -> Fetched | ProviderError:
    binary = entry.get("SecretBinary")
    if binary is not None:
        data = bytes(binary)
    elif entry.get("SecretString") is not None:
        data = str(entry["SecretString"]).encode("utf-8")
    else:
        return NotFound(f"AWS secret {_describe(ref)} has no value")
    return Fetched(value=SecretValue(data), version=str(entry.get("VersionId", "")))


def _describe(ref: RemoteRef) -> str:
    if ref.version is None:
        return repr(ref.name)
    return f"{ref.name!r} version {ref.version!r}"


def _describe_batch(ids: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in ids)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _classify(exc: ClientError, what: str) -> ProviderError:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    error = _classify_code(_code(exc), message, what)
    # An error body botocore cannot parse (moto answers IAM denials in XML) leaves only the
    # HTTP status as its code; 401 and 403 still say the identity was refused.
    if isinstance(error, Unavailable) and status in (401, 403):
        error = AccessDenied(f"AWS denied reading secret {what} (HTTP {status})")
    if isinstance(error, Unavailable) and error.retry_after is not None:
        header = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
        error.retry_after = _seconds(header, error.retry_after)
    return error


def _classify_code(code: str, provider_message: str, what: str) -> ProviderError:
    """Map an AWS error code to a classified error with our own message.

    ``provider_message`` is only inspected, never repeated: AWS messages can quote input.
    """
    if code == "ResourceNotFoundException":
        return NotFound(f"AWS secret {what} not found")
    if code == "InvalidRequestException" and "delet" in provider_message.lower():
        return NotFound(f"AWS secret {what} is scheduled for deletion")
    if code in _DENIED:
        return AccessDenied(f"AWS denied reading secret {what}")
    if code in _IDENTITY_REFUSED:
        return AccessDenied(f"AWS refused the credentials ({code}) reading secret {what}")
    if code in _THROTTLED:
        return Throttled(f"AWS throttled reading secret {what}", retry_after=THROTTLE_RETRY_AFTER)
    shown = code if _ERROR_CODE.match(code) else "unknown error"
    return Unavailable(f"AWS failed reading secret {what} ({shown})")


def _classify_transport(exc: BotoCoreError, what: str) -> ProviderError:
    if isinstance(exc, NoCredentialsError):
        return AccessDenied(f"no AWS credentials found for reading secret {what}")
    if isinstance(exc, SSLError):
        return TlsError(f"AWS Secrets Manager: TLS handshake failed reading secret {what}")
    return Unavailable(f"AWS Secrets Manager unreachable reading secret {what} ({type(exc).__name__})")


def _seconds(header: str | None, default: float) -> float:
    try:
        return max(0.0, float(header)) if header else default
    except ValueError:
        return default


def known_region(region: str) -> bool:
    """Whether Secrets Manager has the region in any AWS partition, by botocore's endpoint data.
    An endpoint override (moto, LocalStack, a VPC endpoint) accepts any region name, and a
    region's data lives only in that region, so a typo there reads as "not found"."""
    session = botocore.session.get_session()
    return any(region in session.get_available_regions("secretsmanager", partition)
               for partition in session.get_available_partitions())
