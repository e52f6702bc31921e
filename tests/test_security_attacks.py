"""Attacks on the running dev stack over real HTTP. Each test is one attack and fails if
the attack works. Counted by `make security` (tests/security_report.py)."""
import base64
import hashlib
import hmac
import json
import math
import statistics
import time
import uuid

import boto3
import jwt
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.security_helpers import (
    User, assert_error, assert_not_signed_in, assert_refused_with_new_challenge, authsignal_token,
    capture_in_process_logs, claims, remember,
)

pytestmark = pytest.mark.devstack


@pytest.fixture(autouse=True, scope="module")
def _logs():
    capture_in_process_logs()


def new_email(tag="attack"):
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def user(devstack):
    return User(devstack, new_email())


@pytest.fixture
def other(devstack):
    return User(devstack, new_email("other"))


@pytest.fixture
def signed_in(user):
    """A user who signed in once: (user, tokens body, refresh cookie value)."""
    body, cookie = user.sign_in()
    return user, body, cookie


def cognito_settings(devstack, **values):
    response = requests.post(devstack.cognito_url + "/_dev/settings", json=values, timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def restore_cognito_settings(devstack):
    before = cognito_settings(devstack)  # {} changes nothing and answers the current values
    yield
    cognito_settings(devstack, sessionValiditySeconds=before["sessionValiditySeconds"],
                     accessTokenValiditySeconds=before["accessTokenValiditySeconds"])


# ------------------------------------------------------------------ borrowed and replayed tokens


def test_replayed_token_that_already_signed_in(signed_in):
    user, _, _ = signed_in
    first = user.start()
    token = user.prove(first["challengeUrl"])
    assert user.finish(first["session"], token).json()["status"] == "SIGNED_IN"
    again = user.start()
    assert_refused_with_new_challenge(user.finish(again["session"], token))


def test_another_users_token_in_this_session(user, other):
    mine, theirs = user.start(), other.start()
    their_token = other.prove(theirs["challengeUrl"])
    assert_refused_with_new_challenge(user.finish(mine["session"], their_token))


def test_token_from_this_users_earlier_attempt(user):
    earlier = user.start()
    earlier_token = user.prove(earlier["challengeUrl"])  # proven, never used
    later = user.start()
    assert_refused_with_new_challenge(user.finish(later["session"], earlier_token))


def test_token_for_another_authsignal_action(devstack, signed_in):
    from authsignal.client import AuthsignalClient

    user, body, _ = signed_in
    sub = claims(body["idToken"])["sub"]
    env = devstack.local_env()
    remember(env["AUTHSIGNAL_SECRET_KEY"])
    client = AuthsignalClient(env["AUTHSIGNAL_SECRET_KEY"], api_url=devstack.authsignal_url + "/v1")
    tracked = client.track(sub, "otherAction", {"email": user.email})
    other_action_token = user.prove(tracked["url"])
    validated = client.validate_challenge({"token": other_action_token, "userId": sub, "action": "otherAction"})
    assert validated["is_valid"] is True  # a real, succeeded challenge, for the same user
    challenge = user.start()
    assert_refused_with_new_challenge(user.finish(challenge["session"], other_action_token))


def test_the_challenge_urls_own_token_before_it_is_proven(user):
    challenge = user.start()
    assert_refused_with_new_challenge(user.finish(challenge["session"], authsignal_token(challenge["challengeUrl"])))


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_authsignal_tokens(real):
    """Forgeries built from a real, proven token (the attacker saw its claims in the URL)."""
    head, payload, signature = real.split(".")
    real_claims = claims(real)
    none_head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    resigned = f"{head}.{payload}".encode()
    longer = dict(real_claims, exp=real_claims["exp"] + 3600)
    longer_payload = _b64(json.dumps(longer, separators=(",", ":")).encode())
    return {
        "alg-none": f"{none_head}.{payload}.",
        "guessed-key": f"{head}.{payload}.{_b64(hmac.new(b'secret', resigned, hashlib.sha256).digest())}",
        "edited-claims": f"{head}.{longer_payload}.{signature}",
        "truncated-signature": f"{head}.{payload}.{signature[:-6]}",
        "no-signature": f"{head}.{payload}",
        "half-a-token": real[: len(real) // 2],
    }


@pytest.mark.parametrize("forgery", ["alg-none", "guessed-key", "edited-claims", "truncated-signature",
                                     "no-signature", "half-a-token"])
def test_forged_or_truncated_authsignal_token(user, forgery):
    challenge = user.start()
    real = user.prove(challenge["challengeUrl"])
    fake = _forged_authsignal_tokens(real)[forgery]
    retry = assert_refused_with_new_challenge(user.finish(challenge["session"], fake))
    # The attempt is still the user's own: the real token of the new round signs in.
    done = user.finish(retry["session"], user.prove(retry["challengeUrl"]))
    assert done.json()["status"] == "SIGNED_IN"


# ------------------------------------------------------------------ sessions


def test_reused_session_after_it_signed_in(user):
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    assert user.finish(challenge["session"], token).json()["status"] == "SIGNED_IN"
    again = user.finish(challenge["session"], token)
    assert_not_signed_in(again)
    assert "Start again" in assert_error(again, 401, "not_authorized")["message"]


def test_reused_session_after_a_wrong_answer(user):
    first = user.start()
    assert_refused_with_new_challenge(user.finish(first["session"], "wrong.token.value"))
    right = user.prove(first["challengeUrl"])  # now the right answer, in the spent session
    again = user.finish(first["session"], right)
    assert_not_signed_in(again)
    assert_error(again, 401, "not_authorized")


def test_expired_session(devstack, user, restore_cognito_settings):
    cognito_settings(devstack, sessionValiditySeconds=1)
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    time.sleep(1.3)
    late = user.finish(challenge["session"], token)
    assert_not_signed_in(late)
    assert "Start again" in assert_error(late, 401, "not_authorized")["message"]


def test_session_from_another_email(user, other):
    theirs = other.start()
    their_token = other.prove(theirs["challengeUrl"])
    # This user's email with the other's session and the other's valid token.
    response = user.finish(theirs["session"], their_token)
    assert_not_signed_in(response)
    assert_error(response, 401, "not_authorized")
    # The other user can still finish: the session was not spent by the attempt.
    assert other.finish(theirs["session"], their_token).json()["status"] == "SIGNED_IN"


def test_any_answer_after_the_third_wrong_one(user):
    challenge = user.start()
    rounds = [challenge]
    for _ in range(2):
        challenge = assert_refused_with_new_challenge(user.finish(challenge["session"], "wrong.token.value"))
        rounds.append(challenge)
    third = user.finish(challenge["session"], "wrong.token.value")
    assert_error(third, 401, "not_authorized")
    assert_not_signed_in(third)
    # Now every round's session with that round's real, proven token: all refused.
    for round_ in reversed(rounds):
        late = user.finish(round_["session"], user.prove(round_["challengeUrl"]))
        assert_not_signed_in(late)
        assert_error(late, 401, "not_authorized")


# ------------------------------------------------------------------ SECRET_HASH (Cognito directly)


@pytest.fixture
def cognito(devstack):
    return boto3.client("cognito-idp", endpoint_url=devstack.cognito_url, region_name="us-east-1",
                        aws_access_key_id="attacker", aws_secret_access_key="attacker",
                        config=Config(retries={"total_max_attempts": 1}))


def _hash(secret, username, client_id):
    return base64.b64encode(hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()).decode()


def _refused_by_cognito(call, code="NotAuthorizedException"):
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == code, refused.value.response
    return refused.value.response["Error"]["Message"]


@pytest.mark.parametrize("secret_hash", ["missing", "wrong-secret", "another-users-hash"])
def test_cognito_initiate_auth_without_a_valid_secret_hash(devstack, cognito, signed_in, secret_hash):
    user, _, _ = signed_in
    client_id = devstack.local_env()["COGNITO_CLIENT_ID"]
    parameters = {"USERNAME": user.email}
    if secret_hash == "wrong-secret":
        parameters["SECRET_HASH"] = _hash("guessed-secret", user.email, client_id)
    elif secret_hash == "another-users-hash":
        parameters["SECRET_HASH"] = _hash(devstack.local_env()["COGNITO_CLIENT_SECRET"], "someone@example.com", client_id)
    _refused_by_cognito(lambda: cognito.initiate_auth(AuthFlow="CUSTOM_AUTH", ClientId=client_id, AuthParameters=parameters))


@pytest.mark.parametrize("secret_hash", ["missing", "wrong-secret"])
def test_cognito_sign_up_without_a_valid_secret_hash(devstack, cognito, secret_hash):
    client_id, email = devstack.local_env()["COGNITO_CLIENT_ID"], new_email("signup")
    extra = {} if secret_hash == "missing" else {"SecretHash": _hash("guessed-secret", email, client_id)}
    _refused_by_cognito(lambda: cognito.sign_up(ClientId=client_id, Username=email, Password="Aa1!" + "x" * 20,
                                                UserAttributes=[{"Name": "email", "Value": email}], **extra))


@pytest.mark.parametrize("secret_hash", ["missing", "wrong-secret"])
def test_cognito_answer_without_a_valid_secret_hash(devstack, cognito, user, secret_hash):
    """A stolen session and a real token, straight to Cognito without the app's secret."""
    client_id = devstack.local_env()["COGNITO_CLIENT_ID"]
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    responses = {"USERNAME": user.email, "ANSWER": token}
    if secret_hash == "wrong-secret":
        responses["SECRET_HASH"] = _hash("guessed-secret", user.email, client_id)
    _refused_by_cognito(lambda: cognito.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="CUSTOM_CHALLENGE", Session=challenge["session"], ChallengeResponses=responses))


@pytest.mark.parametrize("secret_hash", ["missing", "wrong-secret"])
def test_cognito_refresh_without_a_valid_secret_hash(devstack, cognito, signed_in, secret_hash):
    """A stolen refresh token, straight to Cognito without the app's secret."""
    _, _, cookie = signed_in
    client_id = devstack.local_env()["COGNITO_CLIENT_ID"]
    sub, refresh_token = cookie.split(":", 1)
    parameters = {"REFRESH_TOKEN": refresh_token}
    if secret_hash == "wrong-secret":
        parameters["SECRET_HASH"] = _hash("guessed-secret", sub, client_id)
    _refused_by_cognito(lambda: cognito.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId=client_id, AuthParameters=parameters))


def test_cognito_revoke_with_a_wrong_client_secret(devstack, cognito, signed_in):
    user, _, cookie = signed_in
    client_id = devstack.local_env()["COGNITO_CLIENT_ID"]
    _refused_by_cognito(lambda: cognito.revoke_token(Token=cookie.split(":", 1)[1], ClientId=client_id, ClientSecret="guessed-client-secret-0123456789"),
                        code="UnauthorizedException")  # RevokeToken's declared error
    assert user.with_cookie("/auth/refresh", cookie).status_code == 200  # not revoked


# ------------------------------------------------------------------ /api/me with bad access tokens


def pool_keys(devstack):
    pool_id = devstack.local_env()["COGNITO_USER_POOL_ID"]
    return requests.get(f"{devstack.cognito_url}/{pool_id}/.well-known/jwks.json", timeout=5).json()["keys"]


@pytest.fixture
def real_kid(devstack, signed_in):
    """The access tokens' key id (a pool publishes two keys: ID tokens have their own)."""
    keys = pool_keys(devstack)
    assert len(keys) == 2 and all(k["alg"] == "RS256" for k in keys)
    kid = jwt.get_unverified_header(signed_in[1]["accessToken"])["kid"]
    assert kid in {k["kid"] for k in keys} and kid != jwt.get_unverified_header(signed_in[1]["idToken"])["kid"]
    return kid


ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _forge_access_token(kind, real_claims, real_kid, jwks_pem):
    now = int(time.time())
    good = dict(real_claims, iat=now, exp=now + 3600, jti=str(uuid.uuid4()))
    if kind == "alg-none":
        head = _b64(json.dumps({"alg": "none", "kid": real_kid, "typ": "JWT"}).encode())
        return f"{head}.{_b64(json.dumps(good).encode())}."
    if kind == "hs256-with-the-public-key":  # algorithm confusion: the JWKS key as an HMAC secret
        head = _b64(json.dumps({"alg": "HS256", "kid": real_kid, "typ": "JWT"}).encode())
        signing_input = f"{head}.{_b64(json.dumps(good).encode())}"
        return f"{signing_input}.{_b64(hmac.new(jwks_pem, signing_input.encode(), hashlib.sha256).digest())}"
    variants = {
        "wrong-kid": ({}, "attacker-key"),
        "real-kid-attacker-key": ({}, real_kid),
        "wrong-issuer": ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Attacker"}, real_kid),
        "wrong-client": ({"client_id": "attackerclient000000000000"}, real_kid),
        "expired": ({"iat": now - 7200, "exp": now - 3600}, real_kid),
    }
    changes, kid = variants[kind]
    return jwt.encode(dict(good, **changes), ATTACKER_KEY, algorithm="RS256", headers={"kid": kid})


@pytest.mark.parametrize("kind", ["alg-none", "hs256-with-the-public-key", "wrong-kid", "real-kid-attacker-key",
                                  "wrong-issuer", "wrong-client", "expired"])
def test_me_with_a_forged_access_token(devstack, signed_in, real_kid, kind):
    user, body, _ = signed_in
    (jwks,) = [k for k in pool_keys(devstack) if k["kid"] == real_kid]
    pem = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwks)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = _forge_access_token(kind, claims(body["accessToken"]), real_kid, pem)
    assert_error(user.me(forged), 401)
    assert_error(user.me(forged, check=None), 401)  # the authorizer refuses it before any route
    assert user.me(body["accessToken"]).status_code == 200  # the real one still works


@pytest.mark.parametrize("kind", ["wrong-issuer", "wrong-client", "id-token-use", "wrong-kid", "id-key-under-access-kid"])
def test_pool_refuses_bad_claims_even_with_its_own_key(kind):
    """Over HTTP a forger lacks the pool's key, so the claim checks above could hide behind
    the signature check: here the same checks run with the key (the emulator's verifier,
    which plays Cognito's GetUser for /api/me)."""
    from devstack.cognito.errors import CognitoError
    from devstack.cognito.tokens import TokenSigner

    signer = TokenSigner("http://127.0.0.1:1/us-east-1_DevStack01", "devstackclient")
    now = int(time.time())
    good = {"sub": str(uuid.uuid4()), "iss": signer.issuer, "client_id": "devstackclient", "token_use": "access",
            "iat": now, "exp": now + 60, "jti": str(uuid.uuid4()), "origin_jti": str(uuid.uuid4())}
    assert signer.decode_access_token(signer.sign(good))["sub"] == good["sub"]
    bad = {
        "wrong-issuer": dict(good, iss="http://127.0.0.1:1/us-east-1_Other"),
        "wrong-client": dict(good, client_id="otherclient"),
        "id-token-use": dict(good, token_use="id"),
    }.get(kind)
    if bad:
        token = signer.sign(bad)
    elif kind == "wrong-kid":
        token = jwt.encode(good, signer._keys["access"], algorithm="RS256", headers={"kid": "other"})
    else:  # the pool's own ID-token key cannot sign access tokens
        token = jwt.encode(good, signer._keys["id"], algorithm="RS256", headers={"kid": signer.kids["access"]})
    with pytest.raises(CognitoError):
        signer.decode_access_token(token)


def test_me_with_an_id_token(signed_in):
    user, body, _ = signed_in
    assert_error(user.me(body["idToken"]), 401)


def test_me_with_an_expired_access_token(devstack, user, restore_cognito_settings):
    cognito_settings(devstack, accessTokenValiditySeconds=1)
    body, _ = user.sign_in()
    time.sleep(2.1)
    assert_error(user.me(body["accessToken"]), 401)


def test_me_with_a_token_revoked_by_sign_out(signed_in):
    user, body, cookie = signed_in
    assert user.me(body["accessToken"]).status_code == 200
    assert user.with_cookie("/auth/sign-out", cookie).status_code == 204
    assert_error(user.me(body["accessToken"]), 401)  # Cognito's check sees the revocation at once
    # The stated exposure of local verification: the token passes until it expires (docs/design.md).
    assert user.me(body["accessToken"], check=None).status_code == 200


def test_refresh_after_sign_out(signed_in):
    user, _, cookie = signed_in
    assert user.with_cookie("/auth/sign-out", cookie).status_code == 204
    again = user.with_cookie("/auth/refresh", cookie)
    assert_not_signed_in(again)
    assert_error(again, 401)


def test_refresh_cookie_of_another_user_with_this_sub(signed_in, other):
    """The cookie is `sub:refresh token`: swapping in another sub must not mint tokens."""
    user, _, cookie = signed_in
    their_body, their_cookie = other.sign_in()
    their_sub = claims(their_body["idToken"])["sub"]
    forged = their_sub + ":" + cookie.split(":", 1)[1]
    answer = user.with_cookie("/auth/refresh", forged)
    assert_not_signed_in(answer)
    assert_error(answer, 401)


# ------------------------------------------------------------------ cross-site


STATE_CHANGING = ["/auth/start", "/auth/finish", "/auth/refresh", "/auth/sign-out"]


@pytest.mark.parametrize("route", STATE_CHANGING)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_foreign_origin(devstack, signed_in, route, origin):
    user, _, cookie = signed_in
    response = requests.post(devstack.app_url + route, timeout=10, json={"email": user.email},
                             headers={"Origin": origin, "Cookie": f"cas_refresh={cookie}"})
    assert_error(response, 403, "foreign_origin")
    assert_not_signed_in(response)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert user.with_cookie("/auth/refresh", cookie).status_code == 200  # sign-out did not happen


@pytest.mark.parametrize("route", STATE_CHANGING)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "text/plain", None])
def test_form_or_missing_content_type(devstack, signed_in, route, content_type):
    """What an HTML form (or a no-cors fetch) on another site can send, with the cookie."""
    user, _, cookie = signed_in
    headers = {"Cookie": f"cas_refresh={cookie}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = requests.post(devstack.app_url + route, data=f"email={user.email}", headers=headers, timeout=10)
    assert_error(response, 415, "unsupported_media_type")
    assert_not_signed_in(response)
    assert user.with_cookie("/auth/refresh", cookie).status_code == 200


@pytest.mark.parametrize("route", ["/auth/refresh", "/auth/sign-out"])
def test_missing_body_and_content_type(devstack, signed_in, route):
    user, _, cookie = signed_in
    response = requests.post(devstack.app_url + route, headers={"Cookie": f"cas_refresh={cookie}"}, timeout=10)
    assert_error(response, 415, "unsupported_media_type")
    assert user.with_cookie("/auth/refresh", cookie).status_code == 200


@pytest.mark.parametrize("route", ["/auth/start", "/auth/finish"])
def test_missing_json_body(devstack, route):
    response = requests.post(devstack.app_url + route, headers={"Content-Type": "application/json"}, timeout=10)
    assert_error(response, 400, "missing_field")


@pytest.mark.parametrize("route", STATE_CHANGING + ["/api/me", "/config"])
def test_cors_preflight_grants_nothing(devstack, route):
    response = requests.options(devstack.app_url + route, timeout=10, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    # (chalice local answers every preflight 200 with "Allow-Methods: OPTIONS" only;
    # API Gateway without CORS answers 403.) Without Allow-Origin the browser stops here.
    granted = {name.lower(): value for name, value in response.headers.items()}
    assert "access-control-allow-origin" not in granted and "access-control-allow-credentials" not in granted, granted
    assert "access-control-allow-headers" not in granted, granted
    assert set(granted.get("access-control-allow-methods", "OPTIONS").replace(" ", "").split(",")) <= {"OPTIONS"}


def test_refresh_cookie_attributes(devstack, user):
    challenge = user.start()
    finished = user.finish(challenge["session"], user.prove(challenge["challengeUrl"]))
    header = finished.headers["Set-Cookie"]
    value = header.split(";")[0].partition("=")[2]
    remember(value, value.partition(":")[2])
    attributes = {part.strip().split("=")[0].lower(): part.strip().partition("=")[2] for part in header.split(";")[1:]}
    assert set(attributes) >= {"httponly", "secure", "samesite", "path", "max-age"}, header
    assert attributes["samesite"] == "Strict" and attributes["path"] == "/auth", header
    assert 0 < int(attributes["max-age"]) <= 30 * 24 * 3600 and "domain" not in attributes, header
    assert value.partition(":")[2] not in finished.text  # the refresh token is never in JSON
    assert "refresh" not in json.dumps(finished.json()).lower()
    assert finished.headers.get("Cache-Control") == "no-store"


# ------------------------------------------------------------------ user enumeration


def test_start_answers_alike_for_new_and_existing_emails_in_shape(devstack, signed_in):
    existing, _, _ = signed_in
    newcomer = User(devstack, new_email("newcomer"))
    answers = []
    for person in (newcomer, existing):
        response = person.post("/auth/start", {"email": person.email})
        body = response.json()
        remember(body["session"], authsignal_token(body["challengeUrl"]))
        answers.append(response)
    new, old = answers
    assert new.status_code == old.status_code == 200
    ignore = {"date", "content-length"}
    assert {h.lower() for h in new.headers} - ignore == {h.lower() for h in old.headers} - ignore
    assert {k: v for k, v in new.headers.items() if k.lower() not in ignore | {"x-amzn-requestid"}} == \
        {k: v for k, v in old.headers.items() if k.lower() not in ignore | {"x-amzn-requestid"}}
    new_body, old_body = new.json(), old.json()
    assert set(new_body) == set(old_body) == {"status", "session", "challengeUrl", "challengeToken"}
    assert new_body["status"] == old_body["status"] == "CHALLENGE"
    assert len(new_body["session"]) == len(old_body["session"])
    assert new_body["challengeUrl"].split("?")[0] == old_body["challengeUrl"].split("?")[0]
    assert abs(len(new_body["challengeUrl"]) - len(old_body["challengeUrl"])) <= 4


def _spread(samples):
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return (q3 - q1) / 1.349  # a robust estimate of the standard deviation


def test_start_answers_alike_for_new_and_existing_emails_in_time(devstack, signed_in):
    """20 of each, interleaved. The medians must agree within three standard errors of their
    difference (each median's error is ~1.25 sigma / sqrt(n), sigma from the IQR), and at
    least 2 ms for clock and scheduler noise. Before the floor in signin.start, new emails
    answered 8-10 ms slower (tolerance ~5.6 ms): this test failed on that."""
    existing, _, _ = signed_in
    http = requests.Session()
    http.headers["Origin"] = devstack.app_url

    def timed(email):
        began = time.perf_counter()
        response = http.post(devstack.app_url + "/auth/start", json={"email": email}, timeout=20)
        elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.text
        remember(response.json()["session"], authsignal_token(response.json()["challengeUrl"]))
        return elapsed

    for _ in range(2):  # warm both paths and the connection
        timed(new_email("warm"))
        timed(existing.email)
    new, old = [], []
    for i in range(20):
        email = new_email("timing")
        remember(email, kind="email")
        if i % 2:
            new.append(timed(email))
            old.append(timed(existing.email))
        else:
            old.append(timed(existing.email))
            new.append(timed(email))
    n = len(new)
    standard_error = 1.2533 * math.sqrt((_spread(new) ** 2 + _spread(old) ** 2) / n)
    tolerance = max(0.002, 3 * standard_error)
    gap = statistics.median(new) - statistics.median(old)
    report = (f"median new {statistics.median(new) * 1000:.1f} ms, existing {statistics.median(old) * 1000:.1f} ms, "
              f"gap {gap * 1000:.1f} ms, tolerance {tolerance * 1000:.1f} ms")
    print(report)
    assert abs(gap) <= tolerance, report


# ------------------------------------------------------------------ refresh cookies planted by a neighbour


def _set_cookies(response):
    """Every Set-Cookie header of a real HTTP response (requests folds them into one)."""
    return response.raw.headers.getlist("Set-Cookie")


def _clears_every_refresh_cookie(response, path="/auth/refresh"):
    cleared = _set_cookies(response)
    assert cleared and all(c.startswith("cas_refresh=;") and "Max-Age=0" in c for c in cleared), cleared
    paths = {part.strip()[5:] for c in cleared for part in c.split(";") if part.strip().startswith("Path=")}
    assert {"/", "/auth", "/auth/", path} <= paths, paths  # every path a planted cookie could use


@pytest.mark.parametrize("attacker_first", [True, False])
def test_two_refresh_cookies_on_refresh(signed_in, other, attacker_first):
    """A sibling subdomain plants its own account's cookie next to the victim's: the browser
    sends both, in an order the attacker can influence. Neither account may be shown."""
    victim, _, victim_cookie = signed_in
    _, attacker_cookie = other.sign_in()
    both = [attacker_cookie, victim_cookie] if attacker_first else [victim_cookie, attacker_cookie]
    response = victim.post("/auth/refresh", {}, headers={"Cookie": "; ".join(f"cas_refresh={c}" for c in both)})
    assert_error(response, 401, "not_signed_in")
    assert_not_signed_in(response)
    _clears_every_refresh_cookie(response)


def test_two_refresh_cookies_on_sign_out(signed_in, other):
    """Sign-out with a planted cookie: the victim's token must die too, and both cookies go."""
    victim, _, victim_cookie = signed_in
    _, attacker_cookie = other.sign_in()
    response = victim.post("/auth/sign-out", {},
                           headers={"Cookie": f"cas_refresh={attacker_cookie}; cas_refresh={victim_cookie}"})
    assert response.status_code == 204, response.text
    _clears_every_refresh_cookie(response, "/auth/sign-out")
    assert_error(victim.with_cookie("/auth/refresh", victim_cookie), 401)


# ------------------------------------------------------------------ emails that look like someone else's


@pytest.mark.parametrize("email", [
    "vic\u200btim@example.com",          # zero-width space (Cf)
    "victim\u200d@example.com",          # zero-width joiner
    "victim@exam\u00adple.com",          # soft hyphen
    "\u202emoc.elpmaxe@mitciv",          # right-to-left override
    "victim@example.com\u2060",          # word joiner
    "\ufeffvictim@example.com",          # byte order mark
    "vic\x7ftim@example.com",            # DEL (Cc)
    "vic\u0085tim@example.com",          # next line (Cc)
    "victim@example.com\ue000",          # private use (Co)
    "victim@exa\U000e0041mple.com",      # tag character (Cf)
    "victim@ex\u0378ample.com",          # unassigned (Cn)
])
def test_email_with_invisible_characters(devstack, email):
    remember(email, kind="email")
    response = User(devstack, new_email()).post("/auth/start", {"email": email})
    assert_error(response, 400, "invalid_email")


@pytest.mark.parametrize("email", ["victim@ex_ample.com", "victim@-example.com", "victim@example-.com",
                                   "victim@xn--zz.com", "victim@exa\U0001f600mple.com", "victim@" + "a" * 64 + ".com",
                                   "victim@example..com"])
def test_email_whose_domain_is_not_idna(devstack, email):
    remember(email, kind="email")
    response = User(devstack, new_email()).post("/auth/start", {"email": email})
    assert_error(response, 400, "invalid_email")


def test_email_in_another_unicode_form_is_the_same_account(devstack):
    """NFD and NFC spellings of one address must not be two accounts."""
    local = f"jos\u00e9-{uuid.uuid4().hex[:8]}"
    composed = User(devstack, f"{local}@example.com")
    body, _ = composed.sign_in()
    decomposed = User(devstack, composed.email.replace("\u00e9", "e\u0301"))
    again = decomposed.start()
    token = decomposed.prove(again["challengeUrl"], email=composed.email)
    finished = decomposed.finish(again["session"], token)
    assert finished.status_code == 200, finished.text
    remember(finished.json()["idToken"], finished.json()["accessToken"])
    assert claims(finished.json()["idToken"])["sub"] == claims(body["idToken"])["sub"]


@pytest.mark.parametrize("spelling", [
    lambda domain: domain.upper(),                                                   # case
    lambda domain: "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in domain),  # full-width letters
    lambda domain: domain.encode("idna").decode(),                                   # punycode (xn--)
])
def test_a_domain_spelled_another_way_is_the_same_account(devstack, spelling):
    """One mailbox, one account: the domain is stored in its IDNA-mapped form."""
    domain = f"b\u00fccher-{uuid.uuid4().hex[:6]}.example"
    owner = User(devstack, f"reader@{domain}")
    body, _ = owner.sign_in()
    other = User(devstack, f"reader@{spelling(domain)}")
    again = other.start()
    token = other.prove(again["challengeUrl"], email=owner.email)  # the code went to the one mailbox
    finished = other.finish(again["session"], token)
    assert finished.status_code == 200, finished.text
    remember(finished.json()["idToken"], finished.json()["accessToken"])
    assert claims(finished.json()["idToken"])["sub"] == claims(body["idToken"])["sub"]


# ------------------------------------------------------------------ origin: scheme, host and port


def test_origin_with_the_same_host_but_another_scheme(devstack, signed_in):
    user, _, cookie = signed_in
    host = devstack.app_url.split("://", 1)[1]
    for origin, proto in [(f"https://{host}", None), (f"http://{host}", "https")]:
        headers = {"Origin": origin, "Cookie": f"cas_refresh={cookie}"}
        if proto:
            headers["X-Forwarded-Proto"] = proto  # what API Gateway sends: the page is https
        response = requests.post(devstack.app_url + "/auth/refresh", json={}, headers=headers, timeout=10)
        assert_error(response, 403, "foreign_origin")
        assert_not_signed_in(response)


def test_origin_behind_api_gateway_is_https(devstack, signed_in):
    """The same page over https (X-Forwarded-Proto) is accepted: the check is not just strict, it is right."""
    user, _, cookie = signed_in
    host = devstack.app_url.split("://", 1)[1]
    response = requests.post(devstack.app_url + "/auth/refresh", json={}, timeout=10, headers={
        "Origin": f"https://{host}", "X-Forwarded-Proto": "https", "Cookie": f"cas_refresh={cookie}"})
    assert response.status_code == 200, response.text
    remember(response.json()["idToken"], response.json()["accessToken"])


# ------------------------------------------------------------------ a misconfigured stage


def test_misconfigured_stage_tells_callers_nothing(client, monkeypatch, caplog):
    import app

    """A stage whose settings are refused (here: loopback endpoints in a 'deployed' Lambda)
    must not show its setting names or values to anonymous callers; the log has them."""
    monkeypatch.setattr(app.app.log, "handlers", [*app.app.log.handlers, caplog.handler])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "cognito-authsignal-local")
    headers = {"Content-Type": "application/json"}
    answers = [client.http.get("/config"), client.http.get("/"),
               client.http.post("/auth/start", body=json.dumps({"email": new_email()}), headers=headers)]
    for response in answers:
        assert response.status_code == 500, response.body
        body = json.loads(response.body)
        assert body == {"error": {"code": "not_configured", "message": body["error"]["message"]}}
        for secret_detail in ("127.0.0.1", "COGNITO", "AUTHSIGNAL", "ENDPOINT", "loopback", "http"):
            assert secret_detail not in response.body.decode(), response.body
    assert any("loopback (http://127.0.0.1" in r.getMessage() for r in caplog.records)  # the operator sees it all
    out = client.http.post("/auth/sign-out", body=b"{}", headers={**headers, "Cookie": "cas_refresh=sub:token"})
    assert out.status_code == 204 and "Max-Age=0" in out.headers["Set-Cookie"]


# ------------------------------------------------------------------ account squatting with the user's own token


@pytest.mark.parametrize("attribute,value", [("email", "victim"), ("email_verified", "true"),
                                             ("email", "victim-and-verified")])
def test_squatting_email_change_with_the_access_token(devstack, cognito, signed_in, attribute, value):
    """The access token's scope allows UpdateUserAttributes: moving the account onto the victim's
    address (so the victim later signs in to the attacker's account) must be refused."""
    attacker, body, _ = signed_in
    victim = new_email("victim")
    remember(victim, kind="email")
    changes = {"victim": [{"Name": "email", "Value": victim}], "true": [{"Name": "email_verified", "Value": "true"}],
               "victim-and-verified": [{"Name": "email", "Value": victim}, {"Name": "email_verified", "Value": "true"}]}
    with pytest.raises(ClientError) as refused:
        cognito.update_user_attributes(AccessToken=body["accessToken"], UserAttributes=changes[value])
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    me = attacker.me(body["accessToken"]).json()
    assert me["email"] == attacker.email
    # The victim, signing up later, gets an account of their own.
    victim_user = User(devstack, victim)
    victim_body, _ = victim_user.sign_in()
    assert claims(victim_body["idToken"])["sub"] != claims(body["idToken"])["sub"]


@pytest.fixture
def client_allowing_email_writes(devstack, cognito):
    """The dev app client as an adopted pool's client might be: WriteAttributes never set."""
    from triggers.connect import CLIENT_SETTINGS

    env = devstack.local_env()
    pool, client_id = env["COGNITO_USER_POOL_ID"], env["COGNITO_CLIENT_ID"]
    cognito.update_user_pool_client(UserPoolId=pool, ClientId=client_id)
    yield
    cognito.update_user_pool_client(UserPoolId=pool, ClientId=client_id,
                                    WriteAttributes=CLIENT_SETTINGS["WriteAttributes"])


def test_squatting_through_a_client_that_allows_email_writes(devstack, cognito, signed_in,
                                                            client_allowing_email_writes):
    """Where email is writable, the attacker proves their own address, moves the account onto
    the victim's before answering, and signs in: Verify must not call the victim's address
    proven (Authsignal proved the one Create tracked)."""
    attacker, body, _ = signed_in
    victim = new_email("victim")
    remember(victim, kind="email")
    challenge = attacker.start()
    token = attacker.prove(challenge["challengeUrl"])
    cognito.update_user_attributes(AccessToken=body["accessToken"], UserAttributes=[{"Name": "email", "Value": victim}])
    # The page sends the email it started with (the session is bound to it).
    finished = attacker.finish(challenge["session"], token)
    assert finished.status_code == 200, finished.text  # the answer was right: a sign-in
    tokens = finished.json()
    remember(tokens["idToken"], tokens["accessToken"])
    me = attacker.me(tokens["accessToken"]).json()
    assert me["email"] == victim and me["emailVerified"] is False, me
    assert claims(tokens["idToken"])["email_verified"] is False


def test_email_changed_by_an_admin_between_create_and_verify(devstack, cognito, signed_in):
    """Create tracked the old address; an admin moves the account to a new one before the
    answer: the sign-in may succeed, the new address stays unverified."""
    user, body, _ = signed_in
    changed = new_email("changed")
    remember(changed, kind="email")
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    cognito.admin_update_user_attributes(UserPoolId=devstack.local_env()["COGNITO_USER_POOL_ID"],
                                         Username=claims(body["idToken"])["sub"],
                                         UserAttributes=[{"Name": "email", "Value": changed}])
    finished = user.finish(challenge["session"], token)  # the email the session started with
    assert finished.status_code == 200, finished.text
    tokens = finished.json()
    remember(tokens["idToken"], tokens["accessToken"])
    me = user.me(tokens["accessToken"]).json()
    assert me["email"] == changed and me["emailVerified"] is False, me


def test_pre_sign_up_from_another_client_is_not_auto_confirmed(devstack, cognito):
    """Another app of the same pool signs users up: our PreSignUp must not confirm them
    (that app relies on its own confirmation), so they cannot sign in through us either."""
    pool = devstack.local_env()["COGNITO_USER_POOL_ID"]
    other = cognito.create_user_pool_client(UserPoolId=pool, ClientName="another-app",
                                            GenerateSecret=True)["UserPoolClient"]
    email = new_email("otherapp")
    remember(email, kind="email")
    answer = cognito.sign_up(ClientId=other["ClientId"], Username=email, Password="Aa1!" + "x" * 20,
                             SecretHash=_hash(other["ClientSecret"], email, other["ClientId"]))
    assert answer["UserConfirmed"] is False
    assert cognito.admin_get_user(UserPoolId=pool, Username=email)["UserStatus"] == "UNCONFIRMED"
    assert User(devstack, email).post("/auth/start", {"email": email}).status_code != 200  # no challenge
