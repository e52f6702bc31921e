"""Short-lived HS256 JWTs, stdlib only, so the emulator runs without extra packages.

The key is random per process: tokens never outlive the emulator's in-memory state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Callable

_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """A token that cannot be used; ``code`` is an Authsignal-style errorCode."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(
        self,
        ttl_seconds: int = 600,
        issuer: str = "devstack-authsignal",
        key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.ttl_seconds = ttl_seconds
        self.issuer = issuer
        self._key = key or secrets.token_bytes(32)
        self._clock = clock

    def _sign(self, signing_input: bytes) -> bytes:
        return hmac.new(self._key, signing_input, hashlib.sha256).digest()

    def issue(self, claims: dict) -> str:
        now = int(self._clock())
        payload = {
            **claims,
            "iss": self.issuer,
            "iat": now,
            "exp": now + self.ttl_seconds,
            # jti makes every token distinct, even two tracks in the same second.
            "jti": secrets.token_urlsafe(12),
        }
        head = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
        signing_input = f"{head}.{body}".encode("ascii")
        return f"{head}.{body}.{_b64encode(self._sign(signing_input))}"

    def verify(self, token: object) -> dict:
        invalid = TokenError("invalid_token", "The token is not valid.")
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 4096:
            raise invalid
        head, body, signature = token.split(".")
        try:
            expected = self._sign(f"{head}.{body}".encode("ascii"))
            if not hmac.compare_digest(expected, _b64decode(signature)):
                raise invalid
            header = json.loads(_b64decode(head))
            payload = json.loads(_b64decode(body))
        except (ValueError, UnicodeError):
            raise invalid from None
        if header != _HEADER or not isinstance(payload, dict):
            raise invalid
        exp = payload.get("exp")
        if not isinstance(exp, int) or self._clock() >= exp:
            raise TokenError("expired_token", "The token has expired.")
        return payload
