"""An SQS queue of Secrets Manager change events, read with a store's identity.

Long polls (``ReceiveMessage``, up to 20 s and 10 messages) and deletes what was handled. A failure
is raised as :class:`QueueError` with the AWS error code or the transport failure's class as its
``error_class``: never the provider's message, which may quote input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..spec import AwsSource
from .aws import AwsCredentials, WebIdentity, _config, _make_session
from .change_queue import QueueError, QueueMessage

__all__ = ["MAX_MESSAGES", "WAIT_SECONDS", "QueueError", "QueueMessage", "SqsQueue"]

WAIT_SECONDS = 20  # the longest long poll SQS allows
MAX_MESSAGES = 10  # the most messages one ReceiveMessage answers
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,63}$")


class SqsQueue:
    """One queue, one identity. Not thread-safe: one consumer thread owns it."""

    def __init__(self, source: AwsSource, queue_url: str, endpoint: str, *,
                 credentials: AwsCredentials | WebIdentity | None = None, timeout: float = 10.0,
                 wait_seconds: int = WAIT_SECONDS) -> None:
        self._url = queue_url
        self._wait = wait_seconds
        session = _make_session(source, credentials, timeout)
        # The read timeout covers the long poll itself.
        self._client: Any = session.client("sqs", endpoint_url=endpoint,
                                           config=_config(timeout).merge(Config(read_timeout=timeout + wait_seconds)))

    def __repr__(self) -> str:
        return f"SqsQueue({self._url!r})"

    def receive(self, *, wait: bool = True) -> list[QueueMessage]:
        """The next messages; ``wait=False`` answers at once (a first call shows whether the queue
        can be read without holding the caller for a long poll)."""
        try:
            answer = self._client.receive_message(QueueUrl=self._url, MaxNumberOfMessages=MAX_MESSAGES,
                                                  WaitTimeSeconds=self._wait if wait else 0)
        except ClientError as exc:
            raise QueueError(_error_class(exc)) from None
        except BotoCoreError as exc:
            raise QueueError(type(exc).__name__) from None
        return [QueueMessage(str(m.get("ReceiptHandle", "")), str(m.get("Body", "")))
                for m in answer.get("Messages", []) if m.get("ReceiptHandle")]

    def delete(self, messages: Sequence[QueueMessage]) -> int:
        """Delete handled messages; answer how many SQS refused (they come back, and are handled
        again: a wake-up too many, never one too few)."""
        if not messages:
            return 0
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(messages)]
        try:
            answer = self._client.delete_message_batch(QueueUrl=self._url, Entries=entries)
        except ClientError as exc:
            raise QueueError(_error_class(exc)) from None
        except BotoCoreError as exc:
            raise QueueError(type(exc).__name__) from None
        return len(answer.get("Failed", []))

    def close(self) -> None:
        self._client.close()


def _error_class(exc: ClientError) -> str:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if _ERROR_CODE.match(code):
        return code
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"HTTP{status}" if status else "UnknownError"
