"""Each method of the emulator's pre-built UI over real HTTP, as its challenge page calls it:
email OTP, email magic link, SMS, authenticator app, and passkeys inside the dialog on a
custom domain (the Web SDK's own passkey calls: test_authsignal_client_api)."""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time

import pyotp
import pytest
import requests

from tests.test_authsignal_emulator import ACTION, ROOT, Emulator, enrolled_user, mailbox, new_user, open_page, sign_in
from tests.webauthn_authenticator import SoftAuthenticator

PHONE = "+15550102030"


def call(emu, path, token, **body):
    return requests.post(f"{emu.url}/challenge/{path}", json={"token": token, **body}, timeout=5)


def view_of(page):
    return json.loads(html.unescape(re.search(r'data-view="([^"]*)"', page.text).group(1)))


def texts(emu, phone):
    response = requests.get(f"{emu.url}/_dev/mailbox", params={"phone": phone}, timeout=5)
    assert response.status_code == 200
    return response.json()


def validated(sdk, token, user_id):
    return sdk.validate_challenge({"token": token, "userId": user_id, "action": ACTION})


def enrol_sms(emu, sdk, user_id, email, phone=PHONE):
    tracked = sign_in(emu, sdk, user_id, email)  # the proven first method
    sent = call(emu, "sms/send", tracked["token"], phone=phone)
    assert sent.status_code == 200, sent.text
    assert call(emu, "sms/verify", tracked["token"], code=texts(emu, phone)[-1]["code"]).status_code == 200
    return tracked


def enrol_totp(emu, sdk, user_id, email):
    tracked = sign_in(emu, sdk, user_id, email)
    setup = call(emu, "totp/setup", tracked["token"])
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert call(emu, "totp/verify", tracked["token"], code=pyotp.TOTP(secret).now()).status_code == 200
    return secret


# ---- what the page offers -----------------------------------------------------------------

def test_a_new_user_first_sees_the_email_code_box_and_the_other_methods(emu, sdk):
    user_id, email = new_user()
    tracked = sdk.track(user_id, ACTION, {"email": email})
    assert tracked["state"] == "ALLOW" and tracked["is_enrolled"] is False
    assert tracked["allowed_verification_methods"] == [
        "EMAIL_OTP", "EMAIL_MAGIC_LINK", "SMS", "AUTHENTICATOR_APP", "PASSKEY"]
    view = view_of(open_page(tracked["url"]))
    assert view["first"] == "EMAIL_OTP"
    assert [(m["method"], m["enrolled"]) for m in view["methods"]] == [
        ("EMAIL_OTP", False), ("EMAIL_MAGIC_LINK", False), ("SMS", False), ("AUTHENTICATOR_APP", False)]
    assert len(mailbox(emu, email)) == 1  # the first code went out with the page


def test_a_user_with_another_method_first_sees_the_chooser_and_no_code_is_sent(emu, sdk):
    user_id, email = new_user()
    enrol_sms(emu, sdk, user_id, email)
    sent_before = len(mailbox(emu, email))
    tracked = sdk.track(user_id, ACTION, {"email": email})
    assert tracked["state"] == "CHALLENGE_REQUIRED"
    assert set(tracked["enrolled_verification_methods"]) == {"EMAIL_OTP", "SMS"}
    page = open_page(tracked["url"])
    assert view_of(page)["first"] == "CHOOSE" and "Choose how to verify" in page.text
    assert len(mailbox(emu, email)) == sent_before


# ---- email magic link --------------------------------------------------------------------

def test_a_magic_link_opened_anywhere_completes_the_action_once(emu, sdk):
    user_id, email = new_user()
    tracked = sdk.track(user_id, ACTION, {"email": email})
    open_page(tracked["url"])
    sent = call(emu, "magic-link", tracked["token"])
    assert sent.status_code == 200 and sent.json()["to"] == "u\u2022\u2022\u2022@example.com"
    mail = mailbox(emu, email)[-1]
    assert mail["code"] is None and mail["link"].startswith(f"{emu.url}/challenge/link?secret=")
    assert call(emu, "status", tracked["token"]).json() == {"state": "ALLOW"}

    opened = requests.get(mail["link"], timeout=5)
    assert opened.status_code == 200 and "You are verified" in opened.text
    assert call(emu, "status", tracked["token"]).json() == {"state": "CHALLENGE_SUCCEEDED"}
    result = validated(sdk, tracked["token"], user_id)
    assert result["is_valid"] is True and result["verification_method"] == "EMAIL_MAGIC_LINK"
    again = requests.get(mail["link"], timeout=5)
    assert again.status_code == 400 and "already used" in again.text
    assert "EMAIL_MAGIC_LINK" in sdk.track(user_id, ACTION, {"email": email})["enrolled_verification_methods"]


def test_a_new_link_replaces_the_old_one(emu, sdk):
    user_id, email = new_user()
    tracked = sdk.track(user_id, ACTION, {"email": email})
    call(emu, "magic-link", tracked["token"])
    call(emu, "magic-link", tracked["token"])
    old, new = [m["link"] for m in mailbox(emu, email) if m["link"]]
    assert requests.get(old, timeout=5).status_code == 400
    assert requests.get(new, timeout=5).status_code == 200


# ---- SMS -------------------------------------------------------------------------------------

def test_sms_enrolment_needs_a_proven_first_method(emu, sdk):
    user_id, email = enrolled_user(sdk)
    tracked = sdk.track(user_id, ACTION, {"email": email})
    refused = call(emu, "sms/send", tracked["token"], phone=PHONE)
    assert refused.status_code == 403 and refused.json()["errorCode"] == "not_proven"
    assert call(emu, "sms/send", tracked["token"]).json()["errorCode"] == "not_enrolled"


@pytest.mark.parametrize("phone", ["5550102030", "+0555", "+1 555 abc", "", "+1234567890123456"])
def test_a_phone_number_must_be_e164(emu, sdk, phone):
    user_id, email = new_user()
    tracked = sign_in(emu, sdk, user_id, email)
    answer = call(emu, "sms/send", tracked["token"], phone=phone)
    assert answer.status_code == 400 and answer.json()["errorCode"] == "invalid_phone_number"
    assert "+15550102030" in answer.json()["error"]


def test_sms_enrolment_then_sign_in_by_text_message(emu, sdk):
    user_id, email = new_user()
    phone = "+4470" + user_id.replace("-", "")[:8].translate(str.maketrans("abcdef", "123456"))
    first = enrol_sms(emu, sdk, user_id, email, phone="+44 70" + phone[5:])  # spaces are fine
    assert validated(sdk, first["token"], user_id)["verification_method"] == "EMAIL_OTP"  # the first proof
    [enrolment_text] = texts(emu, phone)
    assert enrolment_text["channel"] == "SMS" and enrolment_text["link"] is None

    tracked = sdk.track(user_id, ACTION, {"email": email})
    sent = call(emu, "sms/send", tracked["token"])
    assert sent.status_code == 200 and sent.json()["to"] == "+44\u2022\u2022\u2022\u2022" + phone[-2:]
    code = texts(emu, phone)[-1]["code"]
    wrong = call(emu, "sms/verify", tracked["token"], code=f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 400 and wrong.json()["error"] == (
        "That code is not right. Check the latest text message and try again.")
    assert call(emu, "sms/verify", tracked["token"], code=code).status_code == 200
    result = validated(sdk, tracked["token"], user_id)
    assert result["is_valid"] is True and result["verification_method"] == "SMS"
    assert call(emu, "sms/verify", tracked["token"], code=code).json()["errorCode"] == "no_code_sent"  # once


def test_an_email_code_never_answers_the_sms_box(emu, sdk):
    user_id, email = new_user()
    enrol_sms(emu, sdk, user_id, email, phone="+15550109999")
    tracked = sdk.track(user_id, ACTION, {"email": email})
    call(emu, "sms/send", tracked["token"])
    call(emu, "resend", tracked["token"])
    email_code = mailbox(emu, email)[-1]["code"]
    sms_code = texts(emu, "+15550109999")[-1]["code"]
    if email_code != sms_code:
        assert call(emu, "sms/verify", tracked["token"], code=email_code).status_code == 400


# ---- authenticator app -------------------------------------------------------------------------

def test_authenticator_app_setup_shows_the_secret_the_uri_and_a_qr_code(emu, sdk):
    user_id, email = enrolled_user(sdk)
    unproven = sdk.track(user_id, ACTION, {"email": email})
    assert call(emu, "totp/setup", unproven["token"]).json()["errorCode"] == "not_proven"
    tracked = sign_in(emu, sdk, user_id, email)
    setup = call(emu, "totp/setup", tracked["token"]).json()
    assert re.fullmatch(r"[A-Z2-7]{32}", setup["secret"])
    assert setup["uri"].startswith("otpauth://totp/") and f"secret={setup['secret']}" in setup["uri"]
    assert pyotp.parse_uri(setup["uri"]).secret == setup["secret"]
    assert setup["qrCode"].startswith("data:image/svg+xml;base64,")


def test_authenticator_app_enrolment_then_sign_in_and_a_code_counts_once(emu, sdk):
    user_id, email = new_user()
    secret = enrol_totp(emu, sdk, user_id, email)
    assert "AUTHENTICATOR_APP" in sdk.track(user_id, ACTION, {"email": email})["enrolled_verification_methods"]

    tracked = sdk.track(user_id, ACTION, {"email": email})
    used = pyotp.TOTP(secret).now()  # spent by the enrolment
    again = call(emu, "totp/verify", tracked["token"], code=used)
    assert again.status_code == 400 and again.json()["errorCode"] == "invalid_code"
    next_code = pyotp.TOTP(secret).at(time.time() + 30)  # one step ahead: inside the window
    assert call(emu, "totp/verify", tracked["token"], code=next_code).status_code == 200
    result = validated(sdk, tracked["token"], user_id)
    assert result["is_valid"] is True and result["verification_method"] == "AUTHENTICATOR_APP"


def test_an_unfinished_authenticator_setup_proves_nothing(emu, sdk):
    user_id, email = new_user()
    tracked = sign_in(emu, sdk, user_id, email)
    secret = call(emu, "totp/setup", tracked["token"]).json()["secret"]  # never confirmed
    later = sdk.track(user_id, ACTION, {"email": email})
    answer = call(emu, "totp/verify", later["token"], code=pyotp.TOTP(secret).now())
    assert answer.status_code == 400 and answer.json()["errorCode"] == "not_enrolled"


# ---- passkeys inside the dialog -----------------------------------------------------------
# The emulator answers on http://localhost:<port> too: there the page is on the relying
# party's domain (as on a tenant's custom domain) and runs WebAuthn itself.

def on_domain(emu):
    return emu.url.replace("127.0.0.1", "localhost")


def passkey_call(emu, path, token, origin=None, **body):
    origin = origin or on_domain(emu)
    return requests.post(f"{origin}/challenge/passkey/{path}", json={"token": token, **body},
                         headers={"Origin": origin}, timeout=5)


def proven_round(emu, sdk, user_id, email):
    """A round proven by an email code, whatever the user's first screen is."""
    tracked = sdk.track(user_id, ACTION, {"email": email})
    assert call(emu, "resend", tracked["token"]).status_code == 200
    assert call(emu, "verify", tracked["token"], code=mailbox(emu, email)[-1]["code"]).status_code == 200
    return tracked


def enrol_passkey_in_dialog(emu, sdk, user_id, email):
    tracked = proven_round(emu, sdk, user_id, email)  # the proven first method
    authenticator = SoftAuthenticator(on_domain(emu))
    setup = passkey_call(emu, "setup", tracked["token"])
    assert setup.status_code == 200, setup.text
    added = passkey_call(emu, "register", tracked["token"], challengeId=setup.json()["challengeId"],
                         credential=authenticator.create(setup.json()["options"]))
    assert added.status_code == 200, added.text
    assert added.json() == {"token": tracked["token"]}
    # The round stays proven by the email code: adding a passkey proves no address.
    assert validated(sdk, tracked["token"], user_id)["verification_method"] == "EMAIL_OTP"
    return authenticator


def dialog_passkey_sign_in(emu, token, authenticator, credential_id=None):
    options = passkey_call(emu, "options", token)
    assert options.status_code == 200, options.text
    return passkey_call(emu, "verify", token, challengeId=options.json()["challengeId"],
                        credential=authenticator.get(options.json()["options"], credential_id))


def test_the_dialog_offers_passkeys_only_on_the_relying_partys_domain(emu, sdk):
    user_id, email = new_user()
    tracked = sdk.track(user_id, ACTION, {"email": email})
    on_ip = view_of(open_page(tracked["url"]))
    assert "PASSKEY" not in [m["method"] for m in on_ip["methods"]]
    on_name = view_of(open_page(tracked["url"].replace(emu.url, on_domain(emu))))
    assert [m["method"] for m in on_name["methods"]][-1] == "PASSKEY"
    refused = passkey_call(emu, "options", tracked["token"], origin=emu.url)
    assert refused.status_code == 400 and refused.json()["errorCode"] == "invalid_origin"


def test_a_passkey_set_up_in_the_dialog_then_signs_in_there(emu, sdk):
    user_id, email = new_user()
    authenticator = enrol_passkey_in_dialog(emu, sdk, user_id, email)

    later = sdk.track(user_id, ACTION, {"email": email})
    assert later["state"] == "CHALLENGE_REQUIRED" and "PASSKEY" in later["enrolled_verification_methods"]
    view = view_of(open_page(later["url"].replace(emu.url, on_domain(emu))))
    assert view["first"] == "CHOOSE" and {"method": "PASSKEY", "enrolled": True} in view["methods"]
    answer = dialog_passkey_sign_in(emu, later["token"], authenticator)
    assert answer.status_code == 200, answer.text
    validated_ = validated(sdk, answer.json()["token"], user_id)
    assert validated_["state"] == "CHALLENGE_SUCCEEDED" and validated_["verification_method"] == "PASSKEY"


def test_setting_up_a_passkey_in_the_dialog_needs_a_proven_first_method(emu, sdk):
    user_id, email = enrolled_user(sdk)
    tracked = sdk.track(user_id, ACTION, {"email": email})
    refused = passkey_call(emu, "setup", tracked["token"])
    assert refused.status_code == 403 and refused.json()["errorCode"] == "not_proven"
    assert passkey_call(emu, "options", tracked["token"]).json()["errorCode"] == "not_enrolled"


def test_the_dialog_refuses_another_users_passkey_a_reused_challenge_and_a_borrowed_setup(emu, sdk):
    alice, alice_email = new_user()
    bob, bob_email = new_user()
    enrol_passkey_in_dialog(emu, sdk, alice, alice_email)
    bobs = enrol_passkey_in_dialog(emu, sdk, bob, bob_email)

    alices_round = sdk.track(alice, ACTION, {"email": alice_email})
    answer = dialog_passkey_sign_in(emu, alices_round["token"], bobs, next(iter(bobs.credentials)))
    assert answer.status_code == 400 and answer.json()["errorCode"] == "unknown_credential"
    assert sdk.validate_challenge({"token": alices_round["token"]})["is_valid"] is False

    bobs_round = sdk.track(bob, ACTION, {"email": bob_email})
    options = passkey_call(emu, "options", bobs_round["token"]).json()
    body = {"challengeId": options["challengeId"], "credential": bobs.get(options["options"])}
    assert passkey_call(emu, "verify", bobs_round["token"], **body).status_code == 200
    again = passkey_call(emu, "verify", bobs_round["token"], **body)
    assert again.status_code == 400 and again.json()["errorCode"] == "invalid_challenge"

    # A registration challenge issued to Bob's proven round cannot add a passkey to Alice.
    alices_proven = proven_round(emu, sdk, alice, alice_email)
    bobs_setup = passkey_call(emu, "setup", proven_round(emu, sdk, bob, bob_email)["token"]).json()
    stolen = passkey_call(emu, "register", alices_proven["token"], challengeId=bobs_setup["challengeId"],
                          credential=SoftAuthenticator(on_domain(emu)).create(bobs_setup["options"]))
    assert stolen.status_code == 401 and stolen.json()["errorCode"] == "invalid_challenge"


# ---- the tenant's choice of methods ----------------------------------------------------------

def test_methods_the_tenant_did_not_turn_on_are_neither_offered_nor_accepted():
    emulator = Emulator("--methods", "EMAIL_OTP,SMS")
    try:
        sdk = emulator.client()
        user_id, email = new_user()
        tracked = sdk.track(user_id, ACTION, {"email": email})
        assert tracked["allowed_verification_methods"] == ["EMAIL_OTP", "SMS"]
        view = view_of(open_page(tracked["url"]))
        assert [m["method"] for m in view["methods"]] == ["EMAIL_OTP", "SMS"]
        refused = call(emulator, "magic-link", tracked["token"])
        assert refused.status_code == 400 and refused.json()["errorCode"] == "method_not_enabled"
    finally:
        emulator.stop()


def test_an_unknown_method_name_is_a_clear_startup_error():
    done = subprocess.run([sys.executable, "-m", "devstack.authsignal", "--port", "0", "--project-dir", str(ROOT),
                           "--methods", "EMAIL_OTP,CARRIER_PIGEON"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "CARRIER_PIGEON" in done.stderr and "AUTHENTICATOR_APP" in done.stderr
