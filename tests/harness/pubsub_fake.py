"""Pub/Sub's Subscriber service, served from memory beside the Secret Manager fake (gcp_fake.py).

Serves ``google.pubsub.v1.Subscriber``'s ``Pull`` and ``Acknowledge`` with the message classes
of ``google-cloud-pubsub`` (``google.pubsub_v1.types``), so the official generated client runs
against it unchanged, on the same port and with the same transport and authentication rules as
the Secret Manager fake (a store's ``endpoint`` serves every Google API it talks to).

Semantics the operator can observe: a Pull answers with up to ``max_messages`` messages that are
neither acknowledged nor leased; without ``return_immediately`` and with nothing to answer it
waits for a message until its deadline (so an idle subscription ends Pulls in DEADLINE_EXCEEDED,
as Google's does); a message not acknowledged within the ack deadline (10 s) is delivered again;
a Pull or Acknowledge of a subscription that does not exist is NOT_FOUND.

Test controls: :meth:`create_subscription`, :meth:`publish` (what Secret Manager does for a
topic the subscription is attached to), :meth:`delete_subscription` (Pulls then fail),
:meth:`backlog` (messages not yet acknowledged), :attr:`calls` (RPCs by method name).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2, timestamp_pb2
from google.pubsub_v1 import types

from .gcp_auth import GoogleAuth

__all__ = ["ACK_DEADLINE_SECONDS", "SERVICE", "PubsubFake"]

SERVICE = "google.pubsub.v1.Subscriber"
ACK_DEADLINE_SECONDS = 10.0


@dataclass
class _Message:
    message_id: str
    data: bytes
    attributes: dict[str, str]
    leased_until: float = 0.0  # time.monotonic() until which a Pull handed it out
    ack_ids: set[str] = field(default_factory=set)
    deliveries: int = 0


class PubsubFake:
    """Thread-safe subscriptions and their backlogs; :meth:`handler` plugs into a grpc server."""

    def __init__(self, auth: GoogleAuth | None = None) -> None:
        self.auth = auth
        self.calls: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._subscriptions: dict[str, list[_Message]] = {}
        self._next_id = 0

    # -- test controls -----------------------------------------------------------------------

    def create_subscription(self, name: str) -> None:
        with self._lock:
            self._subscriptions.setdefault(name, [])

    def delete_subscription(self, name: str) -> None:
        with self._lock:
            self._subscriptions.pop(name, None)
            self._lock.notify_all()

    def publish(self, subscription: str, data: bytes, attributes: dict[str, str]) -> str:
        """Put one message into the subscription's backlog, as a publish to its topic would."""
        with self._lock:
            self._next_id += 1
            message_id = str(self._next_id)
            self._subscriptions[subscription].append(_Message(message_id, data, dict(attributes)))
            self._lock.notify_all()
        return message_id

    def backlog(self, subscription: str) -> int:
        with self._lock:
            return len(self._subscriptions.get(subscription, []))

    # -- wiring ------------------------------------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(method: str, fn: Callable[[Any, grpc.ServicerContext], Any], request: Any,
                  serialize: Callable[[Any], bytes]) -> grpc.RpcMethodHandler:
            def call(req: Any, context: grpc.ServicerContext) -> Any:
                self._before(method, context)
                return fn(req, context)

            return grpc.unary_unary_rpc_method_handler(call, request_deserializer=request.deserialize,
                                                       response_serializer=serialize)

        methods = {
            "Pull": (self._pull, types.PullRequest, types.PullResponse.serialize),
            "Acknowledge": (self._acknowledge, types.AcknowledgeRequest, empty_pb2.Empty.SerializeToString),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE, {name: unary(name, fn, req, ser) for name, (fn, req, ser) in methods.items()})

    def _before(self, method: str, context: grpc.ServicerContext) -> None:
        if self.auth is not None:
            authorization = dict(context.invocation_metadata()).get("authorization")
            if not self.auth.accepts(str(authorization) if authorization is not None else None):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials.")
        with self._lock:
            self.calls[method] += 1

    # -- RPCs --------------------------------------------------------------------------------

    def _pull(self, request: types.PullRequest, context: grpc.ServicerContext) -> types.PullResponse:
        if request.max_messages <= 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "max_messages must be positive.")
        with self._lock:
            while True:
                backlog = self._subscriptions.get(request.subscription)
                if backlog is None:
                    context.abort(grpc.StatusCode.NOT_FOUND,
                                  f"Resource not found (resource={request.subscription.rsplit('/', 1)[-1]}).")
                now = time.monotonic()
                ready = [m for m in backlog if m.leased_until <= now][:request.max_messages]
                remaining = context.time_remaining()
                if ready or request.return_immediately or not context.is_active() or (
                        remaining is not None and remaining <= 0):
                    break
                self._lock.wait(min(0.5, remaining) if remaining is not None else 0.5)
            received = []
            if not context.is_active():
                ready = []  # the caller gave up (deadline, cancel): lease nothing to nobody
            for message in ready:
                self._next_id += 1
                ack_id = f"ack-{message.message_id}-{self._next_id}"
                message.ack_ids.add(ack_id)
                message.leased_until, message.deliveries = now + ACK_DEADLINE_SECONDS, message.deliveries + 1
                stamp = timestamp_pb2.Timestamp()
                stamp.GetCurrentTime()
                received.append(types.ReceivedMessage(
                    ack_id=ack_id, delivery_attempt=message.deliveries,
                    message=types.PubsubMessage(data=message.data, attributes=message.attributes,
                                                message_id=message.message_id, publish_time=stamp)))
        return types.PullResponse(received_messages=received)

    def _acknowledge(self, request: types.AcknowledgeRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        acked = set(request.ack_ids)
        with self._lock:
            backlog = self._subscriptions.get(request.subscription)
            if backlog is None:
                context.abort(grpc.StatusCode.NOT_FOUND,
                              f"Resource not found (resource={request.subscription.rsplit('/', 1)[-1]}).")
            backlog[:] = [m for m in backlog if not (m.ack_ids & acked)]
        return empty_pb2.Empty()
