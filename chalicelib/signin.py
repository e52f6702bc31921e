"""The sign-in flow behind the API: what each route asks of Cognito, and what it answers.

Cognito's own triggers (see `triggers/`) decide the challenge; this module only
relays, and turns Cognito's answers into the API's statuses and messages.
"""
import base64
import json
import logging
import re
import time
import unicodedata

from chalicelib import authsignal_gateway, identity, metrics
from chalicelib.authsignal_gateway import BLOCKED, MISCONFIGURED, UNAVAILABLE
from chalicelib.cognito_gateway import CognitoError, CognitoNotConfigured, CognitoUnavailable
from chalicelib.http import SIGN_IN_AGAIN, ApiError, misconfigured

log = logging.getLogger(__name__)

MAX_EMAIL_LENGTH = 254
MAX_COGNITO_SESSION_LENGTH = 4096  # botocore's limit for Session (real ones are ~1 KB)
# The page's sealed session (seal_session): that Session plus the username and a digest in
# JSON, base64url (4/3), a dot and a 43-character MAC: about 5,610 characters for a
# 4,096-character Session and a UUID username; the cap (5,676) keeps 128 characters of room.
MAX_SESSION_LENGTH = (MAX_COGNITO_SESSION_LENGTH + 128) * 4 // 3 + 44
MAX_TOKEN_LENGTH = 4096
# Local part, one @, a domain with a dot; no spaces or control characters anywhere.
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f.]+")

START_AGAIN = "Your sign-in attempt has expired or was already used. Start again."
BLOCKED_MESSAGE = "Sign-in blocked: this sign-in was refused. If you think this is a mistake, contact the site's support."


def normalize_email(value):
    """The address in NFC, without surrounding spaces, its domain in IDNA's mapped form
    (UTS 46: full-width letters, case and the punycode spelling all name one domain, so one
    mailbox is one account); refused when it hides characters (Unicode categories C*:
    control, format such as zero-width, unassigned, private use) or its domain is not IDNA.
    The local part keeps its case: the pool compares emails case-insensitively."""
    # Checked before stripping: str.strip() also drops some controls (\x1c-\x1f, \x85).
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise ApiError(400, "invalid_email", "The email address contains invisible or control characters. "
                       "Type it again by hand.")
    email = unicodedata.normalize("NFC", value.strip())
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.fullmatch(email):
        raise ApiError(400, "invalid_email", "Enter a valid email address, like name@example.com.")
    import idna  # pinned in the Lambda lock (requirements.in): only this needs its tables

    local, _, domain = email.rpartition("@")
    try:
        domain = idna.decode(idna.encode(domain, uts46=True))
    except UnicodeError:  # idna.IDNAError and its kin
        raise ApiError(400, "invalid_email", "The domain of this email address is not valid. Check the part "
                       "after the @.") from None
    return f"{local}@{domain}"


def _unavailable(what="Sign-in"):
    return ApiError(503, "unavailable", f"{what} is unavailable right now. Try again in a minute.")


def _map_error(error, unauthorized_message):
    """Cognito's answer → the API's error, without leaking which users exist."""
    if isinstance(error, CognitoNotConfigured):
        log.error("Misconfigured: %s", error)
        return misconfigured()
    if isinstance(error, CognitoUnavailable):
        log.warning("Cognito unreachable: %s", error)
        return _unavailable()
    code = error.code
    if code in ("NotAuthorizedException", "InvalidParameterException"):
        return ApiError(401, "not_authorized", unauthorized_message)
    if code in ("TooManyRequestsException", "LimitExceededException"):
        return ApiError(429, "throttled", "Too many sign-in requests right now. Wait a minute and try again.")
    if code == "UserLambdaValidationException" and UNAVAILABLE in error.message:
        return _unavailable("Email verification")
    if code == "UserLambdaValidationException" and BLOCKED in error.message:
        log.warning("Sign-in blocked by an Authsignal rule (BLOCK or REVIEW_REQUIRED)")
        return ApiError(403, "blocked", BLOCKED_MESSAGE)
    if code == "UserLambdaValidationException" and MISCONFIGURED in error.message:
        # The trigger's message says what to fix; it never holds a secret or an email.
        log.error("Misconfiguration reported by a trigger: %s", error.message)
        return misconfigured()
    if code == "UnexpectedLambdaException":
        metrics.record("TriggerTimeout")
        log.error(
            "A Cognito trigger did not answer in time (Cognito waits 5 s, 3 attempts): %s "
            "Check that trigger's log for a slow cold start or a hung Authsignal call.",
            error.message,
        )
        return _unavailable()
    log.warning("Cognito refused a call: %s", code)
    return _unavailable()


def _challenge(pool, response, email):
    parameters = response.get("ChallengeParameters") or {}
    url, username = parameters.get("url"), parameters.get("USERNAME")
    token = parameters.get("token") or ""  # the round's track token, for passkey.signIn({token})
    if response.get("ChallengeName") != "CUSTOM_CHALLENGE" or not url or not username or not response.get("Session"):
        log.warning("Cognito answered without a challenge: %s", response.get("ChallengeName"))
        raise _unavailable()
    return {"status": "CHALLENGE", "session": seal_session(pool.config, response["Session"], username, email),
            "challengeUrl": url, "challengeToken": token}


def _binding_key(config):
    import hashlib  # lazily, as in cognito_gateway: the page never needs libcrypto
    import hmac

    from chalicelib import settings

    secret = settings.secret("COGNITO_CLIENT_SECRET", config.region)
    return hmac.new(secret.encode(), b"cognito-authsignal session binding v1", hashlib.sha256).digest()


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _email_digest(email):
    # Fixed length, so the session's length says nothing about the address.
    import hashlib

    return hashlib.sha256(email.lower().encode()).hexdigest()[:32]


def seal_session(config, session, username, email):
    """The page's opaque `session`: Cognito's Session, the USERNAME Cognito named for it
    (ChallengeParameters.USERNAME) and the email it started with, under a MAC so the
    page cannot pick another user."""
    import hashlib
    import hmac

    payload = _b64(json.dumps([username, _email_digest(email), session], separators=(",", ":")).encode())
    mac = _b64(hmac.new(_binding_key(config), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}"


def open_session(config, sealed, email):
    """(username, Cognito Session) from the page's `session`; 401 if it was altered or
    started for another email."""
    import hashlib
    import hmac

    payload, _, mac = sealed.rpartition(".")
    expected = _b64(hmac.new(_binding_key(config), payload.encode(), hashlib.sha256).digest())
    if not payload or not hmac.compare_digest(expected.encode(), mac.encode()):
        raise ApiError(401, "not_authorized", START_AGAIN)
    username, started_with, session = json.loads(_unb64(payload))
    if started_with != _email_digest(email):
        raise ApiError(401, "not_authorized", START_AGAIN)
    return username, session


def jwt_claims(token):
    """The claims of a token that came straight from Cognito (already trusted)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _signed_in(result):
    return {
        "status": "SIGNED_IN",
        "idToken": result["IdToken"],
        "accessToken": result["AccessToken"],
        "expiresIn": result.get("ExpiresIn", 3600),
    }


def start(pool, email, min_seconds=0.0, *, gate=None):
    """Start CUSTOM_AUTH; a new email is signed up silently, and both look the same.

    A new email costs two more Cognito calls (the failed InitiateAuth, then SignUp with
    its PreSignUp trigger) than a returning one. So that the time of the answer does not
    tell who has an account, the answer is held until `min_seconds` have passed (a floor
    above the new-user path's usual duration), whichever path it took.

    `gate` (chalicelib.limits.Gate) is asked before Cognito and before a sign-up; its refusal
    is held to the same floor, so a limited answer does not tell who has an account either.
    """
    began = time.monotonic()
    try:
        if gate is not None:
            _enforce(gate.start())
        return _start(pool, email, gate)
    finally:
        time.sleep(max(0.0, began + min_seconds - time.monotonic()))


# With PreventUserExistenceErrors ENABLED, Cognito runs the triggers for an unknown email with
# `userNotFound` instead of answering UserNotFoundException: Define fails the flow before any
# challenge, the app never signs the email up, and every new person is told to start again.
HIDDEN_USERS_HINT = (
    "Cognito failed a sign-in before its first challenge (NotAuthorizedException). The usual cause: "
    "the app client's PreventUserExistenceErrors is ENABLED, so Cognito hides that a new email has no "
    "account and the app never signs it up; every new email is told its attempt expired. Set it to "
    "LEGACY: run `python -m triggers connect --stage <stage>` again (it sets LEGACY and keeps the "
    "client's other settings), or untick 'Prevent user existence errors' on the app client in the "
    "Cognito console (and in any template that manages it). Logged once per process."
)
_hidden_users_hint_logged = False


def _hint_if_users_hidden(error):
    """Log HIDDEN_USERS_HINT once: a first InitiateAuth that Define failed outright. Our Define
    fails round 0 only for `userNotFound`, so this is ENABLED, not a returning user."""
    global _hidden_users_hint_logged
    if error.code == "NotAuthorizedException" and error.message == "Incorrect username or password." \
            and not _hidden_users_hint_logged:
        _hidden_users_hint_logged = True
        log.error(HIDDEN_USERS_HINT)


def _enforce(verdict):
    from chalicelib import limits

    if verdict.store_unavailable:
        metrics.record("LimitsStoreUnavailable")
    if not verdict.allowed:
        metrics.record("RateLimited", Rule=verdict.rule)
        log.info("/auth/start refused by limit %s (retry after %s s)", verdict.rule, verdict.retry_after)
        raise ApiError(*limits.refusal(verdict))


def _start(pool, email, gate=None):
    try:
        try:
            return _challenge(pool, pool.start_custom_auth(email), email)
        except CognitoError as error:
            if error.code != "UserNotFoundException":
                _hint_if_users_hidden(error)
                raise
        if gate is not None:  # before Cognito grows: a flood of new addresses stops here
            _enforce(gate.sign_up())
        try:
            signed_up = pool.sign_up(email)
        except CognitoError as error:
            if error.code != "UsernameExistsException":  # a parallel first sign-in won
                raise
        else:
            metrics.record("SignUps")
            _mark_for_cleanup(pool, signed_up.get("UserSub"))
        return _challenge(pool, pool.start_custom_auth(email), email)
    except CognitoError as error:
        if error.code == "InvalidParameterException":
            raise ApiError(400, "invalid_email", "Cognito does not accept this email address. Check it and try again.") from None
        raise _map_error(error, START_AGAIN) from None
    except CognitoUnavailable as error:
        raise _map_error(error, START_AGAIN) from None


def _mark_for_cleanup(pool, username):
    """With the demo site's cleanup on, a new sign-up joins the group the job may delete from
    (chalicelib/cleanup.py). A failure only means this user is never cleaned up: logged."""
    if not pool.config.cleanup_unverified_users or not username:
        return
    from chalicelib.cleanup import PENDING_GROUP

    try:
        pool.add_to_group(username, PENDING_GROUP)
    except (CognitoError, CognitoUnavailable) as error:
        log.warning("Could not add a new sign-up to group %s (%s): the cleanup will not touch it",
                    PENDING_GROUP, getattr(error, "code", error))


def finish(pool, email, session, token):
    """Send the Authsignal token as the answer. Returns (body, refresh cookie value).

    The answer names the user Cognito named (inside `session`), not `email`: that works
    whether or not Cognito accepts the email alias there, as the AWS SDKs do."""
    username, cognito_session = open_session(pool.config, session, email)
    try:
        response = pool.answer_challenge(username, cognito_session, token)
    except (CognitoError, CognitoUnavailable) as error:
        raise _map_error(error, START_AGAIN) from None
    result = response.get("AuthenticationResult")
    if not result:
        return _challenge(pool, response, email), None
    sub = jwt_claims(result["IdToken"])["sub"]
    return _signed_in(result), f"{sub}:{result['RefreshToken']}"


def split_cookie(value):
    sub, _, refresh_token = (value or "").partition(":")
    if not sub or not refresh_token:
        raise ApiError(401, "not_signed_in", SIGN_IN_AGAIN)
    return sub, refresh_token


def refresh(pool, cookie):
    """New ID and access tokens from the refresh cookie. Returns (body, new cookie or None).

    No cookie at all is an ordinary first visit, not an error: 200 SIGNED_OUT, so that the
    browser logs nothing. A cookie that does not work is still a 401."""
    if not cookie:
        return {"status": "SIGNED_OUT"}, None
    sub, refresh_token = split_cookie(cookie)
    try:
        result = pool.refresh(sub, refresh_token)["AuthenticationResult"]
    except (CognitoError, CognitoUnavailable) as error:
        raise _map_error(error, SIGN_IN_AGAIN) from None
    rotated = result.get("RefreshToken")
    return _signed_in(result), (f"{sub}:{rotated}" if rotated else None)


def sign_out(pool, cookies):
    """Revoke each refresh token (and the access tokens issued from it). Never raises: the
    route clears the cookie whatever Cognito answers, and a failure is logged."""
    for cookie in cookies:
        try:
            _, refresh_token = split_cookie(cookie)
        except ApiError:
            continue  # nothing to revoke
        try:
            pool.revoke(refresh_token)
        except CognitoError as error:
            # What RevokeToken answers for an unknown or revoked token is unconfirmed (its
            # model declares no NotAuthorizedException): a refusal of the token itself means
            # nothing is left to revoke; UnauthorizedException is our client secret.
            if error.code == "UnauthorizedException":
                log.error("RevokeToken failed (%s): misconfiguration, Cognito refused the client secret (check COGNITO_CLIENT_SECRET)", error.code)
            elif error.code in ("TooManyRequestsException", "InternalErrorException"):
                log.error("RevokeToken failed (%s): the refresh token may still be valid", error.code)
            else:
                log.info("RevokeToken refused the cookie's token: %s", error.code)
        except CognitoUnavailable as error:
            log.error("RevokeToken did not answer (%s): the refresh token may still be valid", error)


def _user(pool, access_token):
    """Cognito's own check of an access token; its attributes by name."""
    if len(access_token) > 8192 or access_token.count(".") != 2:
        raise ApiError(401, "invalid_token", "The access token is malformed. Sign in again.")
    try:
        user = pool.get_user(access_token)
    except (CognitoError, CognitoUnavailable) as error:
        raise _map_error(error, "The access token is expired, revoked or not valid. Sign in again.") from None
    return user, {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}


REAUTHENTICATE = "To add a passkey, first confirm it is you: sign in again, then add the passkey."


def passkey_token(pool, access_token, *, now):
    """For **Add a passkey**: a token with which the signed-in user enrols one, only after a
    recent sign-in (a stolen or refreshed access token is not enough: chalicelib.identity)."""
    _, attributes = _user(pool, access_token)
    proof = identity.recent_proof(auth_time=jwt_claims(access_token).get("auth_time"), now=now)
    if not proof.recent:
        log.info("Passkey token refused: the sign-in is %s s old", "unknown" if proof.age_seconds is None
                 else int(proof.age_seconds))
        raise ApiError(401, "reauthenticate", REAUTHENTICATE)
    try:
        token = authsignal_gateway.passkey_enrolment_token(pool.config, attributes["sub"], attributes.get("email"))
    except authsignal_gateway.AuthsignalUnavailable:
        raise _unavailable("Adding a passkey") from None
    return {"token": token}


def me(pool, access_token):
    """Cognito's own check (GetUser): sees a sign-out at once, costs a Cognito call."""
    user, attributes = _user(pool, access_token)
    return {
        "sub": attributes.get("sub", user.get("Username")),
        "email": attributes.get("email"),
        "emailVerified": attributes.get("email_verified") == "true",
        "verifiedBy": "cognito",
    }


def me_from_token(verified):
    """What the authorizer verified locally (its context): no Cognito call, so no email (an
    access token does not carry it) and no revocation check (docs/design.md)."""
    return {
        "sub": verified["sub"],
        "username": verified["username"],
        "expiresAt": int(verified["expiresAt"]),
        "verifiedBy": "local",
    }
