"""The dev mailbox: every email and text message the tenant "sends", newest last.

`GET /_dev/mailbox?email=` or `?phone=` lists `{to, channel, subject, code, link, sentAt}`
(`code` or `link` may be null). Each message also goes to the sink (the terminal).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable

EMAIL = "EMAIL"
SMS = "SMS"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Mailbox:
    def __init__(self, sink: Callable[[dict], None] | None = None, clock: Callable[[], float] = time.time):
        self._sink = sink or (lambda message: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: list[dict] = []

    def send(self, to: str, channel: str, subject: str, code: str | None = None, link: str | None = None) -> dict:
        message = {"to": to, "channel": channel, "subject": subject, "code": code, "link": link,
                   "sentAt": iso(self._clock())}
        with self._lock:
            self._messages.append(message)
        self._sink(dict(message))
        return message

    def for_email(self, email: str) -> list[dict]:
        wanted = email.strip().lower()
        with self._lock:
            return [dict(m) for m in self._messages if m["channel"] == EMAIL and m["to"].lower() == wanted]

    def for_phone(self, phone: str) -> list[dict]:
        wanted = "".join(phone.split())
        with self._lock:
            return [dict(m) for m in self._messages if m["channel"] == SMS and m["to"] == wanted]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
