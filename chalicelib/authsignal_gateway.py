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
BLOCKED = "AUTHSIGNAL_BLOCKED"
MISCONFIGURED = "AUTHSIGNAL_MISCONFIGURED"
# Track states that lead to the pre-built UI (ALLOW only while the user is not enrolled).
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
            log.error("Misconfiguration: %s", detail)
            raise AuthsignalMisconfigured(detail) from None
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
    log.error("Misconfiguration: %s", detail)
    return AuthsignalMisconfigured(detail)


def start_challenge(config, user_id, email):
    """Track the sign-in action for the user; Authsignal's state decides what follows
    (SPEC 3): its UI's URL for a challenge or a first enrolment, or a refusal."""
    from chalicelib.authsignal_client import ApiException

    client = _client(config.authsignal_api_url, config.region)
    try:
        body = _call(
            "track",
            lambda: client.track(user_id, config.authsignal_action, {"email": email}),
        )
    except ApiException as error:  # another 4xx: the request or the tenant is wrong
        raise _misconfigured(
            f"Authsignal refused track with {error.status_code} {error.error_code}: check "
            "AUTHSIGNAL_ACTION and the tenant's settings for it"
        ) from None
    state, enrolled = body.get("state"), body.get("is_enrolled")
    if state in REFUSED_STATES:
        log.warning("Sign-in refused by an Authsignal rule: state=%s", state)
        raise AuthsignalBlocked(state)
    if state == "ALLOW" and enrolled is not False:
        # ALLOW proves nothing; only a succeeded challenge does.
        raise _misconfigured(
            f"Authsignal track answered ALLOW for an enrolled user: set action "
            f"'{config.authsignal_action}' to challenge (default outcome CHALLENGE) in the Authsignal portal"
        )
    if state not in (CHALLENGE_REQUIRED, "ALLOW"):
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
    return Challenge(url=url, idempotency_key=key)


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
