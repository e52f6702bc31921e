"""The Authsignal server API, through `chalicelib.authsignal_client` (the SDK's two calls
on the standard library: see its docstring for why not the SDK itself).

The client is imported on first use: PreSignUp, Define and the page never need it.
"""
import logging
from typing import NamedTuple  # not dataclasses: importing it (inspect, ast, dis) slows cold starts

from chalicelib import settings

log = logging.getLogger(__name__)

# The trigger raises with one of these texts; Cognito passes it on inside
# UserLambdaValidationException, and the API turns it into 503, 403 or a calm
# "not configured" (signin._map_error).
UNAVAILABLE = "AUTHSIGNAL_UNAVAILABLE"
# The action tracked when a signed-in user adds a passkey (not the sign-in action: a
# token of it can never answer a sign-in challenge).
PASSKEY_ACTION = "addPasskey"
BLOCKED = "AUTHSIGNAL_BLOCKED"
MISCONFIGURED = "AUTHSIGNAL_MISCONFIGURED"
# The one track state that leads to the pre-built UI (every user is enrolled by then).
CHALLENGE_REQUIRED = "CHALLENGE_REQUIRED"
REFUSED_STATES = ("BLOCK", "REVIEW_REQUIRED")


class AuthsignalUnavailable(Exception):
    def __init__(self, what):
        super().__init__(f"{UNAVAILABLE}: Authsignal {what} did not answer in time or failed")


class AuthsignalBlocked(Exception):
    def __init__(self, state):
        super().__init__(f"{BLOCKED}: Authsignal track answered {state}")


class AuthsignalMisconfigured(Exception):
    """Authsignal or its settings are set up wrong: the text says what to fix (never a secret)."""

    def __init__(self, detail):
        super().__init__(f"{MISCONFIGURED}: {detail}")


class Challenge(NamedTuple):
    url: str
    idempotency_key: str
    # The track token: the page gives it to `passkey.signIn({token})`, so a passkey
    # proves this very action (same idempotencyKey) and Verify's binding holds.
    token: str = ""


class Validation(NamedTuple):
    is_valid: bool
    state: str | None
    user_id: str | None
    action: str | None
    idempotency_key: str | None
    verification_method: str | None = None  # what the user proved: EMAIL_OTP, SMS, PASSKEY, ...


_clients = {}


def _client(api_url, region):
    secret = settings.secret("AUTHSIGNAL_SECRET_KEY", region)
    key = (api_url, secret)
    if key not in _clients:
        from chalicelib.authsignal_client import AuthsignalClient

        _clients[key] = AuthsignalClient(secret, api_url=api_url)
    return _clients[key]


def _call(what, fn):
    """Run one client call; outages and garbage become AuthsignalUnavailable."""
    from chalicelib.authsignal_client import ApiException

    try:
        body = fn()
    except ApiException as error:
        if error.status_code is None or error.status_code >= 500 or error.status_code == 429:
            log.warning("Authsignal %s failed: status=%s", what, error.status_code)
            raise AuthsignalUnavailable(what) from None
        if error.status_code in (401, 403):
            detail = (
                f"Authsignal refused {what} with {error.status_code} {error.error_code}: check "
                "AUTHSIGNAL_SECRET_KEY and that AUTHSIGNAL_API_URL is the tenant's region"
            )
            raise _misconfigured(detail) from None
        raise
    except (AttributeError, ValueError, TypeError):
        # An answer that is not JSON.
        log.warning("Authsignal %s answered something that is not its JSON", what)
        raise AuthsignalUnavailable(what) from None
    if not isinstance(body, dict):
        log.warning("Authsignal %s answered JSON that is not an object", what)
        raise AuthsignalUnavailable(what)
    return body


def _misconfigured(detail):
    from chalicelib import metrics

    log.error("Misconfiguration: %s", detail)
    metrics.record("AuthsignalMisconfigured", Function=metrics.function.get())
    return AuthsignalMisconfigured(detail)


def _track(client, config, user_id, attributes):
    from chalicelib.authsignal_client import ApiException

    try:
        return _call("track", lambda: client.track(user_id, config.authsignal_action, attributes))
    except ApiException as error:  # another 4xx: the request or the tenant is wrong
        raise _misconfigured(
            f"Authsignal refused track with {error.status_code} {error.error_code}: check "
            "AUTHSIGNAL_ACTION and the tenant's settings for it"
        ) from None


def _refuse_if_blocked(body):
    state = body.get("state")
    if state in REFUSED_STATES:
        log.warning("Sign-in refused by an Authsignal rule: state=%s", state)
        raise AuthsignalBlocked(state)


def _enrol(client, config, user_id, first, attributes):
    """Give the user their own email (or phone) as their first authenticator, then track
    again: the first track's token, which could enrol anything, never leaves the backend.
    Two sign-ins of a new user at once may both enrol: a refusal is fine if the second
    track finds the user enrolled."""
    from chalicelib.authsignal_client import ApiException

    refused = None
    try:
        _call("authenticator enrolment", lambda: client.enroll_verified_authenticator(user_id, {
            "verificationMethod": first.verification_method, "email": first.email,
            "phoneNumber": first.phone_number}))
    except ApiException as error:
        refused = error
    body = _track(client, config, user_id, attributes)
    if body.get("is_enrolled") is not True:
        detail = f" with {refused.status_code} {refused.error_code}" if refused else ""
        raise _misconfigured(
            f"Authsignal did not enrol the user's {first.verification_method} authenticator{detail}: "
            f"turn {first.verification_method} on for the tenant in the Authsignal portal"
        )
    log.info("Enrolled a first %s authenticator for a new Authsignal user", first.verification_method)
    return body


def start_challenge(config, *, user_id, email, phone_number=None, phone_number_verified=False):
    """Track the sign-in action for the user; Authsignal's state decides what follows
    (SPEC 3): its UI's URL for a challenge, or a refusal. A user Authsignal has no
    authenticator for gets their own email (or phone) as one first (chalicelib.identity)."""
    from chalicelib import identity

    client = _client(config.authsignal_api_url, config.region)
    attributes = {"email": email or None, "phoneNumber": phone_number or None}
    body = _track(client, config, user_id, attributes)
    _refuse_if_blocked(body)
    first = identity.first_authenticator(enrolled=body.get("is_enrolled"), email=email, phone_number=phone_number,
                                         phone_number_verified=phone_number_verified,
                                         allowed_methods=body.get("allowed_verification_methods"))
    if first.refuse and (email or (phone_number and phone_number_verified)):
        raise _misconfigured("Authsignal offers neither EMAIL_OTP nor SMS to a new user: turn EMAIL_OTP on "
                             "for the tenant in the Authsignal portal")
    if first.refuse:
        log.warning("Sign-in refused: the user has no authenticator, and no email or verified phone to prove")
        raise AuthsignalBlocked("nothing to prove (no authenticator, email or phone)")
    if first.enrol:
        body = _enrol(client, config, user_id, first, attributes)
        _refuse_if_blocked(body)
    state = body.get("state")
    if state == "ALLOW":
        # ALLOW proves nothing; only a succeeded challenge does.
        raise _misconfigured(
            f"Authsignal track answered ALLOW for an enrolled user: set action "
            f"'{config.authsignal_action}' to challenge (default outcome CHALLENGE) in the Authsignal portal"
        )
    if state != CHALLENGE_REQUIRED:
        raise _misconfigured(f"Authsignal track answered state {state!r}, which starts no challenge")
    url, key = body.get("url"), body.get("idempotency_key")
    if not (isinstance(url, str) and url and isinstance(key, str) and key):
        log.warning("Authsignal track gave no challenge URL (state=%s)", state)
        raise AuthsignalUnavailable("track")
    origin = config.ui_origin_of(url)
    if origin is None:
        raise _misconfigured(
            f"Authsignal's challenge URL is on {settings.origin_of(url) or 'no valid origin'}, which is "
            "not in AUTHSIGNAL_UI_ORIGIN (the page could not frame it): add the tenant's UI "
            "domain there, or fix the tenant's custom domain"
        )
    token = body.get("token")
    return Challenge(url=url, idempotency_key=key, token=token if isinstance(token, str) else "")


def passkey_enrolment_token(config, user_id, email):
    """A token that lets the signed-in user add a passkey: the server vouches for the
    user (Cognito checked the access token) with scope add:authenticators."""
    from chalicelib.authsignal_client import ApiException

    client = _client(config.authsignal_api_url, config.region)
    try:
        body = _call(
            "track",
            lambda: client.track(user_id, PASSKEY_ACTION, {"email": email, "scope": "add:authenticators"}),
        )
    except ApiException as error:  # a 4xx: the tenant or the key is misconfigured
        raise _misconfigured(
            f"Authsignal refused the passkey enrolment track with {error.status_code} {error.error_code}: "
            f"check the tenant's settings for action '{PASSKEY_ACTION}'"
        ) from None
    token = body.get("token")
    if not isinstance(token, str) or not token:
        log.warning("Authsignal track gave no token for passkey enrolment (state=%s)", body.get("state"))
        raise AuthsignalUnavailable("track")
    return token


def authenticators(config, user_id):
    """The user's authenticators as Authsignal records them, or None when they could not be
    read (outage, refusal, garbage): the caller then proves nothing from them."""
    from chalicelib.authsignal_client import ApiException

    client = _client(config.authsignal_api_url, config.region)
    try:
        body = client.get_authenticators(user_id)
    except ApiException as error:
        log.warning("Authsignal authenticators could not be read: status=%s %s", error.status_code, error.error_code)
        return None
    except (AttributeError, ValueError, TypeError):
        log.warning("Authsignal authenticators answered something that is not its JSON")
        return None
    if not isinstance(body, list):
        log.warning("Authsignal authenticators answered JSON that is not a list")
        return None
    return body


def validate(config, user_id, token):
    """Ask Authsignal what the token proves. A token it refuses proves nothing."""
    from chalicelib.authsignal_client import ApiException

    client = _client(config.authsignal_api_url, config.region)
    try:
        body = _call(
            "validate",
            lambda: client.validate_challenge(
                {"token": token, "userId": user_id, "action": config.authsignal_action}
            ),
        )
    except ApiException as error:
        # Any other 4xx: the token is refused (expired, forged, another tenant's).
        log.info("Authsignal refused the token: %s", error.error_code)
        return Validation(False, None, None, None, None)
    return Validation(
        is_valid=body.get("is_valid") is True,
        state=body.get("state"),
        user_id=body.get("user_id"),
        action=body.get("action"),
        idempotency_key=body.get("idempotency_key"),
        verification_method=body.get("verification_method"),
    )
