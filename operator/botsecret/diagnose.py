"""`botsecret check`: every reference of a BotSecret, resolved as the operator would, as rows of
key, source, remote name, version and an outcome class with a hint. Never a value.

The hints follow the Troubleshooting section of the secrets-management guide the product grew
from ("Missing required secrets": are the keys set, IAM permissions, the AWS region).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .assemble import ProviderAnswers, found_key
from .find_errors import InvalidFind, KeyConflict, TooManyMatches
from .providers.base import AccessDenied, Fetched, NotFound, ProviderError, RemoteRef, Throttled, TlsError, Unavailable
from .resolve import ResolvedSource, StoreError
from .spec import AwsSource, BotSecretSpec, ProviderConfig

__all__ = ["HINTS", "CheckRow", "check_rows", "error_class", "format_table"]

OK = "OK"

HINTS: dict[str, str] = {
    "NotFound": "check that every key is set in your secret store: the remote secret, version or property "
                "does not exist",
    "AccessDenied": "verify the permissions for secret retrieval (IAM policy, Vault policy, GCP role) of the "
                    "store's identity, and that its credentials Secret exists",
    "WrongRegion": "check the AWS region is correct: {region!r} is not a Secrets Manager region "
                   "(the store's spec.provider.aws.region)",
    "TLS": "the server's certificate is not trusted: give the store the CA (caBundle or caSecretRef), "
           "or check that the address speaks TLS",
    "Throttled": "the provider is throttling this identity; the operator backs off on its own, try again later",
    "Unavailable": "the provider did not answer: check the store's address or endpoint and the network",
    "StoreNotFound": "create the store, or fix spec.sources[].storeRef (a BotSecretStore must be in the "
                     "BotSecret's namespace)",
    "StoreNotAllowed": "the ClusterBotSecretStore's spec.conditions do not admit this namespace",
    "StoreInvalid": "fix the store's spec (see its Ready condition)",
    "NotJSON": "a dataFrom remote secret must hold a JSON object",
    "TooManyMatches": "narrow spec.dataFrom[].find (path, name.regexp, tags) or raise its maxMatches (at most 1000)",
    "InvalidSpec": "fix the find: this store's provider cannot select by it",
    "KeyConflict": "two remote secrets give the same key: tell them apart with spec.dataFrom[].rewrite",
}


@dataclass(frozen=True)
class CheckRow:
    key: str
    source: str
    remote: str
    version: str
    result: str  # OK or an error class of HINTS
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.result == OK


def error_class(error: ProviderError, provider: ProviderConfig | None) -> str:
    if isinstance(error, StoreError):
        return "StoreInvalid" if error.reason == "StoreInvalid" else error.reason
    if isinstance(error, TooManyMatches | InvalidFind | KeyConflict):
        return error.reason
    if isinstance(provider, AwsSource) and not _known_region(provider.region):
        # An endpoint override answers any region, and data lives in one region: a region that
        # does not exist shows as "not found" (or, against AWS itself, as no such host).
        return "WrongRegion"
    if isinstance(error, NotFound):
        return "NotFound"
    if isinstance(error, AccessDenied):
        return "AccessDenied"
    if isinstance(error, TlsError):
        return "TLS"
    if isinstance(error, Throttled):
        return "Throttled"
    if isinstance(error, Unavailable):
        return "Unavailable"
    return "Unavailable"


def _known_region(region: str) -> bool:
    from .providers.aws import known_region

    return known_region(region)


def _hint(result: str, provider: ProviderConfig | None, message: str) -> str:
    region = provider.region if isinstance(provider, AwsSource) else ""
    hint = HINTS.get(result, "").format(region=region)
    if result == "NotFound" and region:
        hint += f"; AWS keeps it per region: is it in {region!r}?"
    return f"{hint} ({message})" if message else hint


def _row(key: str, source: str, remote: RemoteRef, got: Fetched | ProviderError,
         provider: ProviderConfig | None, prop: str | None = None, from_json: bool = False) -> CheckRow:
    shown = remote.name + (f" [{prop}]" if prop else "") + (f" @{remote.version}" if remote.version else "")
    if isinstance(got, ProviderError):
        result = error_class(got, provider)
        return CheckRow(key, source, shown, "", result, _hint(result, provider, got.message))
    if prop is not None or from_json:
        document = _json_object(got.value.reveal())
        if document is None:
            return CheckRow(key, source, shown, got.version, "NotJSON", HINTS["NotJSON"])
        if prop is not None and prop not in document:
            return CheckRow(key, source, shown, got.version, "NotFound",
                            f"property {prop!r} is not in the remote secret; " + HINTS["NotFound"])
        if from_json:
            key = f"{key} ({len(document)} keys)"
    return CheckRow(key, source, shown, got.version, OK)


def _json_object(raw: bytes) -> dict[str, object] | None:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def check_rows(spec: BotSecretSpec, resolved: Mapping[str, ResolvedSource | ProviderError],
               answers: ProviderAnswers,
               listings: Mapping[int, tuple[str, ...] | ProviderError] | None = None) -> list[CheckRow]:
    """One row per dataFrom entry (per match of a find) and per data key, in spec order."""
    def provider(source: str) -> ProviderConfig | None:
        found = resolved.get(source)
        return found.provider if isinstance(found, ResolvedSource) else None

    def answer(source: str, ref: RemoteRef) -> Fetched | ProviderError:
        return answers.get(source, {}).get(ref) or NotFound(f"no answer for {ref.name!r}")

    rows = [_row(f"dataFrom[{i}]", item.source, item.remote, answer(item.source, item.remote),
                 provider(item.source), from_json=True) for i, item in enumerate(spec.data_from)]
    for item in spec.finds:
        listed = (listings or {}).get(item.index, ())
        if isinstance(listed, ProviderError):
            result = error_class(listed, provider(item.source))
            rows.append(CheckRow(f"dataFrom[{item.index}]", item.source, "(find)", "", result,
                                 _hint(result, provider(item.source), listed.message)))
            continue
        if not listed:
            rows.append(CheckRow(f"dataFrom[{item.index}]", item.source, "(find: no match)", "", OK))
        rows += [_row(found_key(item, name), item.source, RemoteRef(name), answer(item.source, RemoteRef(name)),
                      provider(item.source)) for name in listed]
    rows += [_row(item.key, item.source, item.remote, answer(item.source, item.remote), provider(item.source),
                  prop=item.property) for item in spec.data]
    return rows


def format_table(rows: list[CheckRow]) -> str:
    header = ("KEY", "SOURCE", "REMOTE", "VERSION", "RESULT", "HINT")
    cells = [header, *((r.key, r.source, r.remote, r.version or "-", r.result, r.hint) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1] for c in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"
