"""Notification senders: a small protocol with a logging default and an HTTP SMS gateway.

A sender turns one rendered message into a delivery to a person (by phone number). It raises
`SendFailed` for a failure worth retrying; the worker applies backoff and dead-lettering, so a
sender never retries by itself.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import httpx

from sanad.config import Settings
from sanad.errors import InvalidInput, SanadError

log = logging.getLogger("sanad.notify")

# Message templates per notifiable event type; `str.format` fields come from the payload.
TEMPLATES: dict[str, str] = {
    "card.ready": "Your card is ready at {site} on {date}. Bring this message and your papers.",
}


class SendFailed(SanadError):
    """A notification or webhook could not be delivered this time (it will be retried)."""

    code = "send_failed"
    status = 502


@runtime_checkable
class Sender(Protocol):
    """Delivers one text message to one phone number.

    Contract: `send` returns normally only once the message is accepted by the channel;
    it raises `SendFailed` otherwise. The same `idempotency_key` may be sent more than once
    (at-least-once delivery) and channels that support it should deduplicate on it.
    """

    identifier: str

    def send(self, *, to: str, message: str, idempotency_key: str) -> None: ...


class LoggingSender:
    """The default: writes the notification to the log (development, or no gateway yet)."""

    identifier = "logging"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, *, to: str, message: str, idempotency_key: str) -> None:
        # Only the last digits of the number: logs must not become a phone directory.
        log.info("notification %s to ...%s: %s", idempotency_key, to[-3:], message)
        self.sent.append((to, message, idempotency_key))


class HttpSmsSender:
    """POSTs `{"to", "message"}` as JSON to an SMS gateway with an Idempotency-Key header."""

    identifier = "http-sms"

    def __init__(self, url: str, *, token: str | None, timeout: float) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout

    def send(self, *, to: str, message: str, idempotency_key: str) -> None:
        headers = {"Idempotency-Key": idempotency_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            resp = httpx.post(
                self._url, json={"to": to, "message": message}, headers=headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise SendFailed(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise SendFailed(f"SMS gateway answered HTTP {resp.status_code}")


def sender_from_settings(settings: Settings) -> Sender:
    """The sender named by SANAD_NOTIFY_SENDER."""
    if settings.notify_sender == "logging":
        return LoggingSender()
    if settings.notify_sender == "http-sms":
        if not settings.sms_gateway_url:
            raise InvalidInput(
                "SANAD_SMS_GATEWAY_URL is required for the http-sms sender",
                field="sms_gateway_url",
            )
        return HttpSmsSender(
            settings.sms_gateway_url, token=settings.sms_gateway_token,
            timeout=settings.webhook_timeout_seconds,
        )
    raise InvalidInput(
        f"unknown notification sender {settings.notify_sender!r} (logging | http-sms)",
        field="notify_sender",
    )


def render(event_type: str, payload: dict[str, Any]) -> str:
    """The message for a notifiable event; missing fields are a permanent error."""
    template = TEMPLATES.get(event_type)
    if template is None:
        raise InvalidInput(f"no notification template for {event_type!r}", field="event_type")
    try:
        return template.format(**payload)
    except KeyError as exc:
        raise InvalidInput(f"notification payload lacks {exc.args[0]!r}", field="payload") from None
