"""The emulator's first-authenticator rules and the server API's authenticator calls, over
real HTTP, as permissive as Authsignal: a bare track token of a user with NO authenticator
may enrol any first method (pre-built UI and client API), which is the takeover the app
must close (tests/test_security_takeover.py); an enrolled user's bare token may not."""
from __future__ import annotations

import pyotp
import pytest
import requests
from authsignal.client import ApiException

from tests.test_authsignal_client_api import ORIGIN, Client, error_of
from tests.test_authsignal_emulator import ACTION, SECRET, arm, enrolled_user, mailbox, new_user, open_page, tenant
from tests.test_authsignal_methods import PHONE, call, texts, validated
from tests.webauthn_authenticator import SoftAuthenticator

ATTACKER = "attacker@evil.example"


@pytest.fixture
def first_enrolment(emu):
    """Sets the tenant's first-enrolment rule for one test, then puts the default back."""
    def choose(mode):
        tenant(emu, {"firstEnrolment": mode})
    yield choose
    tenant(emu, {"firstEnrolment": "either"})


# ---- server API: enrol and list ------------------------------------------------------------

def test_the_server_enrols_a_verified_email_and_lists_it(emu, sdk):
    user_id, email = new_user()
    assert sdk.get_authenticators(user_id) == []
    enrolled = sdk.enroll_verified_authenticator(user_id, {"verificationMethod": "EMAIL_OTP", "email": email.upper()})
    authenticator = enrolled["authenticator"]
    assert authenticator["user_id"] == user_id and authenticator["verification_method"] == "EMAIL_OTP"
    assert authenticator["email"] == email and authenticator["verified_at"] and authenticator["user_authenticator_id"]
    again = sdk.enroll_verified_authenticator(user_id, {"verificationMethod": "EMAIL_OTP", "email": email})
    assert again["authenticator"]["user_authenticator_id"] == authenticator["user_authenticator_id"]
    assert sdk.get_authenticators(user_id) == [authenticator | {"last_verified_at": again["authenticator"]["last_verified_at"]}]
    tracked = sdk.track(user_id, ACTION, {"email": email})
    assert (tracked["state"], tracked["is_enrolled"]) == ("CHALLENGE_REQUIRED", True)


def test_codes_go_to_the_email_authenticator_not_to_the_address_passed_to_track(emu, sdk):
    user_id, email = enrolled_user(sdk)
    other = f"other-{user_id[:8]}@example.com"
    tracked = sdk.track(user_id, ACTION, {"email": other})
    assert open_page(tracked["url"]).status_code == 200
    assert len(mailbox(emu, email)) == 1 and mailbox(emu, other) == []


def test_the_server_enrols_a_phone(emu, sdk):
    user_id, _ = new_user()
    enrolled = sdk.enroll_verified_authenticator(user_id, {"verificationMethod": "SMS", "phoneNumber": PHONE})
    assert enrolled["authenticator"]["phone_number"] == PHONE
    assert sdk.track(user_id, ACTION, {})["enrolled_verification_methods"] == ["SMS"]


@pytest.mark.parametrize("body", [
    {}, {"verificationMethod": "PASSKEY"}, {"verificationMethod": "EMAIL_OTP"},
    {"verificationMethod": "EMAIL_OTP", "email": "not an address"}, {"verificationMethod": "EMAIL_OTP", "email": 7},
    {"verificationMethod": "SMS", "phoneNumber": "5550102030"}, {"verificationMethod": ["EMAIL_OTP"]},
])
def test_the_server_refuses_an_enrolment_it_cannot_vouch_for(emu, sdk, body):
    user_id, _ = new_user()
    answer = requests.post(f"{emu.url}/v1/users/{user_id}/authenticators", json=body, auth=(SECRET, ""), timeout=5)
    assert answer.status_code == 400 and answer.json()["errorCode"] == "invalid_request", answer.text
    assert sdk.get_authenticators(user_id) == []


def test_authenticator_calls_need_the_key_and_can_be_faulted(emu, sdk):
    user_id, email = new_user()
    assert requests.get(f"{emu.url}/v1/users/{user_id}/authenticators", auth=("wrong", ""), timeout=5).status_code == 401
    for operation, run in [
        ("enroll_authenticator", lambda: sdk.enroll_verified_authenticator(
            user_id, {"verificationMethod": "EMAIL_OTP", "email": email})),
        ("get_authenticators", lambda: sdk.get_authenticators(user_id)),
    ]:
        arm(emu, operation, "500")
        with pytest.raises(ApiException):
            run()
        assert run() is not None  # the fault was used up
    calls = requests.get(f"{emu.url}/_dev/stats", timeout=5).json()["calls"]
    assert calls["enroll_authenticator"] >= 2 and calls["get_authenticators"] >= 2


# ---- a bare token: any first method for a user with none, nothing for an enrolled user ------

def totp_in_the_dialog(emu, token):
    setup = call(emu, "totp/setup", token)
    if setup.status_code != 200:
        return setup
    return call(emu, "totp/verify", token, code=pyotp.TOTP(setup.json()["secret"]).now())


def totp_through_the_client_api(emu, token):
    client = Client(emu)
    setup = client.call("/user-authenticators/totp", token=token)
    if setup.status_code != 200:
        return setup
    return client.call("/verify/totp", {"verificationCode": pyotp.TOTP(setup.json()["secret"]).now()}, token=token)


def code_through_the_client_api(kind, field, destination, inbox):
    """Enrol an OTP authenticator (`kind`: email-otp or sms) to the attacker's own address or
    number, then prove it with the code that arrives there."""
    def attempt(emu, token):
        client = Client(emu)
        started = client.call(f"/user-authenticators/{kind}", {field: destination}, token=token)
        if started.status_code != 200:
            return started
        return client.call(f"/verify/{kind}", {"verificationCode": inbox(emu, destination)[-1]["code"]}, token=token)
    return attempt


email_otp_through_the_client_api = code_through_the_client_api("email-otp", "email", ATTACKER, mailbox)
sms_through_the_client_api = code_through_the_client_api("sms", "phoneNumber", PHONE, texts)


def passkey_through_the_client_api(emu, token):
    client = Client(emu)
    options = client.call("/user-authenticators/passkey/registration-options", {"username": "x"}, token=token)
    if options.status_code != 200:
        return options
    return client.call("/user-authenticators/passkey", token=token, body={
        "registrationCredential": SoftAuthenticator(ORIGIN).create(options.json()["options"]),
        "conditionalCreate": False, "challengeId": options.json()["challengeId"]})


ENROLMENTS = {
    "AUTHENTICATOR_APP in the dialog": (totp_in_the_dialog, "AUTHENTICATOR_APP"),
    "AUTHENTICATOR_APP by the client API": (totp_through_the_client_api, "AUTHENTICATOR_APP"),
    "EMAIL_OTP of another address by the client API": (email_otp_through_the_client_api, "EMAIL_OTP"),
    "SMS to any number by the client API": (sms_through_the_client_api, "SMS"),
    "PASSKEY by the client API": (passkey_through_the_client_api, "PASSKEY"),
}


@pytest.mark.parametrize("how", ENROLMENTS)
def test_a_bare_token_of_a_user_with_no_authenticator_enrols_any_first_method(emu, sdk, how):
    """What Authsignal documents ("they can enroll their first method directly"): the holder
    of the token proves the action with a method of their own choosing."""
    enrol, method = ENROLMENTS[how]
    user_id, email = new_user()
    token = sdk.track(user_id, ACTION, {"email": email})["token"]
    answer = enrol(emu, token)
    assert answer.status_code == 200, answer.text
    result = validated(sdk, token, user_id)
    assert (result["is_valid"], result["verification_method"]) == (True, method)
    assert method in sdk.track(user_id, ACTION, {"email": email})["enrolled_verification_methods"]


@pytest.mark.parametrize("how", ENROLMENTS)
def test_a_bare_token_of_an_enrolled_user_enrols_nothing(emu, sdk, how):
    enrol, _ = ENROLMENTS[how]
    user_id, email = enrolled_user(sdk)
    token = sdk.track(user_id, ACTION, {"email": email})["token"]
    answer = enrol(emu, token)
    assert answer.status_code == 403, answer.text
    assert validated(sdk, token, user_id)["is_valid"] is False
    assert [a["verification_method"] for a in sdk.get_authenticators(user_id)] == ["EMAIL_OTP"]


@pytest.mark.parametrize("mode, allowed", [("either", True), ("at_track", True), ("now", False)])
def test_when_no_authenticator_is_judged_is_a_tenant_option(emu, sdk, first_enrolment, mode, allowed):
    """Authsignal does not say whether a token tracked before the first enrolment keeps its
    power: the emulator offers each reading, and the app must hold under all of them."""
    first_enrolment(mode)
    user_id, email = new_user()
    early = sdk.track(user_id, ACTION, {"email": email})["token"]
    sdk.enroll_verified_authenticator(user_id, {"verificationMethod": "EMAIL_OTP", "email": email})
    answer = totp_in_the_dialog(emu, early)
    assert (answer.status_code == 200) is allowed, answer.text
    late = sdk.track(user_id, ACTION, {"email": email})["token"]
    assert error_of(Client(emu).call("/user-authenticators/totp", token=late)) == (403, "not_proven")


def test_a_proven_token_adds_another_email_address_only_by_its_code(emu, sdk):
    user_id, email = enrolled_user(sdk)
    tracked = sdk.track(user_id, ACTION, {"email": email})
    open_page(tracked["url"])
    assert call(emu, "verify", tracked["token"], code=mailbox(emu, email)[-1]["code"]).status_code == 200
    client = Client(emu)
    other = f"second-{user_id[:8]}@example.com"
    assert client.call("/user-authenticators/email-otp", {"email": other}, token=tracked["token"]).status_code == 200
    assert client.call("/verify/email-otp", {"verificationCode": "000000"}, token=tracked["token"]).status_code == 400
    proved = client.call("/verify/email-otp", {"verificationCode": mailbox(emu, other)[-1]["code"]}, token=tracked["token"])
    assert proved.status_code == 200 and proved.json()["isVerified"] is True
    assert sorted(a["email"] for a in sdk.get_authenticators(user_id)) == sorted([email, other])
