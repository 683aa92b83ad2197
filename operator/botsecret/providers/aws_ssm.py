"""AWS Systems Manager Parameter Store behind the :class:`~botsecret.providers.base.Provider` interface.

A store with ``provider.aws.service: ParameterStore``. Unpinned names are read in batches of ten
(``GetParameters``, the most it takes); a name pinned to a version (``3``) or a label (``prod``)
is read by itself (``GetParameter`` with the ``name:3`` selector). String and SecureString values
are the parameter's text, SecureStrings decrypted; a StringList is its comma-joined text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ..remote import FindQuery, RemoteRef
from ..spec import AwsSource
from ..values import SecretValue
from .aws import (
    _DENIED,
    _ERROR_CODE,
    _IDENTITY_REFUSED,
    _THROTTLED,
    THROTTLE_RETRY_AFTER,
    AwsCredentials,
    AwsProvider,
    WebIdentity,
    _code,
    _config,
    _make_session,
)
from .base import AccessDenied, Fetched, NotFound, ProviderError, Throttled, TlsError, Unavailable

__all__ = ["GET_PARAMETERS_BATCH", "ParameterStoreProvider", "describe_filters"]

GET_PARAMETERS_BATCH = 10  # the most names GetParameters takes
DESCRIBE_PAGE_SIZE = 50  # the most DescribeParameters answers in one page
_NOT_FOUND = frozenset({"ParameterNotFound", "ParameterVersionNotFound", "ParameterVersionLabelNotFound"})


class ParameterStoreProvider(AwsProvider):
    """Parameter Store in one region, bound to one identity; ``check`` is the AWS one (STS)."""

    def __init__(self, source: AwsSource, *, credentials: AwsCredentials | WebIdentity | None = None,
                 timeout: float = 10.0) -> None:
        self._source = source
        self._timeout = timeout
        self._session = _make_session(source, credentials, timeout)
        self._ssm: Any = self._session.client("ssm", endpoint_url=source.endpoint, config=_config(timeout))

    def __repr__(self) -> str:
        return f"ParameterStoreProvider(region={self._source.region!r}, endpoint={self._source.endpoint!r})"

    def close(self) -> None:
        self._ssm.close()

    def fetch(self, refs: Sequence[RemoteRef]) -> Mapping[RemoteRef, Fetched | ProviderError]:
        unique = list(dict.fromkeys(refs))
        results: dict[RemoteRef, Fetched | ProviderError] = {}
        unpinned = [ref for ref in unique if ref.version is None]
        for start in range(0, len(unpinned), GET_PARAMETERS_BATCH):
            results.update(self._fetch_batch(unpinned[start:start + GET_PARAMETERS_BATCH]))
        for ref in unique:
            if ref.version is not None:
                results[ref] = self._fetch_one(ref)
        return results

    def _fetch_batch(self, refs: Sequence[RemoteRef]) -> dict[RemoteRef, Fetched | ProviderError]:
        names = [ref.name for ref in refs]
        what = ", ".join(repr(n) for n in names)
        try:
            response = self._ssm.get_parameters(Names=names, WithDecryption=True)
        except ClientError as exc:
            raise _classify(exc, what) from None
        except ParamValidationError:
            return {ref: self._fetch_one(ref) for ref in refs}
        except BotoCoreError as exc:
            raise _transport(exc, what) from None
        found: dict[str, Any] = {}
        for entry in response.get("Parameters", []):
            for key in (entry.get("Name"), entry.get("ARN")):
                if key:
                    found[key] = entry
        invalid = set(response.get("InvalidParameters", []))
        results: dict[RemoteRef, Fetched | ProviderError] = {}
        for ref in refs:
            if ref.name in found:
                results[ref] = _fetched(found[ref.name], ref)
            elif ref.name in invalid:
                results[ref] = NotFound(f"AWS parameter {_describe(ref)} not found")
            else:
                results[ref] = self._fetch_one(ref)
        return results

    def _fetch_one(self, ref: RemoteRef) -> Fetched | ProviderError:
        selector = ref.name if ref.version is None else f"{ref.name}:{ref.version}"
        try:
            response = self._ssm.get_parameter(Name=selector, WithDecryption=True)
        except ClientError as exc:
            error = _classify(exc, _describe(ref))
            if _code(exc) in _IDENTITY_REFUSED or isinstance(error, Throttled):
                raise error from None
            return error
        except ParamValidationError:
            return NotFound(f"AWS parameter {_describe(ref)} is not a valid parameter name or version")
        except BotoCoreError as exc:
            raise _transport(exc, _describe(ref)) from None
        return _fetched(response.get("Parameter", {}), ref)

    def list_matching(self, query: FindQuery) -> list[str]:
        """Names of the parameters that match ``query`` (at most one more than its
        ``max_matches``), listed with DescribeParameters' filters: ``Name`` BeginsWith the prefix
        and ``tag:KEY`` equal to each tag's value. DescribeParameters does not answer tags, so the
        tag condition is the service's; the name conditions are checked again here."""
        filters = describe_filters(query)
        by_name = FindQuery(prefix=query.prefix, name_regexp=query.name_regexp, max_matches=query.max_matches)
        what = f"(DescribeParameters {filters or 'unfiltered'})"
        names: list[str] = []
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"MaxResults": DESCRIBE_PAGE_SIZE}
                if filters:
                    kwargs["ParameterFilters"] = filters
                if token:
                    kwargs["NextToken"] = token
                page = self._ssm.describe_parameters(**kwargs)
                names += [str(p["Name"]) for p in page.get("Parameters", [])
                          if p.get("Name") and by_name.matches(str(p["Name"]))]
                token = page.get("NextToken")
                if not token or len(names) > query.max_matches:
                    return names
        except ClientError as exc:
            raise _classify(exc, what) from None
        except BotoCoreError as exc:
            raise _transport(exc, what) from None


def describe_filters(query: FindQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if query.prefix is not None:
        filters.append({"Key": "Name", "Option": "BeginsWith", "Values": [query.prefix]})
    filters += [{"Key": f"tag:{key}", "Values": [value]} for key, value in sorted(query.tags.items())]
    return filters


def _describe(ref: RemoteRef) -> str:
    return repr(ref.name) if ref.version is None else f"{ref.name!r} version {ref.version!r}"


def _fetched(entry: Mapping[str, Any], ref: RemoteRef) -> Fetched | ProviderError:
    value = entry.get("Value")
    if value is None:
        return NotFound(f"AWS parameter {_describe(ref)} has no value")
    return Fetched(value=SecretValue(str(value).encode("utf-8")), version=str(entry.get("Version", "")))


def _classify(exc: ClientError, what: str) -> ProviderError:
    """Map a Parameter Store error code to our own message; AWS messages can quote input."""
    code = _code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _NOT_FOUND:
        return NotFound(f"AWS parameter {what} not found ({code})")
    if code in _DENIED or (status in (401, 403) and code not in _THROTTLED):
        return AccessDenied(f"AWS denied reading parameter {what}")
    if code in _IDENTITY_REFUSED:
        return AccessDenied(f"AWS refused the credentials ({code}) reading parameter {what}")
    if code in _THROTTLED:
        return Throttled(f"AWS throttled reading parameter {what}", retry_after=THROTTLE_RETRY_AFTER)
    shown = code if _ERROR_CODE.match(code) else "unknown error"
    return Unavailable(f"AWS Parameter Store failed reading parameter {what} ({shown})")


def _transport(exc: BotoCoreError, what: str) -> ProviderError:
    from botocore.exceptions import NoCredentialsError, SSLError

    if isinstance(exc, NoCredentialsError):
        return AccessDenied(f"no AWS credentials found for reading parameter {what}")
    if isinstance(exc, SSLError):
        return TlsError(f"AWS Parameter Store: TLS handshake failed reading parameter {what}")
    return Unavailable(f"AWS Parameter Store unreachable reading parameter {what} ({type(exc).__name__})")
