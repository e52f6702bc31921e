"""The client API that `@authsignal/browser` calls (`/v1/client/...`): passkeys, and the
email OTP, SMS and authenticator-app enrolments and challenges.

Plain functions over the store and the pre-built UI's operations (the same codes, mailbox
and authenticators); server.py only hands over the method, path, headers and body, and
sends back `(status, payload, headers)`. As in Authsignal, a bare track token of a user with
no authenticator may enrol a first one of any method (Store.may_add_authenticator).

Auth, as the Web SDK sends it: `Bearer <token>` (a track token, or one this API
returned), or `Basic base64(tenantId)` (with or without a trailing ':') for the calls
that start from nothing (a discoverable sign-in). Errors have Authsignal's shape
`{error, errorCode, errorDescription}`; the browser calls cross-origin, so every
answer carries CORS headers and preflights are answered.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid
from typing import NamedTuple

from .methods.passkey import PASSKEY, PasskeyError
from .state import ApiError, ChallengeError

PREFIX = "/v1/client/"
CORS_MAX_AGE = "600"


class Caller(NamedTuple):
    """Who is calling: a tenant (Basic) or the holder of one action's token (Bearer)."""

    token: str | None
    record: object | None  # state.Action for a Bearer token


def cors_headers(origin: str | None) -> dict:
    # Any page may call the client API (it is public; tokens bind what a call can do).
    return {
        "Access-Control-Allow-Origin": origin or "*",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Max-Age": CORS_MAX_AGE,
        "Vary": "Origin",
    }


def unauthorized(description: str = "The request is unauthorized. Check the token or the tenant ID.") -> ApiError:
    return ApiError(401, "unauthorized", description)


def _caller(store, authorization: str) -> Caller:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return Caller(credentials, store.action_for_client_token(credentials))
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise unauthorized() from None
        # The SDK sends btoa(encodeURIComponent(tenantId)); the docs show "tenantId:".
        tenant = decoded[:-1] if decoded.endswith(":") else decoded
        if store.tenant_id and hmac.compare_digest(tenant.encode(), store.tenant_id.encode()):
            return Caller(None, None)
    raise unauthorized()


def _json_body(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    return body


def _need_token(caller: Caller):
    if caller.record is None:
        raise unauthorized("This call needs a token: 'Authorization: Bearer <token>'.")
    return caller.record


def handle(store, ui, method: str, path: str, query: dict, headers, raw: bytes) -> tuple[int, object, dict]:
    origin = headers.get("Origin")
    cors = cors_headers(origin)
    if method == "OPTIONS":
        return 204, None, cors
    try:
        return 200, _route(store, ui, method, path[len(PREFIX):], query, headers, raw, origin), cors
    except PasskeyError as exc:
        return exc.status, ApiError(exc.status, exc.code, exc.description).body(), cors
    except ChallengeError as exc:
        return exc.status, ApiError(exc.status, exc.code, exc.message).body(), cors
    except ApiError as exc:
        return exc.status, exc.body(), cors


# The SDK's email, SMS and authenticator-app calls, served by the pre-built UI's operations:
# route -> what to run with (ui, token, body).
OTP_CALLS = {
    "user-authenticators/email-otp": lambda ui, t, b: _enrolling(ui, t, ui.email_send(t, email=b.get("email", ""))),
    "challenge/email-otp": lambda ui, t, b: _challenged(ui.email_send(t)),
    "verify/email-otp": lambda ui, t, b: _verified(ui.email_verify(t, b.get("verificationCode"))),
    "user-authenticators/sms": lambda ui, t, b: _enrolling(ui, t, ui.sms_send(t, phone=b.get("phoneNumber", ""))),
    "challenge/sms": lambda ui, t, b: _challenged(ui.sms_send(t)),
    "verify/sms": lambda ui, t, b: _verified(ui.sms_verify(t, b.get("verificationCode"))),
    "user-authenticators/totp": lambda ui, t, b: _enrolling(ui, t, ui.totp_setup(t)),
    "verify/totp": lambda ui, t, b: _verified(ui.totp_verify(t, b.get("verificationCode"))),
}


def _enrolling(ui, token, started: dict) -> dict:
    record = ui.store.action_for_client_token(token)
    shown = {"userAuthenticatorId": str(uuid.uuid5(uuid.NAMESPACE_URL, record.idempotency_key)),
             "userId": record.user_id}
    shown.update({k: started[k] for k in ("uri", "secret") if k in started})  # an authenticator app
    return shown


def _challenged(sent: dict) -> dict:
    return {"challengeId": str(uuid.uuid4())}


def _verified(done: dict) -> dict:
    return {"isVerified": True, "accessToken": done["token"]}


def _route(store, ui, method, route, query, headers, raw, origin):
    passkeys = ui.passkeys
    caller = _caller(store, headers.get("Authorization", ""))
    body = _json_body(raw) if method == "POST" else {}
    if method == "POST" and route in OTP_CALLS:
        return OTP_CALLS[route](ui, _need_token(caller) and caller.token, body)
    if method == "POST" and route == "challenge":
        return challenge(store, passkeys, body)
    if method == "POST" and route == "user-authenticators/passkey/authentication-options":
        return authentication_options(passkeys, caller, body)
    if method == "POST" and route == "verify/passkey":
        return verify_passkey(store, passkeys, caller, body, origin)
    if method == "POST" and route == "user-authenticators/passkey/registration-options":
        return registration_options(store, passkeys, caller, body)
    if method == "POST" and route == "user-authenticators/passkey":
        return add_passkey(store, passkeys, caller, body, origin)
    if method == "GET" and route == "user-authenticators":
        return user_authenticators(store, caller)
    if method == "GET" and route == "user-authenticators/passkey":
        return passkey_availability(passkeys, query)
    raise ApiError(404, "not_found", "No such route.")


# ---- the calls --------------------------------------------------------------------

def challenge(store, passkeys, body):
    """`passkey.signIn({action})` starts here: a challenge for an action not yet bound
    to a user (the passkey will name the user)."""
    action = body.get("action")
    if not isinstance(action, str) or not store.valid_action_name(action):
        raise ApiError(400, "invalid_request", "action must be 1 to 64 characters: letters, digits, '_' or '-'.")
    return {"challengeId": passkeys.start_sign_in(action)}


def authentication_options(passkeys, caller, body):
    if caller.record is not None:  # a track token: this user's passkeys, for its action
        return passkeys.authentication_options(user_id=caller.record.user_id)
    return passkeys.authentication_options(challenge_id=body.get("challengeId"))


def verify_passkey(store, passkeys, caller, body, origin):
    """A signed challenge proves the user. With a track token, that action's challenge
    succeeds (its idempotencyKey stays the one track issued); after `challenge`, a new
    action for the passkey's user is recorded as succeeded."""
    origin = passkeys.check_origin(origin)
    record = caller.record
    if record is not None:
        store.check_completable(record)
    credential, ceremony = passkeys.authenticate(
        body.get("challengeId"), body.get("authenticationCredential"), origin,
        user_id=record.user_id if record is not None else None,
    )
    if record is not None:
        token = store.complete(record.idempotency_key, PASSKEY)
    else:
        token = store.completed_action(credential.user_id, ceremony.action, PASSKEY)
    return {
        "isVerified": True,
        "accessToken": token,
        "userId": credential.user_id,
        "userAuthenticatorId": credential.authenticator_id,
        "username": credential.username,
        "userDisplayName": credential.display_name,
    }


def registration_options(store, passkeys, caller, body):
    record = _need_token(caller)
    store.check_may_add_authenticator(record)
    return passkeys.registration_options(
        record.user_id, body.get("username"), body.get("displayName") or "",
        body.get("authenticatorAttachment"),
    )


def add_passkey(store, passkeys, caller, body, origin):
    record = _need_token(caller)
    origin = passkeys.check_origin(origin)
    store.check_may_add_authenticator(record)
    credential = passkeys.register(body.get("challengeId"), body.get("registrationCredential"), origin,
                                   user_id=record.user_id)
    authenticator = store.tenant.enroll(record.user_id, PASSKEY, credentialId=credential.credential_id)
    token = store.complete(record.idempotency_key, PASSKEY)
    return {
        "isVerified": True,
        "accessToken": token,
        "userAuthenticatorId": authenticator["userAuthenticatorId"],
        "userId": record.user_id,
        "userAuthenticator": {
            "userAuthenticatorId": authenticator["userAuthenticatorId"],
            "verificationMethod": PASSKEY,
            "username": credential.username,
            "displayName": credential.display_name,
        },
    }


def user_authenticators(store, caller):
    record = _need_token(caller)
    return [
        {"userAuthenticatorId": a["userAuthenticatorId"], "verificationMethod": a["verificationMethod"]}
        for a in store.tenant.authenticators(record.user_id)
    ]


def passkey_availability(passkeys, query):
    """Deprecated availability check: 200 when any of the credential ids is known."""
    ids = [i for i in (query.get("credentialIds") or [""])[0].split(",") if i]
    known = passkeys.known(ids)
    if not known:
        raise ApiError(404, "not_found", "None of these passkeys is registered.")
    return {"userAuthenticatorId": known[0].authenticator_id, "verificationMethod": PASSKEY}
