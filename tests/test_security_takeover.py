"""Account takeover through the first authenticator, end to end over real HTTP against the
dev stack, with the Authsignal emulator as permissive as Authsignal: a bare track token of a
user with no authenticator may enrol ANY first method (tests/test_authsignal_enrolment.py).

The attacker types the victim's address, takes the token `/auth/start` hands out, and tries
to enrol an authenticator of their own with it. Each test is one attack and fails if the
attack works; counted by `make security` (tests/security_report.py)."""
import time
import types
import uuid

import boto3
import pytest
import requests

from chalicelib import settings, signin
from chalicelib.cognito_gateway import UserPoolClient
from chalicelib.http import ApiError
from tests.security_helpers import User, assert_error, assert_not_signed_in, capture_in_process_logs, remember
from tests.test_authsignal_client_api import Client
from tests.test_authsignal_enrolment import ENROLMENTS

pytestmark = pytest.mark.devstack


@pytest.fixture(autouse=True, scope="module")
def _logs():
    capture_in_process_logs()


def new_email(tag):
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def cognito(devstack):
    return boto3.client("cognito-idp", endpoint_url=devstack.cognito_url, region_name="us-east-1",
                        aws_access_key_id="devstack", aws_secret_access_key="devstack")


def seeded(devstack, tag, verified):
    """A user of an adopted pool that never used this app: Authsignal has no authenticator for them."""
    email = new_email(tag)
    answer = requests.post(devstack.cognito_url + "/_dev/users", timeout=5,
                           json={"email": email, "status": "CONFIRMED", "emailVerified": verified})
    assert answer.status_code == 200, answer.text
    return email


TARGETS = {
    "a new address": lambda stack: new_email("victim"),
    "an adopted pool's admin-created verified user": lambda stack: seeded(stack, "admin-made", True),
    "another client's confirmed user": lambda stack: seeded(stack, "other-client", False),
}


def email_verified(devstack, email):
    pool = devstack.local_env()["COGNITO_USER_POOL_ID"]
    attributes = cognito(devstack).admin_get_user(UserPoolId=pool, Username=email)["UserAttributes"]
    return {a["Name"]: a["Value"] for a in attributes}["email_verified"]


@pytest.mark.parametrize("how", ENROLMENTS)
@pytest.mark.parametrize("target", TARGETS)
def test_the_token_from_auth_start_enrols_no_authenticator_of_the_attackers(devstack, target, how):
    victim = TARGETS[target](devstack)
    attacker = User(devstack, victim)
    before = email_verified(devstack, victim) if target != "a new address" else "false"
    round_ = attacker.start()
    enrol, _ = ENROLMENTS[how]
    answer = enrol(types.SimpleNamespace(url=devstack.authsignal_url), round_["challengeToken"])
    assert answer.status_code == 403, answer.text[:300]
    # Whatever the dialog says, Cognito issues nothing for that token...
    assert_not_signed_in(attacker.finish(round_["session"], round_["challengeToken"]))
    assert email_verified(devstack, victim) == before
    # ...and the real owner signs in with the code sent to their own inbox, which verifies it.
    tokens, _ = User(devstack, victim).sign_in()
    me = User(devstack, victim).me(tokens["accessToken"]).json()
    assert me["email"] == victim and me["emailVerified"] is True


@pytest.mark.parametrize("mode", ["now", "at_track"])
def test_the_defence_holds_whichever_way_authsignal_judges_a_first_enrolment(devstack, mode):
    requests.post(devstack.authsignal_url + "/_dev/tenant", json={"firstEnrolment": mode}, timeout=5).raise_for_status()
    try:
        test_the_token_from_auth_start_enrols_no_authenticator_of_the_attackers(
            devstack, "a new address", "AUTHENTICATOR_APP by the client API")
        test_the_token_from_auth_start_enrols_no_authenticator_of_the_attackers(
            devstack, "another client's confirmed user", "EMAIL_OTP of another address by the client API")
    finally:
        requests.post(devstack.authsignal_url + "/_dev/tenant", json={"firstEnrolment": "either"}, timeout=5)


def client_api_answers(devstack, token):
    """Every client-API call a token holder can make without proving anything: (status, body shape)."""
    client = Client(types.SimpleNamespace(url=devstack.authsignal_url))
    shapes = []
    for path, body, method in [
        ("/user-authenticators", None, "GET"),
        ("/user-authenticators/passkey/authentication-options", {}, "POST"),
        ("/user-authenticators/passkey/registration-options", {"username": "x"}, "POST"),
        ("/user-authenticators/totp", {}, "POST"),
        ("/user-authenticators/email-otp", {"email": "someone@evil.example"}, "POST"),
        ("/user-authenticators/sms", {"phoneNumber": "+15550107777"}, "POST"),
        ("/challenge/sms", {}, "POST"),
        ("/verify/email-otp", {"verificationCode": "000000"}, "POST"),
    ]:
        answer = client.call(path, body, token=token, method=method)
        payload = answer.json()
        shape = sorted(payload) if isinstance(payload, dict) else [sorted(a) for a in payload]
        shapes.append((path, answer.status_code, shape, payload.get("errorCode") if isinstance(payload, dict) else None))
    return shapes


def test_new_and_existing_addresses_look_the_same_to_a_token_holder(devstack):
    member = User(devstack, new_email("member"))
    member.sign_in()
    seen = {}
    for kind, email in [("new", new_email("stranger")), ("member", member.email)]:
        seen[kind] = client_api_answers(devstack, User(devstack, email).start()["challengeToken"])
    assert seen["new"] == seen["member"]
    assert seen["new"][0][1:3] == (200, [sorted(["userAuthenticatorId", "verificationMethod"])])


# ---- /api/passkey-token: a recent sign-in, from our own page -----------------------------

def test_a_passkey_token_needs_the_pages_own_origin(devstack):
    user = User(devstack, new_email("passkey"))
    tokens, _ = user.sign_in()
    bearer = {"Authorization": "Bearer " + tokens["accessToken"]}
    fresh = user.post("/api/passkey-token", {}, headers=bearer)
    assert fresh.status_code == 200 and fresh.json()["token"], fresh.text
    remember(fresh.json()["token"])
    without = requests.post(devstack.app_url + "/api/passkey-token", json={}, headers=bearer, timeout=10)
    assert_error(without, 403, "origin_required")
    foreign = requests.post(devstack.app_url + "/api/passkey-token", json={}, timeout=10,
                            headers={**bearer, "Origin": "http://evil.example"})
    assert_error(foreign, 403, "foreign_origin")


def test_a_passkey_token_needs_a_sign_in_of_the_last_few_minutes(devstack, local_env):
    """The clock is the route's input (`now`): the same real token, judged later."""
    user = User(devstack, new_email("stale"))
    tokens, _ = user.sign_in()
    pool = UserPoolClient(settings.load())
    later = time.time() + signin.identity.RECENT_PROOF_SECONDS + 5
    with pytest.raises(ApiError) as refused:
        signin.passkey_token(pool, tokens["accessToken"], now=later)
    assert (refused.value.status, refused.value.code) == (401, "reauthenticate")
    assert "sign in again" in refused.value.message
    assert signin.passkey_token(pool, tokens["accessToken"], now=time.time())["token"]


def test_a_refreshed_access_token_keeps_the_sign_ins_age(devstack, local_env):
    """A refresh (what a stolen cookie gives) renews the access token, not the proof."""
    user = User(devstack, new_email("refreshed"))
    tokens, cookie = user.sign_in()
    refreshed = user.with_cookie("/auth/refresh", cookie).json()
    assert signin.jwt_claims(refreshed["accessToken"])["auth_time"] == signin.jwt_claims(tokens["accessToken"])["auth_time"]
    with pytest.raises(ApiError):
        signin.passkey_token(UserPoolClient(settings.load()), refreshed["accessToken"],
                             now=time.time() + signin.identity.RECENT_PROOF_SECONDS + 5)
