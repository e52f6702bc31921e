"""Email magic links: a one-time secret in a link mailed to the user's address.

Opening the link (in any tab) completes the action; the challenge page, waiting in the
popup, notices and finishes on its own. The secret is stored only as a hash.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Callable

EMAIL_MAGIC_LINK = "EMAIL_MAGIC_LINK"
SUBJECT = "Your sign-in link"
LINK_TTL_SECONDS = 600


class Links:
    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._links: dict[bytes, tuple[str, float]] = {}  # hash -> (action key, expiry)

    @staticmethod
    def _hash(secret: str) -> bytes:
        return hashlib.sha256(secret.encode()).digest()

    def issue(self, action_key: str) -> str:
        secret = secrets.token_urlsafe(24)
        with self._lock:
            # A new link replaces the action's earlier ones.
            for digest in [d for d, (key, _) in self._links.items() if key == action_key]:
                del self._links[digest]
            self._links[self._hash(secret)] = (action_key, self._clock() + LINK_TTL_SECONDS)
        return secret

    def redeem(self, secret: object) -> str | None:
        """The action key, once; None for an unknown, used or expired link."""
        if not isinstance(secret, str) or not secret or len(secret) > 200:
            return None
        with self._lock:
            found = self._links.pop(self._hash(secret), None)
        if found is None or found[1] <= self._clock():
            return None
        return found[0]

    def clear(self) -> None:
        with self._lock:
            self._links.clear()
