"""What a valid access token of this app's user pool is, checked locally: no Cognito call.

Cognito's guidance for verifying a user pool's JWTs ("Verifying a JSON Web Token"), as
`aws-jwt-verify` and API Gateway's Cognito authorizer apply it: an RS256 signature by the key
the pool publishes under the header's `kid` (its JWKS), `iss` is the pool, `token_use` is
"access", `client_id` is this app's client, and `exp`/`iat` hold (with a small leeway).

Plain keyword-only functions returning a typed answer; the clock and the key set are passed
in (tests/test_access_tokens.py attacks each rule). PyJWT and `cryptography` do the crypto,
and are imported only when a token is checked (a cold start of the page never pays for them).
The one thing this cannot see is a revocation: a signed-out user's access token verifies
until it expires (docs/design.md, "Protected routes").
"""
import json
import threading
from typing import Callable, NamedTuple

# Real access tokens are about 1 KB; anything this long is not one (and is never parsed).
MAX_TOKEN_LENGTH = 8192
# Clock skew allowed on `exp` and `iat`: Cognito and Lambda keep NTP time, so a few seconds.
LEEWAY_SECONDS = 10
# At most one JWKS refresh per interval for an unknown `kid` (aws-jwt-verify waits 10 s too):
# a flood of tokens with made-up key ids costs one fetch, not one per request.
REFRESH_INTERVAL_SECONDS = 10
# The JWKS fetch, once per container: bounded, so a slow endpoint costs a 503, not the Lambda.
JWKS_CONNECT_TIMEOUT_SECONDS = 0.5
JWKS_TIMEOUT_SECONDS = 1.0
MAX_JWKS_BYTES = 64 * 1024

SIGN_IN_AGAIN = "Sign in again."


class Refusal(NamedTuple):
    """Why a token is refused: `code` and `message` go to the caller (a person can act on the
    message), `detail` only to the log. Messages hold no double quote or backslash: API
    Gateway pastes them into its JSON gateway response unescaped."""

    code: str
    message: str
    detail: str


class AccessToken(NamedTuple):
    sub: str
    username: str
    client_id: str
    scope: str
    issued_at: int
    expires_at: int
    auth_time: int | None
    origin_jti: str | None


class Verdict(NamedTuple):
    token: AccessToken | None = None
    refusal: Refusal | None = None


class KeysUnavailable(Exception):
    """The pool's JWKS could not be read: not the caller's fault (a 503, never a refusal)."""


def _refuse(code, message, detail):
    return Verdict(refusal=Refusal(code, message, detail))


MISSING = Refusal("missing_token", "Send the access token as 'Authorization: Bearer <token>'.", "no bearer token")
MALFORMED = ("invalid_token", "The access token is malformed. " + SIGN_IN_AGAIN)


class KeySet:
    """The pool's published keys, by `kid`: fetched on first use, then refreshed only for a
    `kid` it does not hold, at most once per `refresh_interval` seconds (by `clock`). The
    first fetch does not count: a key rotated just after a cold start is still found."""

    def __init__(self, load: Callable[[], dict], clock: Callable[[], float],
                 refresh_interval: float = REFRESH_INTERVAL_SECONDS):
        self._load, self._clock, self._interval = load, clock, refresh_interval
        self._keys: dict | None = None
        self._last_refresh: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid):
        """The public key for `kid`, or None (unknown even after the refresh it is allowed)."""
        with self._lock:
            if self._keys is None:
                self._fetch()
            elif kid not in self._keys and self._may_refresh():
                self._last_refresh = self._clock()  # even if it fails: a down JWKS is not hammered
                self._fetch()
            return self._keys.get(kid)

    def _may_refresh(self):
        return self._last_refresh is None or self._clock() - self._last_refresh >= self._interval

    def _fetch(self):
        self.fetches += 1
        self._keys = _public_keys(self._load())


def _public_keys(jwks):
    """{kid: RSA public key} of the RS256 signing keys in a JWKS document."""
    import jwt

    keys = {}
    for jwk in (jwks.get("keys") if isinstance(jwks, dict) else None) or []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("alg", "RS256") != "RS256" or jwk.get("use", "sig") != "sig":
            continue
        try:
            keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256").key
        except (jwt.PyJWKError, ValueError, TypeError):
            continue  # one unreadable key does not hide the others
    return keys


def fetch_jwks(url):
    """The JWKS document at `url`, through the bounded stdlib client; KeysUnavailable else."""
    from chalicelib import outbound

    try:
        status, _, body = outbound.post(url, {"Accept": "application/json"}, None,
                                        JWKS_CONNECT_TIMEOUT_SECONDS, JWKS_TIMEOUT_SECONDS, method="GET")
    except outbound.Unavailable as error:
        raise KeysUnavailable(f"JWKS {url} did not answer ({error})") from None
    if status != 200 or len(body) > MAX_JWKS_BYTES:
        raise KeysUnavailable(f"JWKS {url} answered {status} with {len(body)} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise KeysUnavailable(f"JWKS {url} is not JSON") from None


def bearer(authorization):
    """The token of an `Authorization: Bearer <token>` header value, or a Refusal."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return MISSING
    return token


def verify(*, authorization, issuer, client_id, keys, now, leeway=LEEWAY_SECONDS):
    """Verdict on an `Authorization` header value for this pool (`issuer`) and app client.

    `keys` is the pool's KeySet; `now` the time in seconds. Raises only KeysUnavailable."""
    token = bearer(authorization)
    if isinstance(token, Refusal):
        return Verdict(refusal=token)
    if len(token) > MAX_TOKEN_LENGTH:
        return _refuse("invalid_token", "The access token is too long to be one of this site's tokens. "
                       + SIGN_IN_AGAIN, f"{len(token)} characters")
    if token.count(".") == 4:
        return _refuse("wrong_token", "This is a refresh token: send the access token (accessToken) instead.",
                       "a JWE (refresh token)")
    if token.count(".") != 2:
        return _refuse(*MALFORMED, "not three segments")

    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        return _refuse(*MALFORMED, f"header: {error}")
    # Before any key is looked at: `none`, HS256 keyed with the public key, and every other
    # algorithm are refused here, whatever the PyJWT version (decode also allows only RS256).
    if header.get("alg") != "RS256":
        return _refuse("invalid_token", "The access token is not signed the way this user pool signs "
                       "(RS256). " + SIGN_IN_AGAIN, f"alg {str(header.get('alg'))[:20]!r}")
    kid = header.get("kid")
    key = keys.key(kid) if isinstance(kid, str) and len(kid) <= 256 else None
    if key is None:
        return _refuse("invalid_token", "The access token was signed with a key this user pool does not "
                       "publish (another pool, or a retired key). " + SIGN_IN_AGAIN, "unknown kid")
    try:
        # Times are checked below against `now`; PyJWT checks the signature and the types.
        claims = jwt.decode(token, key, algorithms=["RS256"],
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                     "verify_aud": False, "verify_iss": False})
    except jwt.InvalidSignatureError:
        return _refuse("invalid_token", "The access token's signature does not match: it was altered. "
                       + SIGN_IN_AGAIN, "bad signature")
    except jwt.InvalidTokenError as error:
        return _refuse(*MALFORMED, f"payload: {type(error).__name__}")
    return _check_claims(claims, issuer=issuer, client_id=client_id, now=now, leeway=leeway)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_claims(claims, *, issuer, client_id, now, leeway):
    if claims.get("iss") != issuer:
        return _refuse("invalid_token", "The access token was issued by another user pool. Sign in to this "
                       "site again.", f"iss {str(claims.get('iss'))[:100]!r}")
    use = claims.get("token_use")
    if use == "id":
        return _refuse("wrong_token", "This is an ID token: send the access token (accessToken) instead.",
                       "token_use id")
    if use != "access":
        return _refuse("wrong_token", "This is not an access token: send the access token (accessToken).",
                       f"token_use {str(use)[:20]!r}")
    if claims.get("client_id") != client_id:
        return _refuse("invalid_token", "The access token was issued to another app. Sign in to this site "
                       "again.", "another client_id")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _number(exp) or not _number(iat) or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return _refuse(*MALFORMED, "exp, iat or sub missing")
    if now >= exp + leeway:
        return _refuse("token_expired", "The access token has expired. Refresh the session or sign in again.",
                       f"expired {int(now - exp)} s ago")
    if iat > now + leeway:
        return _refuse("token_not_yet_valid", "The access token is not valid yet: check this server's and "
                       "this device's clocks, then sign in again.", f"iat {int(iat - now)} s ahead")
    auth_time = claims.get("auth_time")
    return Verdict(token=AccessToken(
        sub=claims["sub"], username=str(claims.get("username") or claims["sub"]), client_id=client_id,
        scope=str(claims.get("scope") or ""), issued_at=int(iat), expires_at=int(exp),
        auth_time=int(auth_time) if _number(auth_time) else None,
        origin_jti=claims.get("origin_jti") if isinstance(claims.get("origin_jti"), str) else None))


# One key set per JWKS URL per container: fetched on the first protected call, then kept.
_key_sets: dict = {}
_key_sets_lock = threading.Lock()


def key_set(jwks_url, clock):
    with _key_sets_lock:
        keys = _key_sets.get(jwks_url)
        if keys is None:
            keys = _key_sets[jwks_url] = KeySet(lambda: fetch_jwks(jwks_url), clock)
        return keys


def forget_key_sets():
    """As a new container would start (tests: a fresh cache, a fresh refresh interval)."""
    with _key_sets_lock:
        _key_sets.clear()
