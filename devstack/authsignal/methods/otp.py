"""One-time codes sent by email or text message, for one action at a time.

A code is 6 digits, valid OTP_TTL_SECONDS, stored only as an HMAC, and counts once.
Five wrong codes fail the action's challenge; at most MAX_SENDS codes per action.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

OTP_TTL_SECONDS = 600
MAX_WRONG_CODES = 5
MAX_SENDS = 6


class OtpError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Pending:
    digest: bytes | None = None
    sent_at: float = 0.0
    sends: int = 0
    wrong: int = 0


class Codes:
    """Codes per (action key, channel): email and SMS codes of one action never mix."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], Pending] = {}

    def _digest(self, action_key: str, channel: str, code: str) -> bytes:
        return hmac.new(self._key, f"{action_key}:{channel}:{code}".encode(), hashlib.sha256).digest()

    def sends(self, action_key: str, channel: str) -> int:
        with self._lock:
            found = self._pending.get((action_key, channel))
            return found.sends if found else 0

    def issue(self, action_key: str, channel: str) -> str:
        """A new code (the previous one stops working)."""
        with self._lock:
            pending = self._pending.setdefault((action_key, channel), Pending())
            if pending.sends >= MAX_SENDS:
                raise OtpError(429, "too_many_codes", "Too many codes were sent. Close this window and sign in again.")
            code = f"{secrets.randbelow(10**6):06d}"
            pending.digest = self._digest(action_key, channel, code)
            pending.sent_at = self._clock()
            pending.sends += 1
            return code

    def check(self, action_key: str, channel: str, code: object, where: str) -> None:
        """Raises OtpError unless `code` is the latest one; `where` words the hint
        ("the email", "the text message"). A fifth wrong code raises `challenge_failed`."""
        digits = re.sub(r"\s+", "", code) if isinstance(code, str) else ""
        if not re.fullmatch(r"[0-9]{6}", digits):
            raise OtpError(400, "invalid_code_format", f"Enter the 6-digit code from {where}.")
        with self._lock:
            pending = self._pending.get((action_key, channel))
            if pending is None or pending.digest is None:
                raise OtpError(400, "no_code_sent", "No code was sent yet. Choose Resend code.")
            if self._clock() - pending.sent_at > OTP_TTL_SECONDS:
                raise OtpError(400, "code_expired", "That code has expired. Choose Resend code to get a new one.")
            if not hmac.compare_digest(pending.digest, self._digest(action_key, channel, digits)):
                pending.wrong += 1
                if pending.wrong >= MAX_WRONG_CODES:
                    pending.digest = None
                    raise OtpError(400, "challenge_failed", "Too many wrong codes. Close this window and sign in again.")
                raise OtpError(400, "invalid_code", f"That code is not right. Check the latest {where[4:]} and try again.")
            pending.digest = None  # a code works once
