"""A Pub/Sub subscription of Secret Manager's event notifications, read with a store's identity.

Synchronous unary ``Pull`` (10 messages at most, held open up to ``wait_seconds``) and
``Acknowledge`` of what was handled, through the generated client of google-cloud-pubsub (the
GAPIC one: the hand-written wrapper would follow ``PUBSUB_EMULATOR_HOST`` from the environment
and send the store's credentials there). The store's endpoint rules hold (providers.gcp_connect).

Pub/Sub answers a Pull that found nothing by letting it run into its deadline, and so would a
server that went silent; so after a Pull that ran out, the next one asks to return at once, which
an answering subscription does. A failure is raised as :class:`QueueError` with the exception's
class (``NotFound``, ``PermissionDenied``, ...) as its ``error_class``, never Google's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from ..spec import GcpSource
from .change_queue import QueueError, QueueMessage
from .gcp_connect import GoogleIdentity, google_client
from .gcp_federation import GcpFederation

__all__ = ["GOOGLE_ENDPOINT", "MAX_MESSAGES", "WAIT_SECONDS", "PubsubSubscription"]

GOOGLE_ENDPOINT = "pubsub.googleapis.com"
WAIT_SECONDS = 20.0  # how long one Pull may wait for a message, as an SQS long poll
MAX_MESSAGES = 10
_FAILED = (gexc.GoogleAPIError, auth_exc.GoogleAuthError, grpc.RpcError, OSError)


class PubsubSubscription:
    """One subscription, one identity. Not thread-safe: one consumer thread owns it."""

    def __init__(self, source: GcpSource, subscription: str, *, credentials_json: bytes | None = None,
                 federation: GcpFederation | None = None, timeout: float = 10.0,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self._source, self._subscription = source, subscription
        self._identity = GoogleIdentity(credentials_json=credentials_json, federation=federation)
        self._timeout, self._wait = timeout, wait_seconds
        self._client: Any = None
        self._answered = False  # whether the last Pull came back before its deadline

    def __repr__(self) -> str:
        return f"PubsubSubscription({self._subscription!r})"

    @property
    def name(self) -> str:
        return self._subscription

    def receive(self, *, wait: bool = True) -> list[QueueMessage]:
        """The next messages; ``wait=False`` (and the Pull after one that ran out) answers at once."""
        immediately = not wait or not self._answered
        request = {"subscription": self._subscription, "max_messages": MAX_MESSAGES,
                   "return_immediately": immediately}
        try:
            answer = self._get_client().pull(request=request, retry=None,
                                             timeout=self._timeout if immediately else self._wait)
        except gexc.DeadlineExceeded:
            if immediately:
                raise QueueError("DeadlineExceeded") from None
            self._answered = False  # nothing came; the next Pull proves the subscription still answers
            return []
        except _FAILED as exc:
            self._answered = False
            raise QueueError(type(exc).__name__) from None
        self._answered = True
        return [QueueMessage(str(m.ack_id), bytes(m.message.data).decode("utf-8", errors="replace"),
                             {str(k): str(v) for k, v in m.message.attributes.items()})
                for m in answer.received_messages if m.ack_id]

    def delete(self, messages: Sequence[QueueMessage]) -> int:
        """Acknowledge handled messages (all or none: Pub/Sub answers for the whole call; a message
        not acknowledged comes back after its deadline, a wake-up too many, never one too few)."""
        if not messages:
            return 0
        request = {"subscription": self._subscription, "ack_ids": [m.receipt for m in messages]}
        try:
            self._get_client().acknowledge(request=request, timeout=self._timeout, retry=None)
        except _FAILED as exc:
            raise QueueError(type(exc).__name__) from None
        return 0

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.transport.close()

    def _get_client(self) -> Any:
        if self._client is None:
            # Imported here: only stores with GCP change events need the Pub/Sub client.
            from google.pubsub_v1.services.subscriber import SubscriberClient
            from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

            self._client = google_client(SubscriberClient, SubscriberGrpcTransport, self._source, self._identity,
                                         GOOGLE_ENDPOINT)
        return self._client
