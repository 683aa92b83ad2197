"""What every change-event queue hands its consumer: messages it can acknowledge, and failures
named in a word.

An SQS queue (aws_events) and a Pub/Sub subscription (gcp_events) both answer with these, so one
consumer loop (botsecret.event_consumer) reads either. A message's content may hold anything:
it is never logged and never shown in a repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["QueueError", "QueueMessage"]


class QueueError(Exception):
    """Receiving or acknowledging failed; ``error_class`` says how, in a word (a provider's error
    code or the transport failure's class), never with the provider's message, which may quote input."""

    def __init__(self, error_class: str) -> None:
        super().__init__(error_class)
        self.error_class = error_class


@dataclass(frozen=True)
class QueueMessage:
    """``receipt``: what acknowledges it (an SQS receipt handle, a Pub/Sub ack id); ``body``: the
    SQS body or the Pub/Sub data as text; ``attributes``: Pub/Sub's message attributes."""

    receipt: str = field(repr=False)
    body: str = field(repr=False)
    attributes: Mapping[str, str] = field(default_factory=dict, repr=False)
