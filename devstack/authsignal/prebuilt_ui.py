"""The pre-built UI's operations: what the challenge page asks of the tenant, per method.

The page (static/challenge.*) is served by server.py, and the client API's email, SMS and
authenticator-app calls (client_api.py) land here too; each call comes with the action's
token. A method proves the action once (its `verificationMethod` is the first one that
succeeded); setting up another method needs that proof first, or (as in Authsignal) a user
with no authenticator at all, who may set up any first method (Store.may_add_authenticator).
Codes and links go to the user's email authenticator, else to the email passed to track. Method logic lives in `methods/`; the per-user authenticators in the tenant.
Passkeys are offered only where the page is served on the relying party's domain (a
tenant's custom domain), as in the real UI.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from .mailbox import EMAIL, Mailbox
from .methods import magic_link, otp, sms
from .methods.otp import Codes, OtpError
from .methods.passkey import PASSKEY, Passkeys, PasskeyError
from .methods.totp import AUTHENTICATOR_APP, Totp, TotpError
from .state import EMAIL_OTP, Action, ChallengeError, Store, mask_email

EMAIL_SUBJECT = "Your sign-in code"
# Every method the dev tenant can offer, in the order the chooser lists them.
ALL_METHODS = (EMAIL_OTP, magic_link.EMAIL_MAGIC_LINK, sms.SMS, AUTHENTICATOR_APP, PASSKEY)
EMAIL_METHODS = (EMAIL_OTP, magic_link.EMAIL_MAGIC_LINK)
NOT_PROVEN = "First prove it is you with the code we emailed you; then you can set up another method."
BLOCKED = "This sign-in was blocked. Close this window."
TOO_MANY_WRONG = "Too many wrong codes. Close this window and sign in again."
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def parse_methods(text: str) -> tuple[str, ...]:
    """`EMAIL_OTP,SMS` → the methods turned on (a dev-stack option); checked."""
    chosen = tuple(m.strip().upper() for m in text.split(",") if m.strip())
    unknown = [m for m in chosen if m not in ALL_METHODS]
    if unknown or not chosen:
        raise ValueError(f"methods must be some of {', '.join(ALL_METHODS)} (got {text!r})")
    return tuple(m for m in ALL_METHODS if m in chosen)


@dataclass
class View:
    """What the challenge page needs to render."""

    state: str  # ready | succeeded | failed | blocked | no_email | expired | invalid
    masked_email: str = ""
    page: dict = field(default_factory=dict)  # for the page's script (data-view)


class PrebuiltUi:
    def __init__(self, store: Store, mailbox: Mailbox, methods: tuple[str, ...] = ALL_METHODS,
                 totp: Totp | None = None, passkeys: Passkeys | None = None):
        self.store = store
        self.passkeys = passkeys or Passkeys()
        self.mailbox = mailbox
        self.methods = methods
        self.totp = totp or Totp()
        self.codes = Codes()
        self.links = magic_link.Links()

    def reset(self) -> None:
        self.totp.reset()
        self.links.clear()
        self.codes = Codes()

    # ---- helpers -------------------------------------------------------------

    def _record(self, token: object) -> Action:
        return self.store.page_action(token)

    def _usable(self, record: Action) -> None:
        if record.state in ("BLOCK", "REVIEW_REQUIRED"):
            raise ChallengeError(400, "blocked", BLOCKED)
        if record.state == "CHALLENGE_FAILED":
            raise ChallengeError(400, "challenge_failed", TOO_MANY_WRONG)

    def _on(self, method: str) -> None:
        if method not in self.methods:
            raise ChallengeError(400, "method_not_enabled", "This tenant has not turned this method on.")

    def _may_add(self, record: Action) -> None:
        if not self.store.may_add_authenticator(record):
            raise ChallengeError(403, "not_proven", NOT_PROVEN)

    def _email_to(self, record: Action) -> str | None:
        return self.store.tenant.email_of(record.user_id) or record.email

    def _check_code(self, record: Action, channel: str, code: object, where: str) -> None:
        try:
            self.codes.check(record.idempotency_key, channel, code, where)
        except OtpError as exc:
            if exc.code == "challenge_failed":
                self.store.fail(record)
            raise ChallengeError(exc.status, exc.code, exc.message) from None

    def _send_email_code(self, record: Action, to: str) -> dict:
        try:
            code = self.codes.issue(record.idempotency_key, EMAIL)
        except OtpError as exc:
            raise ChallengeError(exc.status, exc.code, exc.message) from None
        self.mailbox.send(to, EMAIL, EMAIL_SUBJECT, code=code)
        return {"sent": True, "to": mask_email(to)}

    def _phone_of(self, user_id: str) -> str | None:
        for authenticator in self.store.tenant.authenticators(user_id):
            if authenticator["verificationMethod"] == sms.SMS:
                return authenticator["details"].get("phoneNumber")
        return None

    # ---- the page ------------------------------------------------------------

    def open(self, token: object, origin: str = "") -> View:
        """The page was opened (on `origin`): for a new or email-only user, the email code
        box (the first code goes out now); otherwise the chooser."""
        try:
            record = self._record(token)
        except ChallengeError as exc:
            return View(state="expired" if exc.code == "expired_token" else "invalid")
        if record.state == "CHALLENGE_SUCCEEDED":
            return View(state="succeeded")
        if record.state == "CHALLENGE_FAILED":
            return View(state="failed")
        if record.state in ("BLOCK", "REVIEW_REQUIRED"):
            return View(state="blocked")
        email = self._email_to(record)
        if not email:
            return View(state="no_email")
        enrolled = set(self.store.tenant.enrolled_methods(record.user_id))
        offered = [m for m in self.methods if m != PASSKEY or self.passkeys.serves(origin)]
        first = "EMAIL_OTP" if EMAIL_OTP in self.methods and enrolled <= {EMAIL_OTP} else "CHOOSE"
        if first == "EMAIL_OTP" and self.codes.sends(record.idempotency_key, EMAIL) == 0:
            self._send_email_code(record, email)
        masked = mask_email(email)
        return View(state="ready", masked_email=masked, page={
            "email": masked,
            "first": first,
            "methods": [{"method": m, "enrolled": m in enrolled or (m in EMAIL_METHODS and bool(enrolled & set(EMAIL_METHODS)))}
                        for m in offered],
        })

    def status(self, token: object) -> dict:
        record = self._record(token)
        return {"state": record.state}

    # ---- email OTP -----------------------------------------------------------

    def email_send(self, token: object, email: object = None) -> dict:
        """Without `email`: a code to the user's address. With one (the client API's
        enrolment): a code to that address, which becomes an authenticator once proved."""
        record = self._record(token)
        self._on(EMAIL_OTP)
        if email is not None:
            self._usable(record)
            self._may_add(record)
            if not isinstance(email, str) or not EMAIL_RE.fullmatch(email.strip()):
                raise ChallengeError(400, "invalid_email", "Give an email address, e.g. name@example.com.")
            self.store.set_pending(record, email=email.strip().lower())
            return self._send_email_code(record, email.strip().lower())
        if record.state == "CHALLENGE_SUCCEEDED":
            raise ChallengeError(400, "challenge_succeeded", "This sign-in is already verified.")
        self._usable(record)
        to = record.pending.get("email") or self._email_to(record)
        if not to:
            raise ChallengeError(400, "no_email", "There is no email address to send a code to.")
        return self._send_email_code(record, to)

    def email_verify(self, token: object, code: object) -> dict:
        record = self._record(token)
        pending = record.pending.get("email")
        if not pending and record.state == "CHALLENGE_SUCCEEDED" and record.verification_method == EMAIL_OTP:
            return {"token": token}
        self._usable(record)
        self._on(EMAIL_OTP)
        self._check_code(record, EMAIL, code, "the email")
        self.store.succeed(record, EMAIL_OTP)
        # Proving an address enrols it (ALLOW + isEnrolled:false becomes enrolled).
        self.store.tenant.enroll(record.user_id, EMAIL_OTP, email=(pending or self._email_to(record)).lower())
        self.store.set_pending(record, email=None)
        return {"token": token}

    # ---- email magic link ----------------------------------------------------

    def link_send(self, token: object) -> dict:
        record = self._record(token)
        self._on(magic_link.EMAIL_MAGIC_LINK)
        self._usable(record)
        if record.state == "CHALLENGE_SUCCEEDED":
            raise ChallengeError(400, "challenge_succeeded", "This sign-in is already verified.")
        to = self._email_to(record)
        if not to:
            raise ChallengeError(400, "no_email", "There is no email address to send a link to.")
        if self.codes.sends(record.idempotency_key, "LINK") >= otp.MAX_SENDS:
            raise ChallengeError(429, "too_many_links", "Too many links were sent. Close this window and sign in again.")
        self.codes.issue(record.idempotency_key, "LINK")  # counts sends only
        secret = self.links.issue(record.idempotency_key)
        link = f"{self.store.base_url}/challenge/link?secret={secret}"
        self.mailbox.send(to, EMAIL, magic_link.SUBJECT, link=link)
        return {"sent": True, "to": mask_email(to)}

    def link_open(self, secret: object) -> bool:
        key = self.links.redeem(secret)
        record = self.store.action_by_key(key) if key else None
        if record is None or record.state in ("BLOCK", "REVIEW_REQUIRED", "CHALLENGE_FAILED"):
            return False
        self.store.succeed(record, magic_link.EMAIL_MAGIC_LINK)
        self.store.tenant.enroll(record.user_id, magic_link.EMAIL_MAGIC_LINK, email=self._email_to(record).lower())
        return True

    # ---- SMS -----------------------------------------------------------------

    def sms_send(self, token: object, phone: object = None) -> dict:
        """With a phone number: enrolment (needs a proven first method, or no authenticator
        at all). Without: a code to the user's enrolled number."""
        record = self._record(token)
        self._on(sms.SMS)
        self._usable(record)
        if phone is not None:
            self._may_add(record)
            try:
                number = sms.normalize_phone(phone)
            except sms.PhoneError as exc:
                raise ChallengeError(400, exc.code, str(exc)) from None
            self.store.set_pending(record, phone=number)
        else:
            number = record.pending.get("phone") or self._phone_of(record.user_id)
            if not number:
                raise ChallengeError(400, "not_enrolled", "No phone number is set up for this account. Set up text messages first.")
        try:
            code = self.codes.issue(record.idempotency_key, sms.SMS)
        except OtpError as exc:
            raise ChallengeError(exc.status, exc.code, exc.message) from None
        self.mailbox.send(number, sms.SMS, sms.SUBJECT, code=code)
        return {"sent": True, "to": sms.mask_phone(number)}

    def sms_verify(self, token: object, code: object) -> dict:
        record = self._record(token)
        self._on(sms.SMS)
        self._usable(record)
        pending = record.pending.get("phone")
        if not pending and not self._phone_of(record.user_id):
            raise ChallengeError(400, "not_enrolled", "No phone number is set up for this account.")
        self._check_code(record, sms.SMS, code, "the text message")
        if pending:
            self.store.tenant.enroll(record.user_id, sms.SMS, phoneNumber=pending)
            self.store.set_pending(record, phone=None)
        self.store.succeed(record, sms.SMS)
        return {"token": token}

    # ---- authenticator app ---------------------------------------------------

    def totp_setup(self, token: object) -> dict:
        record = self._record(token)
        self._on(AUTHENTICATOR_APP)
        self._usable(record)
        self._may_add(record)
        try:
            return self.totp.start_enrolment(record.user_id, record.email or record.user_id)
        except TotpError as exc:
            raise ChallengeError(400, exc.code, exc.message) from None

    def totp_verify(self, token: object, code: object) -> dict:
        record = self._record(token)
        self._on(AUTHENTICATOR_APP)
        self._usable(record)
        enrolled = self.totp.enrolled(record.user_id)
        if not enrolled and not self.store.may_add_authenticator(record):
            # An unfinished setup from another sign-in proves nothing.
            raise ChallengeError(400, "not_enrolled", "No authenticator app is set up for this account.")
        try:
            right = self.totp.verify(record.user_id, code)
        except TotpError as exc:
            raise ChallengeError(400, exc.code, exc.message) from None
        if not right:
            if self.store.wrong_code(record) >= otp.MAX_WRONG_CODES:
                raise ChallengeError(400, "challenge_failed", TOO_MANY_WRONG)
            raise ChallengeError(400, "invalid_code", "That code is not right. Enter the code your app shows now.")
        if not enrolled:
            self.store.tenant.enroll(record.user_id, AUTHENTICATOR_APP)
        self.store.succeed(record, AUTHENTICATOR_APP)
        return {"token": token}

    # ---- passkey (on the relying party's domain only) -------------------------

    @staticmethod
    @contextmanager
    def _passkey_errors():
        """The passkey module's errors, as the page's errors (same status and code)."""
        try:
            yield
        except PasskeyError as exc:
            raise ChallengeError(exc.status, exc.code, exc.description) from None

    def _passkey_record(self, token: object, origin: object) -> tuple[Action, str]:
        record = self._record(token)
        self._on(PASSKEY)
        self._usable(record)
        with self._passkey_errors():
            return record, self.passkeys.check_origin(origin if isinstance(origin, str) else None)

    def passkey_options(self, token: object, origin: object) -> dict:
        record, _ = self._passkey_record(token, origin)
        if not self.passkeys.credentials_of(record.user_id):
            raise ChallengeError(400, "not_enrolled", "No passkey is set up for this account. Use another method.")
        return self.passkeys.authentication_options(user_id=record.user_id)

    def passkey_verify(self, token: object, challenge_id: object, credential: object, origin: object) -> dict:
        record, origin = self._passkey_record(token, origin)
        with self._passkey_errors():
            self.passkeys.authenticate(challenge_id, credential, origin, user_id=record.user_id)
        self.store.succeed(record, PASSKEY)
        return {"token": token}

    def passkey_setup(self, token: object, origin: object) -> dict:
        record, _ = self._passkey_record(token, origin)
        self._may_add(record)
        with self._passkey_errors():
            return self.passkeys.registration_options(record.user_id, record.email or record.user_id)

    def passkey_register(self, token: object, challenge_id: object, credential: object, origin: object) -> dict:
        """Enrols the passkey; an action already proven stays proven by the method that
        proved it first, and a user's first authenticator proves the action (as Authsignal)."""
        record, origin = self._passkey_record(token, origin)
        self._may_add(record)
        with self._passkey_errors():
            added = self.passkeys.register(challenge_id, credential, origin, user_id=record.user_id)
        self.store.tenant.enroll(record.user_id, PASSKEY, credentialId=added.credential_id)
        self.store.succeed(record, PASSKEY)
        return {"token": token}
