"""The dev tenant: per-user authenticators, the action's default outcome and dev rules.

What `track` answers depends on this (reference/authsignal-api.md):

- a rule for the tracked email (or else the action's default outcome) of `BLOCK` or
  `REVIEW_REQUIRED` answers that state;
- a user with no authenticator gets `ALLOW` with `isEnrolled: false` (the URL enrols a
  first method);
- an enrolled user gets `CHALLENGE_REQUIRED` when the outcome is `CHALLENGE`, else `ALLOW`.

A user becomes enrolled when a challenge succeeds, or when the server API enrols an
authenticator for them (`enroll` both ways). Until then, as in Authsignal, a bare track token
may enrol the user's FIRST authenticator of any enabled method (`first_enrolment` says when
"no authenticator" is judged: `now`, `at_track`, or `either`, the default, since Authsignal's
documentation does not say; server-side checks must hold under all three). Per-method modules
use `enroll`, `authenticators`, `enrolled_methods` and `remove`; every method is
thread-safe on its own (one lock, never held while calling out).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Callable
from urllib.parse import urlsplit

CHALLENGE = "CHALLENGE"
ALLOW = "ALLOW"
BLOCK = "BLOCK"
REVIEW_REQUIRED = "REVIEW_REQUIRED"
CHALLENGE_REQUIRED = "CHALLENGE_REQUIRED"
# What the portal lets an action's default outcome or a rule be.
OUTCOMES = (CHALLENGE, ALLOW, BLOCK, REVIEW_REQUIRED)
FIRST_ENROLMENT = ("either", "now", "at_track")


def check_outcome(value: object) -> str:
    if value not in OUTCOMES:
        raise ValueError(f"an outcome must be one of {', '.join(OUTCOMES)}, not {value!r}")
    return value  # type: ignore[return-value]


def check_first_enrolment(value: object) -> str:
    if value not in FIRST_ENROLMENT:
        raise ValueError(f"firstEnrolment must be one of {', '.join(FIRST_ENROLMENT)}, not {value!r}")
    return value  # type: ignore[return-value]


def check_origin(value: object) -> str | None:
    """A custom domain is an origin (the emulator must answer there: e.g. the same port
    under another host name, http://localhost:PORT for http://127.0.0.1:PORT)."""
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"customDomain must be an origin like http://localhost:8001, not {value!r}")
    return f"{parts.scheme}://{parts.netloc}"


class Tenant:
    def __init__(self, default_outcome: str = CHALLENGE, rules: dict[str, str] | None = None,
                 custom_domain: str | None = None, clock: Callable[[], float] = time.time,
                 first_enrolment: str = "either"):
        self._clock = clock
        self._lock = threading.Lock()
        self._initial = (check_outcome(default_outcome), self._checked_rules(rules or {}),
                         check_origin(custom_domain), check_first_enrolment(first_enrolment))
        self._authenticators: dict[str, list[dict]] = {}
        self.reset()

    @staticmethod
    def _checked_rules(rules: object) -> dict[str, str]:
        if not isinstance(rules, dict):
            raise ValueError("rules must be an object of email -> outcome (null removes a rule)")
        checked = {}
        for email, outcome in rules.items():
            if not isinstance(email, str) or "@" not in email:
                raise ValueError(f"a rule's key must be an email address, not {email!r}")
            checked[email.strip().lower()] = None if outcome is None else check_outcome(outcome)
        return checked

    # ---- configuration (dev endpoint, CLI) -----------------------------------

    def reset(self) -> None:
        """Back to the configuration the emulator started with, and nobody enrolled."""
        with self._lock:
            self._default_outcome, rules, self._custom_domain, self.first_enrolment = self._initial
            self._rules = {k: v for k, v in rules.items() if v is not None}
            self._authenticators = {}

    def configure(self, body: object) -> dict:
        """`{"defaultOutcome": ..., "rules": {email: outcome or null}, "customDomain": origin
        or null, "firstEnrolment": ...}`; rules merge."""
        if not isinstance(body, dict) or set(body) - {"defaultOutcome", "rules", "customDomain", "firstEnrolment"}:
            raise ValueError('send {"defaultOutcome": OUTCOME, "rules": {EMAIL: OUTCOME or null}, '
                             '"customDomain": ORIGIN or null, "firstEnrolment": "either" | "now" | "at_track"}')
        default = check_outcome(body["defaultOutcome"]) if "defaultOutcome" in body else None
        first = check_first_enrolment(body["firstEnrolment"]) if "firstEnrolment" in body else None
        rules = self._checked_rules(body.get("rules", {}))
        domain = check_origin(body.get("customDomain"))
        with self._lock:
            if "customDomain" in body:
                self._custom_domain = domain
            if default:
                self._default_outcome = default
            if first:
                self.first_enrolment = first
            for email, outcome in rules.items():
                if outcome is None:
                    self._rules.pop(email, None)
                else:
                    self._rules[email] = outcome
        return self.describe()

    def describe(self) -> dict:
        with self._lock:
            return {"defaultOutcome": self._default_outcome, "rules": dict(self._rules),
                    "customDomain": self._custom_domain, "firstEnrolment": self.first_enrolment}

    def ui_base(self, default: str) -> str:
        """Where the pre-built UI is served: the tenant's custom domain when it has one."""
        with self._lock:
            return self._custom_domain or default

    # ---- track's decision ----------------------------------------------------

    def outcome_for(self, email: str | None) -> str:
        with self._lock:
            if email and email.strip().lower() in self._rules:
                return self._rules[email.strip().lower()]
            return self._default_outcome

    def decide(self, user_id: str, email: str | None) -> str:
        """The state `track` answers for this user and email now."""
        outcome = self.outcome_for(email)
        if outcome in (BLOCK, REVIEW_REQUIRED):
            return outcome
        if not self.enrolled_methods(user_id):
            return ALLOW  # with isEnrolled false: the URL enrols a first method
        return CHALLENGE_REQUIRED if outcome == CHALLENGE else ALLOW

    # ---- authenticators ------------------------------------------------------

    def enroll(self, user_id: str, method: str, **details: object) -> dict:
        """Record that the user proved `method`; the same method with the same details
        (e.g. the same email address) is one authenticator, however often it is proved."""
        with self._lock:
            mine = self._authenticators.setdefault(user_id, [])
            for existing in mine:
                if existing["verificationMethod"] == method and existing["details"] == details:
                    existing["lastVerifiedAt"] = self._clock()
                    return dict(existing)
            now = self._clock()
            authenticator = {
                "userAuthenticatorId": str(uuid.uuid4()),
                "verificationMethod": method,
                "details": dict(details),
                "createdAt": now,
                "lastVerifiedAt": now,
            }
            mine.append(authenticator)
            return dict(authenticator)

    def authenticators(self, user_id: str) -> list[dict]:
        with self._lock:
            return [dict(a, details=dict(a["details"])) for a in self._authenticators.get(user_id, [])]

    def email_of(self, user_id: str) -> str | None:
        """The address of the user's email authenticator: where the tenant sends codes and links."""
        for authenticator in self.authenticators(user_id):
            if authenticator["verificationMethod"] in ("EMAIL_OTP", "EMAIL_MAGIC_LINK"):
                return authenticator["details"].get("email")
        return None

    def enrolled_methods(self, user_id: str) -> list[str]:
        """The user's methods, in the order they were first enrolled, each once."""
        methods: list[str] = []
        for authenticator in self.authenticators(user_id):
            if authenticator["verificationMethod"] not in methods:
                methods.append(authenticator["verificationMethod"])
        return methods

    def remove(self, user_id: str, authenticator_id: str) -> bool:
        with self._lock:
            mine = self._authenticators.get(user_id, [])
            kept = [a for a in mine if a["userAuthenticatorId"] != authenticator_id]
            self._authenticators[user_id] = kept
            return len(kept) != len(mine)
