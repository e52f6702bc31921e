"""The emulator's state: actions (track, validate, their tokens), counters and faults.

Everything lives in memory behind one lock; the HTTP layer (server.py) only parses
requests and renders what this module returns.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .mailbox import iso
from .tenant import Tenant
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
MAX_WRONG_CODES = 5
COUNTED_OPERATIONS = (
    "track",
    "validate",
    "get_action",
    "challenge_page",
    "challenge_verify",
    "challenge_resend",
    "client_api",
    "enroll_authenticator",
    "get_authenticators",
)
FAULTABLE_OPERATIONS = ("track", "validate", "get_action", "enroll_authenticator", "get_authenticators")
# What the server API may enrol for a user, and the detail each needs.
SERVER_ENROLMENT = {"EMAIL_OTP": "email", "EMAIL_MAGIC_LINK": "email", "SMS": "phoneNumber"}
FAULTS = ("500", "401", "timeout", "garbage")

EXPIRED_LINK = "This sign-in link has expired. Close this window and sign in again."
INVALID_LINK = "This sign-in link is not valid. Close this window and sign in again."


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
    enrolled_at_track: bool = True
    wrong_codes: int = 0
    attributes: dict = field(default_factory=dict)
    pending: dict = field(default_factory=dict)

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


class Store:
    def __init__(
        self,
        signer: TokenSigner,
        base_url: str,
        tenant_id: str = "",
        clock: Callable[[], float] = time.time,
        tenant: Tenant | None = None,
        methods: tuple = (EMAIL_OTP,),
    ):
        self.signer = signer
        self.tenant = tenant or Tenant(clock=clock)
        self.base_url = base_url
        self.tenant_id = tenant_id
        self.methods = methods  # what the tenant has turned on (track's allowedVerificationMethods)
        self._clock = clock
        self._lock = threading.Lock()
        self._actions: dict[str, Action] = {}
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
        enrolled = self.tenant.enrolled_methods(user_id)
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
                    enrolled_at_track=bool(enrolled),
                    attributes={k: v for k, v in body.items() if k in TRACK_KEYS},
                )
                self._actions[key] = record
            elif (record.user_id, record.action) != (user_id, action):
                # An idempotency key names one action; reusing it elsewhere is a bug.
                raise ApiError(
                    400, "invalid_request", "idempotencyKey is already used by another action."
                )
            state = record.state
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
            "allowedVerificationMethods": list(self.methods),
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

    def enroll_authenticator(self, user_id: str, body: object) -> dict:
        """`POST /v1/users/{userId}/authenticators`: the server vouches for the user's email or
        phone; it becomes an authenticator at once (verified), as the SDKs'
        `enroll_verified_authenticator` does."""
        if not user_id or len(user_id) > 255:
            raise ApiError(400, "invalid_request", "userId must be 1 to 255 characters.")
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
        method = body.get("verificationMethod")
        detail = SERVER_ENROLMENT.get(method) if isinstance(method, str) else None
        if detail is None:
            raise ApiError(400, "invalid_request",
                           f"verificationMethod must be one of {', '.join(SERVER_ENROLMENT)}.")
        if method not in self.methods:
            raise ApiError(400, "invalid_request", f"{method} is not enabled for this tenant.")
        value = body.get(detail)
        if detail == "email" and not (isinstance(value, str) and re.fullmatch(r"[^@\s]+@[^@\s]+", value)):
            raise ApiError(400, "invalid_request", "email must be an email address.")
        if detail == "phoneNumber" and not (isinstance(value, str) and re.fullmatch(r"\+[1-9][0-9]{6,14}", value)):
            raise ApiError(400, "invalid_request", "phoneNumber must be in E.164 format, e.g. +15550102030.")
        value = value.lower() if detail == "email" else value
        authenticator = self.tenant.enroll(user_id, method, **{detail: value})
        return {"authenticator": self.public_authenticator(user_id, authenticator)}

    def get_authenticators(self, user_id: str) -> list:
        """`GET /v1/users/{userId}/authenticators`: a list (empty for a user Authsignal does not know)."""
        return [self.public_authenticator(user_id, a) for a in self.tenant.authenticators(user_id)]

    @staticmethod
    def public_authenticator(user_id: str, authenticator: dict) -> dict:
        details = authenticator["details"]
        shown = {
            "userId": user_id,
            "userAuthenticatorId": authenticator["userAuthenticatorId"],
            "verificationMethod": authenticator["verificationMethod"],
            "createdAt": iso(authenticator["createdAt"]),
            "verifiedAt": iso(authenticator["createdAt"]),
            "lastVerifiedAt": iso(authenticator["lastVerifiedAt"]),
        }
        shown.update({key: details[key] for key in ("email", "phoneNumber") if details.get(key)})
        return shown

    # ---- pre-built UI (prebuilt_ui.py) ---------------------------------------

    def page_action(self, token: object) -> Action:
        """The action behind a challenge page's token, or a message for a person."""
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            if exc.code == "expired_token":
                raise ChallengeError(400, "expired_token", EXPIRED_LINK) from None
            raise ChallengeError(400, "invalid_token", INVALID_LINK) from None
        record = self.action_by_key(claims.get("idempotencyKey"))
        if record is None:
            raise ChallengeError(400, "invalid_token", INVALID_LINK)
        return record

    def action_by_key(self, key: object) -> Action | None:
        with self._lock:
            return self._actions.get(key) if isinstance(key, str) else None

    def succeed(self, record: Action, method: str) -> bool:
        """The challenge succeeded by `method`; the first proof names the method. True
        when this call was the first proof."""
        with self._lock:
            if record.state == "CHALLENGE_SUCCEEDED":
                return False
            record.state = "CHALLENGE_SUCCEEDED"
            record.state_updated_at = self._clock()
            record.verification_method = method
            return True

    def fail(self, record: Action) -> None:
        with self._lock:
            if record.state != "CHALLENGE_SUCCEEDED":
                record.state = "CHALLENGE_FAILED"
                record.state_updated_at = self._clock()

    def wrong_code(self, record: Action) -> int:
        """Counts a wrong code; the fifth fails the challenge. Returns the count."""
        with self._lock:
            record.wrong_codes += 1
            count = record.wrong_codes
        if count >= MAX_WRONG_CODES:
            self.fail(record)
        return count

    def set_pending(self, record: Action, **values: object) -> None:
        """A method's step in progress on this action (e.g. the phone being enrolled)."""
        with self._lock:
            for name, value in values.items():
                if value is None:
                    record.pending.pop(name, None)
                else:
                    record.pending[name] = value

    # ---- the client API (client_api.py) --------------------------------------

    def valid_action_name(self, action: str) -> bool:
        return bool(ACTION_RE.match(action))

    def action_for_client_token(self, token: str) -> Action:
        """The action a Bearer token of the client API belongs to."""
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            raise ApiError(401, exc.code, exc.description) from None
        with self._lock:
            record = self._actions.get(claims.get("idempotencyKey"))
        if record is None:
            raise ApiError(401, "invalid_token", "The token refers to no known action.")
        return record

    def check_completable(self, record: Action) -> None:
        """A challenge can still succeed only while the action waits for one."""
        if record.state in ("BLOCK", "REVIEW_REQUIRED", "CHALLENGE_FAILED"):
            raise ApiError(403, "challenge_not_allowed", f"This action's state is {record.state}: it cannot be challenged.")

    def may_add_authenticator(self, record: Action) -> bool:
        """As Authsignal does: a token whose challenge succeeded, or one the server tracked
        with scope add:authenticators, may add a method; so may a BARE token of a user with
        no authenticator yet ("they can enroll their first method directly"), which is why
        the app must never hand out such a token (docs/design.md, "First authenticator")."""
        scopes = str(record.attributes.get("scope") or "").split()
        if record.state == "CHALLENGE_SUCCEEDED" or "add:authenticators" in scopes:
            return True
        none_now = not self.tenant.authenticators(record.user_id)
        none_at_track = not record.enrolled_at_track
        return {"now": none_now, "at_track": none_at_track,
                "either": none_now or none_at_track}[self.tenant.first_enrolment]

    def check_may_add_authenticator(self, record: Action) -> None:
        if self.may_add_authenticator(record):
            return
        raise ApiError(
            403, "unauthorized",
            "Adding an authenticator needs a token whose challenge succeeded, or one tracked with scope 'add:authenticators'.",
        )

    def _token(self, record: Action) -> str:
        return self.signer.issue({
            "sub": record.user_id,
            "actionCode": record.action,
            "idempotencyKey": record.idempotency_key,
            "tenantId": self.tenant_id,
        })

    def complete(self, idempotency_key: str, method: str) -> str:
        """The action's challenge succeeded by `method`; a token for that same action."""
        with self._lock:
            record = self._actions[idempotency_key]
            self.check_completable(record)
            if record.state != "CHALLENGE_SUCCEEDED":
                record.state = "CHALLENGE_SUCCEEDED"
                record.state_updated_at = self._clock()
                record.verification_method = method
        return self._token(record)

    def completed_action(self, user_id: str, action: str, method: str) -> str:
        """A new action instance, already succeeded (a discoverable passkey sign-in): its
        idempotencyKey is its own, not one that any track issued."""
        now = self._clock()
        record = Action(
            user_id=user_id, action=action, idempotency_key=str(uuid.uuid4()), email=None,
            created_at=now, state="CHALLENGE_SUCCEEDED", state_updated_at=now,
            verification_method=method,
        )
        with self._lock:
            self._actions[record.idempotency_key] = record
        return self._token(record)
