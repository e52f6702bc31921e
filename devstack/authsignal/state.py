"""The emulator's state: actions, OTP challenges, the dev mailbox, counters and faults.

Everything lives in memory behind one lock; the HTTP layer (server.py) only parses
requests and renders what this module returns.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from .tenant import BLOCK, REVIEW_REQUIRED, Tenant
from .tokens import TokenError, TokenSigner

ACTION_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TRACK_KEYS = {
    "redirectUrl": str,
    "redirectToSettings": bool,
    "email": str,
    "phoneNumber": str,
    "ipAddress": str,
    "userAgent": str,
    "deviceId": str,
    "scope": str,
    "custom": dict,
    "idempotencyKey": str,
    "locale": str,
}
EMAIL_OTP = "EMAIL_OTP"
SUBJECT = "Your sign-in code"
MAX_WRONG_CODES = 5
MAX_RESENDS = 5
OTP_TTL_SECONDS = 600
COUNTED_OPERATIONS = (
    "track",
    "validate",
    "get_action",
    "challenge_page",
    "challenge_verify",
    "challenge_resend",
)
FAULTABLE_OPERATIONS = ("track", "validate", "get_action")
FAULTS = ("500", "401", "timeout", "garbage")

WRONG_CODE = "That code is not right. Check the latest email and try again."
TOO_MANY_WRONG = "Too many wrong codes. Close this window and sign in again."
EXPIRED_LINK = "This sign-in link has expired. Close this window and sign in again."
INVALID_LINK = "This sign-in link is not valid. Close this window and sign in again."
BLOCKED = "This sign-in was blocked. Close this window."


class ApiError(Exception):
    """An error of the server API (/v1): Authsignal's error shape."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description

    def body(self) -> dict:
        return {"error": self.code, "errorCode": self.code, "errorDescription": self.description}


class ChallengeError(Exception):
    """An error of the challenge page's own endpoints: a message for a person."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": self.message, "errorCode": self.code}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


@dataclass
class Action:
    user_id: str
    action: str
    idempotency_key: str
    email: str | None
    created_at: float
    state: str = "CHALLENGE_REQUIRED"
    state_updated_at: float = 0.0
    verification_method: str | None = None
    code_hash: bytes | None = None
    code_sent_at: float = 0.0
    sends: int = 0
    wrong_codes: int = 0
    attributes: dict = field(default_factory=dict)

    def public(self) -> dict:
        return {
            "state": self.state,
            "stateUpdatedAt": iso(self.state_updated_at),
            "createdAt": iso(self.created_at),
            "userId": self.user_id,
            "action": self.action,
            "idempotencyKey": self.idempotency_key,
            "verificationMethod": self.verification_method,
        }


@dataclass
class ChallengeView:
    """What the challenge page needs to render."""

    state: str  # ready | succeeded | failed | blocked | no_email | expired | invalid
    masked_email: str = ""


class Store:
    def __init__(
        self,
        signer: TokenSigner,
        base_url: str,
        tenant_id: str = "",
        clock: Callable[[], float] = time.time,
        mail_sink: Callable[[dict], None] | None = None,
        tenant: Tenant | None = None,
    ):
        self.signer = signer
        self.tenant = tenant or Tenant(clock=clock)
        self.base_url = base_url
        self.tenant_id = tenant_id
        self._clock = clock
        self._mail_sink = mail_sink or (lambda message: None)
        self._lock = threading.Lock()
        # Codes are stored as keyed hashes; only the mailbox keeps them readable.
        self._code_key = secrets.token_bytes(32)
        self._actions: dict[str, Action] = {}
        self._mailbox: list[dict] = []
        self._calls = dict.fromkeys(COUNTED_OPERATIONS, 0)
        self._seconds: dict[str, float] = {}  # handling time per server API operation
        self._faults: dict[str, tuple[str, int]] = {}

    # ---- dev endpoints -------------------------------------------------------

    def count(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] = self._calls.get(operation, 0) + 1

    def add_time(self, operation: str, seconds: float) -> None:
        with self._lock:
            self._seconds[operation] = self._seconds.get(operation, 0.0) + seconds

    def stats(self) -> dict:
        with self._lock:
            return {"calls": dict(self._calls), "invocations": {},
                    "seconds": {"calls": dict(self._seconds), "invocations": {}}}

    def reset(self, clear_state: bool) -> None:
        with self._lock:
            self._calls = dict.fromkeys(COUNTED_OPERATIONS, 0)
            self._seconds = {}
            self._faults.clear()
            if clear_state:
                self._actions.clear()
                self._mailbox.clear()
        if clear_state:
            self.tenant.reset()

    def set_fault(self, operation: object, fault: object, count: object) -> dict:
        if operation not in FAULTABLE_OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(FAULTABLE_OPERATIONS)}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        with self._lock:
            if count:
                self._faults[operation] = (fault, count)
            else:
                self._faults.pop(operation, None)
        return {"operation": operation, "fault": fault, "count": count}

    def take_fault(self, operation: str) -> str | None:
        """The fault to apply to this call, if one is armed (and use it up)."""
        with self._lock:
            armed = self._faults.get(operation)
            if not armed:
                return None
            fault, remaining = armed
            if remaining > 1:
                self._faults[operation] = (fault, remaining - 1)
            else:
                del self._faults[operation]
            return fault

    def mailbox(self, email: str) -> list[dict]:
        wanted = email.strip().lower()
        with self._lock:
            return [dict(m) for m in self._mailbox if m["to"].lower() == wanted]

    # ---- server API ----------------------------------------------------------

    def track(self, user_id: str, action: str, body: object) -> dict:
        if not user_id or len(user_id) > 255:
            raise ApiError(400, "invalid_request", "userId must be 1 to 255 characters.")
        if not ACTION_RE.match(action):
            raise ApiError(
                400,
                "invalid_request",
                "action must be 1 to 64 characters: letters, digits, '_' or '-'.",
            )
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
        for key, kind in TRACK_KEYS.items():
            if key in body and body[key] is not None and not isinstance(body[key], kind):
                raise ApiError(400, "invalid_request", f"{key} must be a {kind.__name__}.")
        key = body.get("idempotencyKey") or str(uuid.uuid4())
        if len(key) > 200:
            raise ApiError(400, "invalid_request", "idempotencyKey is too long.")
        email = body.get("email") or None
        now = self._clock()
        # Decided outside the store's lock: the tenant has its own.
        decided = self.tenant.decide(user_id, email)
        with self._lock:
            record = self._actions.get(key)
            if record is None:
                record = Action(
                    user_id=user_id,
                    action=action,
                    idempotency_key=key,
                    email=email,
                    created_at=now,
                    state=decided,
                    state_updated_at=now,
                    attributes={k: v for k, v in body.items() if k in TRACK_KEYS},
                )
                self._actions[key] = record
            elif (record.user_id, record.action) != (user_id, action):
                # An idempotency key names one action; reusing it elsewhere is a bug.
                raise ApiError(
                    400, "invalid_request", "idempotencyKey is already used by another action."
                )
            state = record.state
        enrolled = self.tenant.enrolled_methods(user_id)
        token = self.signer.issue(
            {
                "sub": user_id,
                "actionCode": action,
                "idempotencyKey": key,
                "tenantId": self.tenant_id,
            }
        )
        return {
            "state": state,
            "idempotencyKey": key,
            "url": f"{self.tenant.ui_base(self.base_url)}/challenge?token={token}",
            "token": token,
            "isEnrolled": bool(enrolled),
            "enrolledVerificationMethods": enrolled,
            "allowedVerificationMethods": [EMAIL_OTP],
            "defaultVerificationMethod": EMAIL_OTP,
        }

    def validate(self, body: object) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "invalid_request", "token is required.")
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            raise ApiError(400, exc.code, exc.description) from None
        with self._lock:
            record = self._actions.get(claims.get("idempotencyKey"))
            if record is None:
                raise ApiError(400, "invalid_token", "The token refers to no known action.")
            if body.get("userId") is not None and body["userId"] != record.user_id:
                return {"isValid": False, "error": "User is invalid."}
            if body.get("action") is not None and body["action"] != record.action:
                return {"isValid": False, "error": "Action is invalid."}
            result = record.public()
        del result["createdAt"]
        result["isValid"] = result["state"] == "CHALLENGE_SUCCEEDED"
        result["actionCode"] = result["action"]  # deprecated, still sent by the live API
        return result

    def get_action(self, user_id: str, action: str, idempotency_key: str) -> dict:
        with self._lock:
            record = self._actions.get(idempotency_key)
            if record is None or (record.user_id, record.action) != (user_id, action):
                raise ApiError(404, "not_found", "No action matches this user, action and idempotencyKey.")
            return record.public()

    # ---- pre-built UI (email OTP) --------------------------------------------

    def _action_for_token(self, token: object) -> Action:
        """Caller holds the lock."""
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            if exc.code == "expired_token":
                raise ChallengeError(400, "expired_token", EXPIRED_LINK) from None
            raise ChallengeError(400, "invalid_token", INVALID_LINK) from None
        record = self._actions.get(claims.get("idempotencyKey"))
        if record is None:
            raise ChallengeError(400, "invalid_token", INVALID_LINK)
        return record

    def _send_code(self, record: Action) -> None:
        """Caller holds the lock."""
        code = f"{secrets.randbelow(10**6):06d}"
        now = self._clock()
        record.code_hash = self._hash(record, code)
        record.code_sent_at = now
        record.sends += 1
        message = {"to": record.email, "subject": SUBJECT, "code": code, "sentAt": iso(now)}
        self._mailbox.append(message)
        self._mail_sink(dict(message))

    def _hash(self, record: Action, code: str) -> bytes:
        data = f"{record.idempotency_key}:{code}".encode()
        return hmac.new(self._code_key, data, hashlib.sha256).digest()

    def open_challenge(self, token: object) -> ChallengeView:
        """The page was opened: send the first code if none was sent yet."""
        with self._lock:
            try:
                record = self._action_for_token(token)
            except ChallengeError as exc:
                return ChallengeView(state="expired" if exc.code == "expired_token" else "invalid")
            if record.state == "CHALLENGE_SUCCEEDED":
                return ChallengeView(state="succeeded")
            if record.state == "CHALLENGE_FAILED":
                return ChallengeView(state="failed")
            if record.state in (BLOCK, REVIEW_REQUIRED):
                return ChallengeView(state="blocked")
            if not record.email:
                return ChallengeView(state="no_email")
            if record.sends == 0:
                self._send_code(record)
            return ChallengeView(state="ready", masked_email=mask_email(record.email))

    def verify_code(self, token: object, code: object) -> dict:
        with self._lock:
            record = self._action_for_token(token)
            if record.state == "CHALLENGE_SUCCEEDED":
                return {"token": token}
            if record.state == "CHALLENGE_FAILED":
                raise ChallengeError(400, "challenge_failed", TOO_MANY_WRONG)
            if record.state in (BLOCK, REVIEW_REQUIRED):
                raise ChallengeError(400, "blocked", BLOCKED)
            digits = re.sub(r"\s+", "", code) if isinstance(code, str) else ""
            if not re.fullmatch(r"[0-9]{6}", digits):
                raise ChallengeError(400, "invalid_code_format", "Enter the 6-digit code from the email.")
            if record.code_hash is None:
                raise ChallengeError(400, "no_code_sent", "No code was sent yet. Choose Resend code.")
            if self._clock() - record.code_sent_at > OTP_TTL_SECONDS:
                raise ChallengeError(400, "code_expired", "That code has expired. Choose Resend code to get a new one.")
            now = self._clock()
            if not hmac.compare_digest(record.code_hash, self._hash(record, digits)):
                record.wrong_codes += 1
                if record.wrong_codes >= MAX_WRONG_CODES:
                    record.state = "CHALLENGE_FAILED"
                    record.state_updated_at = now
                    record.code_hash = None
                    raise ChallengeError(400, "challenge_failed", TOO_MANY_WRONG)
                raise ChallengeError(400, "invalid_code", WRONG_CODE)
            record.state = "CHALLENGE_SUCCEEDED"
            record.state_updated_at = now
            record.verification_method = EMAIL_OTP
            record.code_hash = None  # a code works once
            user_id, email = record.user_id, record.email
        # Proving the email enrols it (the first success turns ALLOW+isEnrolled:false
        # into CHALLENGE_REQUIRED on the next track).
        self.tenant.enroll(user_id, EMAIL_OTP, email=email.lower())
        return {"token": token}

    def resend(self, token: object) -> dict:
        with self._lock:
            record = self._action_for_token(token)
            if record.state == "CHALLENGE_SUCCEEDED":
                raise ChallengeError(400, "challenge_succeeded", "This sign-in is already verified.")
            if record.state == "CHALLENGE_FAILED":
                raise ChallengeError(400, "challenge_failed", TOO_MANY_WRONG)
            if record.state in (BLOCK, REVIEW_REQUIRED):
                raise ChallengeError(400, "blocked", BLOCKED)
            if not record.email:
                raise ChallengeError(400, "no_email", "There is no email address to send a code to.")
            if record.sends > MAX_RESENDS:  # the first send plus MAX_RESENDS more
                raise ChallengeError(429, "too_many_codes", "Too many codes were sent. Close this window and sign in again.")
            self._send_code(record)
            return {"sent": True, "to": mask_email(record.email)}
