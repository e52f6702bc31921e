"""The `cognito_access_token` authorizer through Chalice's test client (which runs custom
authorizers as `chalice local` does), against the dev stack's Cognito emulator: what it allows,
what it refuses (a 401 in the API's error shape, and no Cognito call), and key rotation.

It has its own dev stack: rotating the pool's keys must not race the other suites' tokens."""
import base64
import hashlib
import hmac
import json
import os
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import access_tokens, authorizer, http
from chalicelib.signin import jwt_claims
from tests.conftest import ROOT, running_devstack
from tests.test_api import assert_error, body, post, sign_in


@pytest.fixture(scope="module")
def stack():
    project_dir = os.path.join(ROOT, ".devstack", f"project-authorizer-{os.getpid()}")
    with running_devstack(project_dir=project_dir) as running:
        yield running


@pytest.fixture
def client(stack):
    from chalice.test import Client

    import app
    access_tokens.forget_key_sets()  # a fresh container: its first protected call fetches the JWKS
    with Client(app.app, stage_name="local", project_dir=stack.project_dir) as test_client:
        yield test_client
    access_tokens.forget_key_sets()


@pytest.fixture
def signed_in(client, stack):
    email = f"authz-{uuid.uuid4().hex[:10]}@example.com"
    answer = body(sign_in(client, stack, email))
    assert answer["status"] == "SIGNED_IN"
    return answer


def me(client, token, query=""):
    return client.http.get("/api/me" + query, headers={"Authorization": f"Bearer {token}"})


def cognito_calls(stack):
    return sum(stack.stats("cognito")["calls"].values())


def jwks_fetches(stack):
    return stack.stats("cognito")["jwksFetches"]


def pool_signed(stack, claims):
    """Claims signed with the pool's own current key (the emulator's /_dev/sign-token)."""
    answer = requests.post(f"{stack.cognito_url}/_dev/sign-token", json={"claims": claims}, timeout=5)
    answer.raise_for_status()
    return answer.json()["token"]


def rotate(stack, keep_old=True):
    answer = requests.post(f"{stack.cognito_url}/_dev/rotate-keys", json={"keepOld": keep_old}, timeout=5)
    answer.raise_for_status()
    return answer.json()


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_me_verifies_locally_with_no_cognito_call(client, stack, signed_in):
    sub = jwt_claims(signed_in["idToken"])["sub"]
    before = cognito_calls(stack)
    for _ in range(20):
        answer = me(client, signed_in["accessToken"])
        assert answer.status_code == 200, answer.body
        assert body(answer)["sub"] == sub and body(answer)["verifiedBy"] == "local"
    assert cognito_calls(stack) == before  # 0 Cognito calls per request
    assert body(answer)["expiresAt"] == jwt_claims(signed_in["accessToken"])["exp"]


def test_me_with_cognitos_check_calls_get_user(client, stack, signed_in):
    before = stack.stats("cognito")["calls"].get("GetUser", 0)
    answer = body(me(client, signed_in["accessToken"], "?check=cognito"))
    assert answer["verifiedBy"] == "cognito" and answer["email"].startswith("authz-")
    assert stack.stats("cognito")["calls"]["GetUser"] == before + 1


def test_sign_out_revocation_is_seen_by_cognitos_check_only(client, stack, email):
    finished = sign_in(client, stack, email)
    token = body(finished)["accessToken"]
    cookie = finished.headers["Set-Cookie"].split(";")[0]
    assert post(client, "/auth/sign-out", {}, headers={"Cookie": cookie}).status_code == 204
    # The stated exposure: a revoked access token verifies locally until it expires...
    assert me(client, token).status_code == 200
    # ...and a route that asks Cognito refuses it at once.
    error = assert_error(me(client, token, "?check=cognito"), 401, "not_authorized")
    assert "revoked" in error["message"]


def _forged(kind, claims, stack, kid):
    now = int(time.time())
    if kind == "forged-signature":
        attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": kid})
    if kind == "alg-none":
        return f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}."
    if kind == "hs256-public-key":
        jwks = requests.get(f"{stack.cognito_url}/{stack.local_env()['COGNITO_USER_POOL_ID']}/.well-known/jwks.json",
                            timeout=5).json()
        (key,) = [k for k in jwks["keys"] if k["kid"] == kid]
        pem = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(key)).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"
    if kind == "unknown-kid":
        return jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                          algorithm="RS256", headers={"kid": "not-a-key-of-this-pool"})
    changes = {
        "expired": {"iat": now - 3600, "exp": now - 60},
        "not-yet-valid": {"iat": now + 600, "exp": now + 1200},
        "another-client": {"client_id": "anotherclient000000000000"},
        "another-pool": {"iss": claims["iss"].rsplit("/", 1)[0] + "/us-east-1_Another01"},
    }[kind]
    return pool_signed(stack, dict(claims, **changes))


REFUSALS = {
    "forged-signature": "signature", "alg-none": "RS256", "hs256-public-key": "RS256",
    "unknown-kid": "does not publish", "expired": "expired", "not-yet-valid": "clock",
    "another-client": "another app", "another-pool": "another user pool",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_each_refusal_is_a_401_that_never_reaches_cognito(client, stack, signed_in, kind):
    claims = jwt_claims(signed_in["accessToken"])
    kid = jwt.get_unverified_header(signed_in["accessToken"])["kid"]
    forged = _forged(kind, claims, stack, kid)
    before = cognito_calls(stack)
    answer = me(client, forged)
    error = assert_error(answer, 401)
    assert REFUSALS[kind] in error["message"], error
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in answer.headers
    assert cognito_calls(stack) == before
    # Cognito's check is behind the authorizer too: the refused token never gets to GetUser.
    assert_error(me(client, forged, "?check=cognito"), 401)
    assert cognito_calls(stack) == before
    assert me(client, signed_in["accessToken"]).status_code == 200  # the real one still works


@pytest.mark.parametrize("kind,expected", [("id-token", "ID token"), ("malformed", "malformed"),
                                           ("oversized", "too long"), ("refresh-token", "refresh token"),
                                           ("basic", "Authorization: Bearer"), ("empty", "Authorization: Bearer")])
def test_tokens_that_are_not_access_tokens(client, stack, signed_in, kind, expected):
    header = {
        "id-token": "Bearer " + signed_in["idToken"],
        "malformed": "Bearer a.b.c",
        "oversized": "Bearer " + "a" * 5000 + "." + "b" * 5000 + ".c",
        "refresh-token": "Bearer " + ".".join(["eyJjdHkiOiJKV1QifQ", "a" * 342, "b" * 16, "c" * 1398, "d" * 22]),
        "basic": "Basic dXNlcjpwYXNz",
        "empty": "Bearer ",
    }[kind]
    before = cognito_calls(stack)
    error = assert_error(client.http.get("/api/me", headers={"Authorization": header}), 401)
    assert expected in error["message"]
    assert cognito_calls(stack) == before


def test_no_authorization_header_is_a_401(client):
    # chalice local answers this itself, before any authorizer runs ({"message": "Unauthorized"});
    # deployed, the UNAUTHORIZED gateway response gives the API's error shape (test below).
    assert client.http.get("/api/me").status_code == 401


def test_rotation_one_refresh_old_tokens_verify_until_they_expire(client, stack, signed_in):
    old = signed_in["accessToken"]
    assert me(client, old).status_code == 200
    fetches = jwks_fetches(stack)
    rotate(stack)
    new = body(sign_in(client, stack, f"authz-{uuid.uuid4().hex[:10]}@example.com"))["accessToken"]
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert me(client, new).status_code == 200
    assert jwks_fetches(stack) == fetches + 1  # one refresh for the new kid
    assert me(client, old).status_code == 200  # its key is still published
    assert me(client, new).status_code == 200 and jwks_fetches(stack) == fetches + 1


def test_a_retired_keys_tokens_are_refused(client, stack, signed_in):
    old = signed_in["accessToken"]
    assert me(client, old).status_code == 200
    rotate(stack, keep_old=False)
    access_tokens.forget_key_sets()  # a new container: it sees only the keys published now
    assert "does not publish" in assert_error(me(client, old), 401)["message"]


def test_a_flood_of_unknown_kids_costs_one_refresh(client, stack, signed_in):
    assert me(client, signed_in["accessToken"]).status_code == 200
    fetches, calls = jwks_fetches(stack), cognito_calls(stack)
    claims = jwt_claims(signed_in["accessToken"])
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for i in range(50):
        token = jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": f"made-up-{i}"})
        assert_error(me(client, token), 401)
    assert jwks_fetches(stack) <= fetches + 1 and cognito_calls(stack) == calls


def test_the_jwks_unreachable_is_a_503_and_not_cached(client, signed_in, monkeypatch):
    def unreachable(url):  # fault injection: the pool's JWKS endpoint does not answer
        raise access_tokens.KeysUnavailable(f"{url} did not answer")

    monkeypatch.setattr(access_tokens, "fetch_jwks", unreachable)
    access_tokens.forget_key_sets()
    error = assert_error(me(client, signed_in["accessToken"]), 503, "unavailable")
    assert "Try again" in error["message"]
    monkeypatch.undo()
    assert me(client, signed_in["accessToken"]).status_code == 200  # nothing was cached


# ---------------------------------------------------------------------- deployed: the gateway responses


def render(template, context):
    """API Gateway's substitution of `$context.authorizer.<key>` in a gateway response."""
    for key, value in context.items():
        template = template.replace(f"$context.authorizer.{key}", str(value))
    return template


def test_a_deny_renders_as_the_same_401_deployed(monkeypatch):
    """Deployed, a refusal is a Deny whose context the ACCESS_DENIED gateway response shows: the
    same status and body as `chalice local` answers (tests above)."""
    import sys

    from chalice.app import AuthRequest

    monkeypatch.delitem(sys.modules, "chalice.local", raising=False)  # as in a deployed Lambda
    monkeypatch.setenv("COGNITO_USER_POOL_ID", "us-east-1_Pool0001")
    monkeypatch.setenv("COGNITO_CLIENT_ID", "client0000000000000000000")
    monkeypatch.delenv("COGNITO_ENDPOINT_URL", raising=False)
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/GET/api/me"
    answer = authorizer.authorize(AuthRequest("TOKEN", "Bearer a.b.c", arn))
    [statement] = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Resource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:abc123/api/*/*"]
    response = authorizer.gateway_responses()["ACCESS_DENIED"]
    assert response["statusCode"] == 401
    rendered = json.loads(render(response["responseTemplates"]["application/json"], answer["context"]))
    assert rendered == {"error": {"code": "invalid_token", "message": "The access token is malformed. Sign in again."}}
    headers = {k.split(".")[-1]: v.strip("'") for k, v in response["responseParameters"].items()}
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"


def test_the_template_and_the_code_hold_the_same_gateway_responses():
    with open(os.path.join(ROOT, "triggers", "cloudformation.json")) as handle:
        template = json.load(handle)
    definition = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = definition["x-amazon-apigateway-gateway-responses"]
    assert responses == http.gateway_responses() and authorizer.gateway_responses().items() <= responses.items()
    for response in authorizer.gateway_responses().values():
        json.loads(render(response["responseTemplates"]["application/json"], {"code": "c", "message": "m"}))
        assert all("'" not in value.strip("'") for value in response["responseParameters"].values())
