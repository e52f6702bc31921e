"""Authenticator app (TOTP, RFC 6238) with pyotp; the QR code is drawn by segno.

Enrolment shows a fresh secret as text, as an `otpauth://` URI and as a QR code (an
inline SVG data URI: no network); the first correct code confirms it. A code counts
once: a time step already used for this user is refused.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from dataclasses import dataclass
from typing import Callable

import pyotp
import segno

AUTHENTICATOR_APP = "AUTHENTICATOR_APP"
ISSUER = "Authsignal dev tenant"
# One step either side: the phone's clock may be ~30 s off.
VALID_WINDOW = 1


class TotpError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Secret:
    secret: str
    confirmed: bool = False
    last_step: int = -1


def qr_svg_data_uri(text: str) -> str:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False,
                                     svgns=True, dark="#000", light="#fff")
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class Totp:
    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._secrets: dict[str, Secret] = {}

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()

    def enrolled(self, user_id: str) -> bool:
        with self._lock:
            found = self._secrets.get(user_id)
            return bool(found and found.confirmed)

    def start_enrolment(self, user_id: str, account: str) -> dict:
        """A new secret (it replaces an unconfirmed one); shown once, to this user."""
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(name=account or user_id, issuer_name=ISSUER)
        with self._lock:
            current = self._secrets.get(user_id)
            if current and current.confirmed:
                raise TotpError("already_enrolled", "An authenticator app is already set up for this account.")
            self._secrets[user_id] = Secret(secret=secret)
        return {"secret": secret, "uri": uri, "qrCode": qr_svg_data_uri(uri)}

    def verify(self, user_id: str, code: object) -> bool:
        """True once per correct code; confirms a pending enrolment."""
        digits = "".join(code.split()) if isinstance(code, str) else ""
        if not (len(digits) == 6 and digits.isdigit()):
            raise TotpError("invalid_code_format", "Enter the 6-digit code from your authenticator app.")
        now = self._clock()
        with self._lock:
            found = self._secrets.get(user_id)
            if found is None:
                raise TotpError("not_enrolled", "No authenticator app is set up for this account.")
            totp = pyotp.TOTP(found.secret)
            step = int(now // totp.interval)
            for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
                candidate = step + offset
                if candidate <= found.last_step:
                    continue  # a code counts once
                if pyotp.utils.strings_equal(totp.at(candidate * totp.interval), digits):
                    found.last_step = candidate
                    found.confirmed = True
                    return True
            return False
