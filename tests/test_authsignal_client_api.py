"""The emulator's client API (what `@authsignal/browser` calls for passkeys), over real HTTP.

Passkeys come from a software authenticator (tests/webauthn_authenticator.py) whose
signatures the emulator checks with py_webauthn; the server side is the real `authsignal` SDK.
"""
from __future__ import annotations

import base64

import pytest
import requests

from tests.test_authsignal_emulator import ACTION, CONFIG, enrolled_user, new_user, sign_in
from tests.webauthn_authenticator import SoftAuthenticator

TENANT = CONFIG["stages"]["local"]["environment_variables"]["AUTHSIGNAL_TENANT_ID"]
ORIGIN = "http://localhost:8000"
ENROL_ACTION = "addPasskey"


class Client:
    """The Web SDK's calls, as it makes them (JSON, its Authorization schemes, an Origin)."""

    def __init__(self, emu, origin=ORIGIN):
        self.base = f"{emu.url}/v1/client"
        self.origin = origin

    def call(self, path, body=None, token=None, basic=TENANT, method="POST"):
        auth = f"Bearer {token}" if token else "Basic " + base64.b64encode(basic.encode()).decode()
        headers = {"Authorization": auth, "Origin": self.origin}
        if method == "GET":
            return requests.get(self.base + path, headers=headers, timeout=5)
        return requests.post(self.base + path, json=body or {}, headers=headers, timeout=5)


def enrol_passkey(emu, sdk, user_id, email, authenticator):
    """Add a passkey as the page does: a server-vouched token, then passkey.signUp."""
    token = sdk.track(user_id, ENROL_ACTION, {"email": email, "scope": "add:authenticators"})["token"]
    client = Client(emu)
    options = client.call("/user-authenticators/passkey/registration-options", {"username": email}, token=token)
    assert options.status_code == 200, options.text
    added = client.call("/user-authenticators/passkey", token=token, body={
        "registrationCredential": authenticator.create(options.json()["options"]),
        "conditionalCreate": False, "challengeId": options.json()["challengeId"]})
    assert added.status_code == 200, added.text
    return added.json()


def passkey_sign_in(emu, token, authenticator, credential_id=None):
    client = Client(emu)
    options = client.call("/user-authenticators/passkey/authentication-options", token=token)
    assert options.status_code == 200, options.text
    return client.call("/verify/passkey", token=token, body={
        "authenticationCredential": authenticator.get(options.json()["options"], credential_id),
        "deviceId": "device-1", "challengeId": options.json()["challengeId"]})


def error_of(response):
    body = response.json()
    assert set(body) == {"error", "errorCode", "errorDescription"}, body
    return response.status_code, body["errorCode"]


# ---- CORS and auth ------------------------------------------------------------------------

def test_preflight_and_answers_allow_the_page_to_call_cross_origin(emu):
    preflight = requests.options(f"{emu.url}/v1/client/verify/passkey", timeout=5, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    answer = Client(emu).call("/challenge", {"action": ACTION})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize("basic", [TENANT, TENANT + ":"])
def test_basic_takes_the_tenant_id_with_or_without_a_colon(emu, basic):
    answer = Client(emu).call("/challenge", {"action": ACTION}, basic=basic)
    assert answer.status_code == 200 and answer.json()["challengeId"]


@pytest.mark.parametrize("auth", ["Basic " + base64.b64encode(b"another-tenant").decode(), "Bearer not.a.token",
                                  "Basic !!", ""])
def test_a_wrong_tenant_or_token_is_refused_in_authsignals_error_shape(emu, auth):
    answer = requests.post(f"{emu.url}/v1/client/challenge", json={"action": ACTION}, timeout=5,
                           headers={"Authorization": auth, "Origin": ORIGIN})
    status, code = error_of(answer)
    assert status == 401 and code in ("unauthorized", "invalid_token")
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can read why


# ---- enrolment -------------------------------------------------------------------------------

def test_a_second_method_needs_a_proven_first_one(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)  # email OTP enrolled
    unproven = sdk.track(user_id, ACTION, {"email": email})["token"]
    answer = Client(emu).call("/user-authenticators/passkey/registration-options", {"username": email}, token=unproven)
    assert error_of(answer) == (403, "unauthorized")


def test_an_enrolled_user_cannot_enrol_a_passkey_before_proving_the_email(emu, sdk):
    # A user with no authenticator can (test_authsignal_enrolment): the app never hands out such a token.
    user_id, email = enrolled_user(sdk)
    token = sdk.track(user_id, ACTION, {"email": email})["token"]
    answer = Client(emu).call("/user-authenticators/passkey/registration-options", {"username": email}, token=token)
    assert error_of(answer) == (403, "unauthorized")


def test_enrolment_records_a_passkey_authenticator(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)
    added = enrol_passkey(emu, sdk, user_id, email, SoftAuthenticator(ORIGIN))
    assert added["isVerified"] is True and added["userId"] == user_id and added["accessToken"]
    assert added["userAuthenticator"]["verificationMethod"] == "PASSKEY"
    tracked = sdk.track(user_id, ACTION, {"email": email})
    assert "PASSKEY" in tracked["enrolled_verification_methods"]
    listed = Client(emu).call("/user-authenticators", token=tracked["token"], method="GET")
    assert {a["verificationMethod"] for a in listed.json()} == {"EMAIL_OTP", "PASSKEY"}


# ---- sign-in -------------------------------------------------------------------------------

def test_a_passkey_answers_the_tracked_action_itself(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)
    authenticator = SoftAuthenticator(ORIGIN)
    enrol_passkey(emu, sdk, user_id, email, authenticator)
    tracked = sdk.track(user_id, ACTION, {"email": email})
    answer = passkey_sign_in(emu, tracked["token"], authenticator)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["isVerified"] is True and body["userId"] == user_id and body["username"] == email
    validated = sdk.validate_challenge({"token": body["accessToken"], "userId": user_id, "action": ACTION})
    assert validated["is_valid"] is True and validated["state"] == "CHALLENGE_SUCCEEDED"
    assert validated["verification_method"] == "PASSKEY"
    assert validated["idempotency_key"] == tracked["idempotency_key"]  # the round's binding holds


def test_a_discoverable_sign_in_is_a_new_action_of_its_own(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)
    authenticator = SoftAuthenticator(ORIGIN)
    enrol_passkey(emu, sdk, user_id, email, authenticator)
    client = Client(emu)
    challenge_id = client.call("/challenge", {"action": ACTION}).json()["challengeId"]
    options = client.call("/user-authenticators/passkey/authentication-options", {"challengeId": challenge_id})
    assert options.json()["challengeId"] == challenge_id
    assert not options.json()["options"].get("allowCredentials")  # the passkey names the user
    answer = client.call("/verify/passkey", {"challengeId": challenge_id, "deviceId": "d",
                                             "authenticationCredential": authenticator.get(options.json()["options"])})
    assert answer.status_code == 200, answer.text
    validated = sdk.validate_challenge({"token": answer.json()["accessToken"]})
    assert validated["user_id"] == user_id and validated["verification_method"] == "PASSKEY"
    assert validated["state"] == "CHALLENGE_SUCCEEDED"


def test_an_unknown_passkey_is_refused_as_unknown_credential(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)
    enrol_passkey(emu, sdk, user_id, email, SoftAuthenticator(ORIGIN))
    stranger = SoftAuthenticator(ORIGIN)
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": "eA"}, "challenge": "AA"})  # never registered
    tracked = sdk.track(user_id, ACTION, {"email": email})
    assert error_of(passkey_sign_in(emu, tracked["token"], stranger, next(iter(stranger.credentials)))) == (
        400, "unknown_credential")
    assert sdk.validate_challenge({"token": tracked["token"]})["is_valid"] is False


def test_another_users_passkey_is_unknown_for_this_users_token(emu, sdk):
    alice, alice_email = new_user()
    bob, bob_email = new_user()
    for user_id, email in ((alice, alice_email), (bob, bob_email)):
        sign_in(emu, sdk, user_id, email)
    bobs = SoftAuthenticator(ORIGIN)
    enrol_passkey(emu, sdk, bob, bob_email, bobs)
    enrol_passkey(emu, sdk, alice, alice_email, SoftAuthenticator(ORIGIN))
    alices_round = sdk.track(alice, ACTION, {"email": alice_email})
    answer = passkey_sign_in(emu, alices_round["token"], bobs, next(iter(bobs.credentials)))
    assert error_of(answer) == (400, "unknown_credential")


def test_a_passkey_challenge_answers_once(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)
    authenticator = SoftAuthenticator(ORIGIN)
    enrol_passkey(emu, sdk, user_id, email, authenticator)
    token = sdk.track(user_id, ACTION, {"email": email})["token"]
    client = Client(emu)
    options = client.call("/user-authenticators/passkey/authentication-options", token=token).json()
    body = {"authenticationCredential": authenticator.get(options["options"]), "deviceId": "d",
            "challengeId": options["challengeId"]}
    assert client.call("/verify/passkey", body, token=token).status_code == 200
    assert error_of(client.call("/verify/passkey", body, token=token)) == (400, "invalid_challenge")


def test_passkeys_need_a_page_on_the_relying_partys_domain(emu, sdk):
    user_id, email = new_user()
    sign_in(emu, sdk, user_id, email)
    token = sdk.track(user_id, ENROL_ACTION, {"email": email, "scope": "add:authenticators"})["token"]
    client = Client(emu, origin="http://127.0.0.1:8000")
    options = client.call("/user-authenticators/passkey/registration-options", {"username": email}, token=token).json()
    answer = client.call("/user-authenticators/passkey", token=token, body={
        "registrationCredential": SoftAuthenticator("http://127.0.0.1:8000").create(options["options"]),
        "challengeId": options["challengeId"]})
    status, code = error_of(answer)
    assert (status, code) == (400, "invalid_origin")
    assert "localhost" in answer.json()["errorDescription"]
