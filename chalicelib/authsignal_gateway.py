"""The Authsignal server API, through `chalicelib.authsignal_client` (the SDK's two calls
on the standard library: see its docstring for why not the SDK itself).

The client is imported on first use: PreSignUp, Define and the page never need it.
"""
import logging
from typing import NamedTuple  # not dataclasses: importing it (inspect, ast, dis) slows cold starts

from chalicelib import settings

log = logging.getLogger(__name__)

# The trigger raises with this text; Cognito passes it on inside
# UserLambdaValidationException, and the API turns it into a 503.
UNAVAILABLE = "AUTHSIGNAL_UNAVAILABLE"
# The action tracked when a signed-in user adds a passkey (not the sign-in action: a
# token of it can never answer a sign-in challenge).
PASSKEY_ACTION = "addPasskey"


class AuthsignalUnavailable(Exception):
    def __init__(self, what):
        super().__init__(f"{UNAVAILABLE}: Authsignal {what} did not answer in time or failed")


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
        if error.status_code is None or error.status_code >= 500:
            log.warning("Authsignal %s failed: status=%s", what, error.status_code)
            raise AuthsignalUnavailable(what) from None
        if error.status_code in (401, 403):  # the caller only ever sees a generic message
            log.error("Authsignal %s refused the secret key (misconfigured key or region): %s %s",
                      what, error.error_code, error.error_description)
        raise
    except (AttributeError, ValueError, TypeError):
        # An answer that is not JSON.
        log.warning("Authsignal %s answered something that is not its JSON", what)
        raise AuthsignalUnavailable(what) from None
    if not isinstance(body, dict):
        log.warning("Authsignal %s answered JSON that is not an object", what)
        raise AuthsignalUnavailable(what)
    return body


def start_challenge(config, user_id, email):
    """Track the sign-in action for the user; Authsignal answers with its UI's URL."""
    client = _client(config.authsignal_api_url, config.region)
    body = _call(
        "track",
        lambda: client.track(user_id, config.authsignal_action, {"email": email}),
    )
    url, key = body.get("url"), body.get("idempotency_key")
    if not (isinstance(url, str) and url and isinstance(key, str) and key):
        log.warning("Authsignal track gave no challenge URL (state=%s)", body.get("state"))
        raise AuthsignalUnavailable("track")
    token = body.get("token")
    return Challenge(url=url, idempotency_key=key, token=token if isinstance(token, str) else "")


def passkey_enrolment_token(config, user_id, email):
    """A token that lets the signed-in user add a passkey: the server vouches for the
    user (Cognito checked the access token) with scope add:authenticators."""
    from authsignal.client import ApiException

    client = _client(config.authsignal_api_url, config.region)
    try:
        body = _call(
            "track",
            lambda: client.track(user_id, PASSKEY_ACTION, {"email": email, "scope": "add:authenticators"}),
        )
    except ApiException as error:  # a 4xx: the tenant or the key is misconfigured
        log.error("Authsignal refused the passkey enrolment track: %s", error.error_code)
        raise AuthsignalUnavailable("track") from None
    token = body.get("token")
    if not isinstance(token, str) or not token:
        log.warning("Authsignal track gave no token for passkey enrolment (state=%s)", body.get("state"))
        raise AuthsignalUnavailable("track")
    return token


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
