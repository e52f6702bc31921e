"""chalicelib.access_tokens: each rule of a valid access token, attacked with the pool's own key.

Over HTTP a forger lacks the pool's private key, so the claim checks could hide behind the
signature check; here the tokens are signed with the very key the verifier trusts, the key set
is a plain function and the clock a number (no network, no mocks)."""
import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from chalicelib import access_tokens
from chalicelib.access_tokens import KeySet, KeysUnavailable, verify

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool0001"
CLIENT = "appclient0000000000000000"
NOW = 1_800_000_000
POOL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key, kid):
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}


class Pool:
    """The pool's JWKS endpoint as a function, counting fetches; `keys` can be rotated."""

    def __init__(self):
        self.keys = {"access-1": POOL_KEY}
        self.fetches = 0

    def jwks(self):
        self.fetches += 1
        return {"keys": [jwk(key, kid) for kid, key in self.keys.items()]}


@pytest.fixture
def pool():
    return Pool()


@pytest.fixture
def clock():
    now = [float(NOW)]
    return now


@pytest.fixture
def keys(pool, clock):
    return KeySet(pool.jwks, lambda: clock[0])


def claims(**changes):
    base = {"sub": str(uuid.uuid4()), "iss": ISSUER, "client_id": CLIENT, "token_use": "access",
            "scope": "aws.cognito.signin.user.admin", "auth_time": NOW - 60, "iat": NOW - 60, "exp": NOW + 540,
            "jti": str(uuid.uuid4()), "origin_jti": str(uuid.uuid4()), "event_id": str(uuid.uuid4()),
            "username": "someone"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key=POOL_KEY, kid="access-1", alg="RS256"):
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": None})


def check(token, keys, now=NOW):
    return verify(authorization=f"Bearer {token}", issuer=ISSUER, client_id=CLIENT, keys=keys, now=now)


def refused(token, keys, now=NOW):
    verdict = check(token, keys, now)
    assert verdict.token is None and verdict.refusal, verdict
    assert '"' not in verdict.refusal.message and "\\" not in verdict.refusal.message
    return verdict.refusal


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_real_shaped_access_token_verifies(keys):
    payload = claims()
    verdict = check(sign(payload), keys)
    assert verdict.refusal is None
    assert verdict.token.sub == payload["sub"] and verdict.token.username == "someone"
    assert verdict.token.expires_at == NOW + 540 and verdict.token.auth_time == NOW - 60


def test_scheme_is_case_insensitive_and_spaces_trimmed(keys):
    token = sign(claims())
    assert verify(authorization=f"  bearer {token} ", issuer=ISSUER, client_id=CLIENT, keys=keys, now=NOW).token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token x.y.z"])
def test_no_bearer_token(keys, header):
    verdict = verify(authorization=header, issuer=ISSUER, client_id=CLIENT, keys=keys, now=NOW)
    assert verdict.refusal.code == "missing_token" and "Authorization: Bearer" in verdict.refusal.message


def test_forged_signature(keys):
    token = sign(claims(), key=OTHER_KEY)  # the pool's kid, another key
    assert refused(token, keys).detail == "bad signature"


def test_altered_payload(keys):
    head, _, signature = sign(claims()).split(".")
    altered = b64(json.dumps(claims(sub="someone-else")).encode())
    assert "altered" in refused(f"{head}.{altered}.{signature}", keys).message


def test_alg_none(keys):
    head = b64(json.dumps({"alg": "none", "kid": "access-1"}).encode())
    assert "RS256" in refused(f"{head}.{b64(json.dumps(claims()).encode())}.", keys).message


def test_hs256_keyed_with_the_public_key(keys):
    pem = POOL_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64(json.dumps({"alg": "HS256", "kid": "access-1", "typ": "JWT"}).encode())
    signing_input = f"{head}.{b64(json.dumps(claims()).encode())}"
    token = f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"
    assert "RS256" in refused(token, keys).message


@pytest.mark.parametrize("alg", ["RS512", "PS256"])
def test_other_rsa_algorithms(keys, alg):
    assert "RS256" in refused(sign(claims(), alg=alg), keys).message


def test_expired_with_leeway(keys):
    token = sign(claims(iat=NOW - 700, exp=NOW - 5))
    assert check(token, keys).token  # inside the leeway
    refusal = refused(token, keys, now=NOW - 5 + access_tokens.LEEWAY_SECONDS)
    assert refusal.code == "token_expired" and "Refresh" in refusal.message


def test_not_yet_valid(keys):
    assert check(sign(claims(iat=NOW + 5, exp=NOW + 600)), keys).token  # clock skew within the leeway
    refusal = refused(sign(claims(iat=NOW + 120, exp=NOW + 700)), keys)
    assert refusal.code == "token_not_yet_valid" and "clock" in refusal.message


def test_another_client(keys):
    assert "another app" in refused(sign(claims(client_id="otherclient00000000000000")), keys).message


def test_another_pool_even_with_this_pools_key(keys):
    other = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other0001"
    assert "another user pool" in refused(sign(claims(iss=other)), keys).message


def test_another_pools_key(keys):
    assert refused(sign(claims(), key=OTHER_KEY, kid="their-kid"), keys).detail == "unknown kid"


def test_id_token(keys):
    id_claims = claims(token_use="id", aud=CLIENT, client_id=None, email="a@example.com")
    refusal = refused(sign(id_claims), keys)
    assert refusal.code == "wrong_token" and "ID token" in refusal.message


def test_refresh_token(keys):
    jwe = ".".join(b64(part) for part in (b'{"cty":"JWT","enc":"A256GCM","alg":"RSA-OAEP"}', b"k" * 256,
                                          b"i" * 12, b"c" * 1048, b"t" * 16))
    assert "refresh token" in refused(jwe, keys).message


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "token_use", "client_id", "iss"])
def test_a_required_claim_missing(keys, missing):
    refused(sign(claims(**{missing: None})), keys)


@pytest.mark.parametrize("token", ["a.b.c", "x", "a.b", "....", "eyJhbGciOiJSUzI1NiJ9.e30.", "é.é.é"])
def test_malformed(keys, token):
    assert refused(token, keys).code in ("invalid_token", "wrong_token")


def test_oversized_is_refused_before_parsing(keys, pool):
    token = sign(claims(padding="x" * access_tokens.MAX_TOKEN_LENGTH))
    assert "too long" in refused(token, keys).message and pool.fetches == 0


def test_the_key_set_is_fetched_once(keys, pool):
    for _ in range(5):
        assert check(sign(claims()), keys).token
    assert pool.fetches == 1


def test_rotation_one_refresh_and_old_tokens_keep_verifying(keys, pool, clock):
    old = sign(claims())
    assert check(old, keys).token and pool.fetches == 1
    pool.keys["access-2"] = OTHER_KEY  # rotated: the old key stays published
    new = sign(claims(), key=OTHER_KEY, kid="access-2")
    assert check(new, keys).token and pool.fetches == 2
    assert check(old, keys).token and check(new, keys).token and pool.fetches == 2


def test_a_retired_key_stops_verifying_after_the_next_refresh(keys, pool, clock):
    old = sign(claims())
    assert check(old, keys).token
    pool.keys = {"access-2": OTHER_KEY}
    clock[0] += access_tokens.REFRESH_INTERVAL_SECONDS
    assert check(sign(claims(), key=OTHER_KEY, kid="access-2"), keys).token  # the refresh
    assert refused(old, keys).detail == "unknown kid"


def test_a_flood_of_unknown_kids_refreshes_once_per_interval(keys, pool, clock):
    assert check(sign(claims()), keys).token
    for i in range(200):
        refused(sign(claims(), key=OTHER_KEY, kid=f"made-up-{i}"), keys)
    assert pool.fetches == 2  # the first fetch, then one refresh
    clock[0] += access_tokens.REFRESH_INTERVAL_SECONDS
    for i in range(200):
        refused(sign(claims(), key=OTHER_KEY, kid=f"again-{i}"), keys)
    assert pool.fetches == 3


def test_keys_unavailable_is_not_a_refusal(clock):
    def down():
        raise KeysUnavailable("no answer")

    with pytest.raises(KeysUnavailable):
        check(sign(claims()), KeySet(down, lambda: clock[0]))


def test_unusable_keys_in_the_jwks_are_skipped(clock):
    jwks = {"keys": [{"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"}, {"kty": "EC", "kid": "ec"},
                     {**jwk(OTHER_KEY, "enc"), "use": "enc"}, jwk(POOL_KEY, "access-1"), "junk"]}
    keys = KeySet(lambda: jwks, lambda: clock[0])
    assert check(sign(claims()), keys).token
    assert refused(sign(claims(), key=OTHER_KEY, kid="enc"), keys).detail == "unknown kid"


def test_fetch_jwks_is_bounded_by_its_timeout():
    # A listening socket that never answers: the fetch gives up within its read timeout.
    import socket

    silent = socket.create_server(("127.0.0.1", 0))
    try:
        started = time.monotonic()
        with pytest.raises(KeysUnavailable):
            access_tokens.fetch_jwks(f"http://127.0.0.1:{silent.getsockname()[1]}/p/.well-known/jwks.json")
        assert time.monotonic() - started < access_tokens.JWKS_CONNECT_TIMEOUT_SECONDS + \
            access_tokens.JWKS_TIMEOUT_SECONDS + 1
    finally:
        silent.close()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: "Bearer " + b64(b)),
                 st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=",
                                  max_size=60), min_size=1, max_size=6).map(lambda p: "Bearer " + ".".join(p)),
                 st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(max_size=8)),
                                 max_size=4).map(lambda h: "Bearer " + b64(json.dumps(h).encode()) + "."
                                                 + b64(json.dumps(claims()).encode()) + ".c2ln")))
def test_any_authorization_header_is_a_verdict_never_an_exception(header):
    keys = KeySet(Pool().jwks, lambda: NOW)
    verdict = verify(authorization=header, issuer=ISSUER, client_id=CLIENT, keys=keys, now=NOW)
    assert verdict.refusal is not None and verdict.token is None
