"""Who may become whom: every rule about proving an identity, in one place.

Plain functions over plain data, keyword-only, each returning a typed answer; the clock and
Authsignal's records are passed in. The triggers and routes only gather the inputs and act
on the answer (tests/test_identity.py attacks each rule; tests/test_security_takeover.py
attacks them end to end).
"""
from typing import NamedTuple

# The only Authsignal methods that prove control of an email address.
EMAIL_METHODS = frozenset({"EMAIL_OTP", "EMAIL_MAGIC_LINK"})
SMS = "SMS"
# How recent a sign-in must be to add a passkey (a stolen access token, or one renewed by the
# refresh cookie, is older): five minutes covers "sign in, then choose Add a passkey".
RECENT_PROOF_SECONDS = 300


class FirstAuthenticator(NamedTuple):
    """What Create must do before a round's token leaves the backend.

    `enrol` names the authenticator to give a user Authsignal has none for (their own email,
    or else their phone), so that the first round can only be answered from that inbox or
    phone: a bare track token of a user with no authenticator may enrol ANY first method in
    Authsignal (docs/design.md, "First authenticator"). `refuse` is set when there is nothing
    to enrol that a stranger could not claim."""

    enrol: bool
    verification_method: str | None = None
    email: str | None = None
    phone_number: str | None = None
    refuse: bool = False


def first_authenticator(*, enrolled, email, phone_number, phone_number_verified=False, allowed_methods=None):
    """`enrolled`: track's `isEnrolled`; `email`, `phone_number`: the Cognito user's (a phone
    only once the pool verified it: anyone may type a number, and the code would go there);
    `allowed_methods`: track's `allowedVerificationMethods` (None: not said, EMAIL_OTP assumed)."""
    if enrolled is not False:
        return FirstAuthenticator(enrol=False)
    allowed = set(allowed_methods) if isinstance(allowed_methods, list) else {"EMAIL_OTP", SMS}
    email_method = next((m for m in ("EMAIL_OTP", "EMAIL_MAGIC_LINK") if m in allowed), None)
    if email and email_method:
        return FirstAuthenticator(enrol=True, verification_method=email_method, email=email)
    if phone_number and phone_number_verified is True and SMS in allowed:
        return FirstAuthenticator(enrol=True, verification_method=SMS, phone_number=phone_number)
    return FirstAuthenticator(enrol=False, refuse=True)


class EmailProof(NamedTuple):
    proven: bool
    reason: str  # for the log: never an address


def _same_address(a, b):
    # Authsignal may keep the address in another case; the domain is case-insensitive and
    # the pool compares emails case-insensitively too.
    return isinstance(a, str) and isinstance(b, str) and bool(a) and a.lower() == b.lower()


def email_proof(*, verification_method, tracked_email, current_email, load_authenticators):
    """Whether a correct answer also proves that the user controls their current email.

    Only an email method proves an address, and only the address Authsignal sent it to:
    validate names no address, so Authsignal's own record of the user's email
    authenticators (`load_authenticators()`, from its server API, called only when it can
    decide; None when they could not be read) must be exactly the address Create tracked, and
    Cognito's current email must still be that address (an admin, or another client, may
    have changed it since)."""
    if verification_method not in EMAIL_METHODS:
        return EmailProof(False, "the method proves no email address")
    if not tracked_email or tracked_email != current_email:
        return EmailProof(False, "the email changed since the challenge, or there is none")
    authenticators = load_authenticators()
    if authenticators is None:
        return EmailProof(False, "Authsignal's authenticators could not be read")
    addresses = [a.get("email") for a in authenticators
                 if isinstance(a, dict) and a.get("verification_method") in EMAIL_METHODS]
    if not addresses:
        return EmailProof(False, "Authsignal holds no email authenticator for the user")
    if not all(_same_address(address, tracked_email) for address in addresses):
        return EmailProof(False, "Authsignal's email authenticator is another address")
    return EmailProof(True, "proven")


class RecentProof(NamedTuple):
    recent: bool
    age_seconds: float | None


def recent_proof(*, auth_time, now, max_age_seconds=RECENT_PROOF_SECONDS):
    """Whether the sign-in behind an access token (its `auth_time`, which a refresh keeps)
    was recent enough to add an authenticator. A time in the future is not trusted either."""
    if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)):
        return RecentProof(False, None)
    age = now - auth_time
    return RecentProof(-60 <= age <= max_age_seconds, age)
