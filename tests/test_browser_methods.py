"""Every method the dev tenant offers, end to end in headless Chromium with the real Web SDK.

Same rules as tests/test_browser.py (whose fixtures these tests use): accessible names only,
no console error or CSP violation except the HTTP answers a test expects. Passkeys use
Chromium's virtual authenticator (DevTools protocol `WebAuthn` domain) on a page served at
http://localhost, as `make dev` serves it.
"""
import base64
import json
import random
import re
import time

import pyotp
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from tests.test_browser import (  # noqa: F401  (fixtures)
    CHALLENGE_TITLE, axe_source, axe_violations, challenge_document, challenge_frame, code_for,
    expect_api_answer, expect_signed_in, expect_signed_out, open_page, press_enter, sdk_bytes, shot, start_sign_in,
)

VARIANTS = [("desktop", "light"), ("phone", "dark")]

pytestmark = [pytest.mark.browser, pytest.mark.devstack]
# Inside the dialog, buttons are activated from the keyboard (focus, Enter), not clicked at
# coordinates: when a screen changes, the page reports its new height and the SDK re-centres
# the dialog a moment later, which can move a button out from under a click already aimed.


def virtual_authenticator(page):
    """A platform authenticator that always verifies the user (no prompt to click)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def credentials(cdp, authenticator_id):
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def sign_in_with_email_code(page, stack, email):
    challenge = start_sign_in(page, email)
    challenge.get_by_label("Verification code").fill(code_for(stack, email))
    press_enter(challenge.get_by_role("button", name="Verify"))
    expect_signed_in(page, email)


@pytest.mark.parametrize("screen,scheme", VARIANTS)
def test_add_a_passkey_then_sign_in_with_it(open_page, browser_stack, email, axe_source, screen, scheme):
    page, watch = open_page(screen, scheme, host="localhost")
    cdp, authenticator = virtual_authenticator(page)
    sign_in_with_email_code(page, browser_stack, email)

    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Passkey added. Next time, choose Sign in with a passkey.")
    [credential] = credentials(cdp, authenticator)
    assert credential["isResidentCredential"] is True and credential["rpId"] == "localhost"
    in_both_schemes(page, lambda: page.main_frame, axe_source, (screen, scheme), "passkey-1-added", full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect_signed_in(page, email)
    expect(page.get_by_role("status")).to_have_text("You are signed in with your passkey.")
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1  # the authenticator really signed
    # Verified by the first (email) sign-in; a passkey proves the person and leaves it so.
    page.get_by_role("button", name="Call protected API").click()
    expect_api_answer(page, email)
    in_both_schemes(page, lambda: page.main_frame, axe_source, (screen, scheme), "passkey-2-signed-in",
                    full_page=True)

    # Autofill: a signed-out page load offers the passkey in the Email box; Chromium's virtual
    # authenticator picks it at once. It names the account, and the bound sign-in follows.
    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    page.reload()
    expect_signed_in(page, email)
    expect(page.get_by_label("Email")).to_be_hidden()
    assert credentials(cdp, authenticator)[0]["signCount"] >= 3  # the lookup and the round's own
    watch.assert_clean()


def test_a_passkey_the_tenant_does_not_know_is_refused_clearly(open_page, browser_stack, email, axe_source):
    page, watch = open_page(host="localhost")
    cdp, authenticator = virtual_authenticator(page)
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator, "credential": {
        "credentialId": base64.b64encode(b"never-registered-0001").decode(), "isResidentCredential": True,
        "rpId": "localhost", "privateKey": base64.b64encode(key).decode(),
        "userHandle": base64.b64encode(b"someone").decode(), "signCount": 0}})
    sign_in_with_email_code(page, browser_stack, email)  # an account, with no passkey
    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)

    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in with a passkey").click()
    status = page.get_by_role("status")
    expect(status).to_have_text("That passkey is not registered for this account. Use Sign in, then choose Add a passkey.")
    expect(status).to_have_attribute("data-kind", "error")
    expect_signed_out(page)
    in_both_schemes(page, lambda: page.main_frame, axe_source, ("desktop", "light"), "passkey-3-unknown",
                    full_page=True)
    watch.assert_clean(("/v1/client/verify/passkey", 400))


def test_sign_in_with_a_passkey_asks_for_the_email_first(open_page):
    page, watch = open_page()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Enter your email address, then choose Sign in with a passkey.")
    expect(page.get_by_label("Email")).to_be_focused()
    watch.assert_clean()


# ---- the pre-built UI's other methods ------------------------------------------------------------

def texts_to(stack, phone):
    response = requests.get(f"{stack.authsignal_url}/_dev/mailbox", params={"phone": phone}, timeout=5)
    response.raise_for_status()
    return response.json()


def clean_frame(page, axe_source, variant, name):
    """The dialog's screen is axe-clean and photographed in light and dark; the tests' two
    variants (desktop, phone) make the four combinations."""
    in_both_schemes(page, lambda: challenge_document(page), axe_source, variant, name)


def in_both_schemes(page, frame, axe_source, variant, name, full_page=False):
    screen, scheme = variant
    for each in ("light", "dark"):
        page.emulate_media(color_scheme=each)
        assert axe_violations(frame(), axe_source) == [], f"{screen}-{each}-{name}"
        shot(page, f"{screen}-{each}-{name}", full_page=full_page)
    page.emulate_media(color_scheme=scheme)


def sign_out_then_open_the_dialog(page, email):
    """Sign out, then Sign in again with the same email: the dialog's frame."""
    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in", exact=True).click()
    return challenge_frame(page)


def next_code(stack, email, sent):
    """The code of the mail after the first `sent` ones (the page sends it a moment after the click)."""
    deadline = time.monotonic() + 10
    while len(stack.mailbox(email)) <= sent and time.monotonic() < deadline:
        time.sleep(0.1)
    return code_for(stack, email)


def prove_email_then(page, stack, email, choice, axe_source, variant, name):
    """From the first screen (the email code box): choose `choice` in the chooser, then prove
    the email, as setting up a second method requires."""
    challenge = challenge_frame(page)
    press_enter(challenge.get_by_role("button", name="Use another method"))
    expect(challenge.get_by_role("heading", name="Choose how to verify")).to_be_visible()
    clean_frame(page, axe_source, variant, f"{name}-chooser")
    sent = len(stack.mailbox(email))
    challenge.get_by_role("button", name=choice).click()
    expect(challenge.get_by_text("First prove it is you")).to_be_visible()
    challenge.get_by_label("Verification code").fill(next_code(stack, email, sent))
    press_enter(challenge.get_by_role("button", name="Verify"))
    return challenge


@pytest.mark.parametrize("screen,scheme", VARIANTS)
def test_magic_link_opened_from_the_mailbox_in_a_second_page(open_page, browser_stack, email, axe_source,
                                                              screen, scheme):
    page, watch = open_page(screen, scheme)
    variant, name = (screen, scheme), "magic-link"
    challenge = start_sign_in(page, email)
    press_enter(challenge.get_by_role("button", name="Use another method"))
    press_enter(challenge.get_by_role("button", name="Email me a link"))
    expect(challenge.get_by_text("Waiting for you to open the link")).to_be_visible()
    clean_frame(page, axe_source, variant, f"{name}-1-waiting")

    [mail] = [m for m in browser_stack.mailbox(email) if m["link"]]
    other = page.context.new_page()
    other.goto(mail["link"])
    expect(other.get_by_role("heading", name="Verified")).to_be_visible()
    in_both_schemes(other, lambda: other.main_frame, axe_source, variant, f"{name}-2-link-opened")
    other.close()

    expect_signed_in(page, email)  # the popup noticed and finished on its own
    page.get_by_role("button", name="Call protected API").click()
    expect_api_answer(page, email)  # a link to the address proves the address
    watch.assert_clean()


@pytest.mark.parametrize("screen,scheme", VARIANTS)
def test_sms_enrolment_then_sign_in_with_a_text_message(open_page, browser_stack, email, axe_source, screen, scheme):
    page, watch = open_page(screen, scheme)
    variant, name = (screen, scheme), "sms"
    phone = "+1555" + "".join(random.choices("0123456789", k=7))
    start_sign_in(page, email)
    challenge = prove_email_then(page, browser_stack, email, "Set up text messages", axe_source, variant, name)
    expect(challenge.get_by_label("Phone number")).to_be_visible()
    clean_frame(page, axe_source, variant, f"{name}-1-phone")
    challenge.get_by_label("Phone number").fill(phone)
    challenge.get_by_label("Phone number").press("Enter")  # submits the phone form ("Send code")
    expect(challenge.get_by_text("We texted a code to")).to_be_visible()
    expect(challenge.get_by_text("Enter the 6-digit code from the text message.")).to_be_visible()
    clean_frame(page, axe_source, variant, f"{name}-2-code")
    challenge.get_by_label("Verification code").fill(texts_to(browser_stack, phone)[-1]["code"])
    press_enter(challenge.get_by_role("button", name="Verify"))
    expect_signed_in(page, email)

    challenge = sign_out_then_open_the_dialog(page, email)
    press_enter(challenge.get_by_role("button", name="Text me a code"))
    expect(challenge.get_by_text("We texted a code to")).to_be_visible()
    challenge.get_by_label("Verification code").fill(texts_to(browser_stack, phone)[-1]["code"])
    press_enter(challenge.get_by_role("button", name="Verify"))
    expect_signed_in(page, email)
    watch.assert_clean()


@pytest.mark.parametrize("screen,scheme", VARIANTS)
def test_authenticator_app_enrolment_then_sign_in_with_a_computed_code(open_page, browser_stack, email, axe_source,
                                                                        screen, scheme):
    page, watch = open_page(screen, scheme)
    variant, name = (screen, scheme), "totp"
    start_sign_in(page, email)
    challenge = prove_email_then(page, browser_stack, email, "Set up an authenticator app", axe_source, variant,
                                 name)
    setup = challenge.get_by_role("region", name="Authenticator app setup")
    expect(setup.get_by_role("img", name="QR code to scan with your authenticator app")).to_be_visible()
    expect(setup.get_by_role("link", name="setup link")).to_have_attribute("href", re.compile(r"^otpauth://totp/"))
    secret = re.search(r"\b[A-Z2-7]{32}\b", setup.inner_text()).group(0)
    clean_frame(page, axe_source, variant, f"{name}-1-setup")
    totp = pyotp.TOTP(secret)
    challenge.get_by_label("Verification code").fill(totp.now())
    challenge.get_by_label("Verification code").press("Enter")  # Verify, from the keyboard
    expect_signed_in(page, email)

    challenge = sign_out_then_open_the_dialog(page, email)
    press_enter(challenge.get_by_role("button", name="Use my authenticator app"))
    expect(challenge.get_by_text("Enter the 6-digit code your authenticator app shows now.")).to_be_visible()
    clean_frame(page, axe_source, variant, f"{name}-2-code")
    challenge.get_by_label("Verification code").fill(totp.at(time.time() + 30))  # the enrolment spent now()
    challenge.get_by_label("Verification code").press("Enter")
    expect_signed_in(page, email)
    watch.assert_clean()


@pytest.mark.parametrize("screen,scheme", VARIANTS)
def test_a_passkey_set_up_and_used_inside_the_dialog_on_a_custom_domain(open_page, custom_domain_stack, email,
                                                                        axe_source, screen, scheme):
    """On the tenant's custom domain (the relying party's domain) the pre-built UI runs WebAuthn
    in its own frame; the passkey it adds also works with the page's button (one relying party)."""
    page, watch = open_page(screen, scheme, host="localhost", stack=custom_domain_stack)
    variant, name = (screen, scheme), "dialog-passkey"
    cdp, authenticator = virtual_authenticator(page)
    start_sign_in(page, email)
    challenge = prove_email_then(page, custom_domain_stack, email, "Set up a passkey", axe_source, variant, name)
    # The browser lets a framed page create a passkey only right after a click: a button of its own.
    create = challenge.get_by_role("button", name="Create a passkey")
    expect(create).to_be_focused()
    clean_frame(page, axe_source, variant, f"{name}-0-create")
    press_enter(create)
    expect_signed_in(page, email)  # the passkey was created, and the round proven by the code
    [credential] = credentials(cdp, authenticator)
    assert credential["rpId"] == "localhost" and credential["isResidentCredential"] is True
    page.get_by_role("button", name="Call protected API").click()
    expect_api_answer(page, email)

    challenge = sign_out_then_open_the_dialog(page, email)
    expect(challenge.get_by_role("heading", name="Choose how to verify")).to_be_visible()
    clean_frame(page, axe_source, variant, f"{name}-1-chooser")
    press_enter(challenge.get_by_role("button", name="Use a passkey"))
    expect_signed_in(page, email)
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1

    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("status")).to_have_text("You are signed in with your passkey.")
    watch.assert_clean()


def test_a_passkey_prompt_left_open_refused_or_gone_from_the_device_never_traps_the_person(
        open_page, custom_domain_stack, email, axe_source):
    page, watch = open_page(host="localhost", stack=custom_domain_stack)
    cdp, authenticator = virtual_authenticator(page)
    sign_in_with_email_code(page, custom_domain_stack, email)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Passkey added. Next time, choose Sign in with a passkey.")

    def open_dialog_and_use_the_passkey():
        challenge = sign_out_then_open_the_dialog(page, email)
        press_enter(challenge.get_by_role("button", name="Use a passkey"))
        return challenge, challenge.get_by_role("status")

    # A prompt nobody answers does not trap the person: another method ends it.
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": False})
    challenge, status = open_dialog_and_use_the_passkey()
    expect(challenge.get_by_text("Waiting for your browser's passkey prompt")).to_be_visible()
    press_enter(challenge.get_by_role("button", name="Use another method"))
    expect(challenge.get_by_role("heading", name="Choose how to verify")).to_be_visible()
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": True})

    # A bad signature: the emulator refuses it, and Try again runs a new ceremony that succeeds.
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator, "isBogusSignature": True})
    press_enter(challenge.get_by_role("button", name="Use a passkey"))
    expect(status).to_contain_text("The passkey response was not accepted")
    expect(challenge.get_by_role("button", name="Try again")).to_be_focused()
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator, "isBogusSignature": False})
    press_enter(challenge.get_by_role("button", name="Try again"))
    expect_signed_in(page, email)

    # The passkey is gone from the device: the browser ends the ceremony, the dialog says so,
    # and another method finishes the sign-in.
    [credential] = credentials(cdp, authenticator)
    cdp.send("WebAuthn.removeCredential", {"authenticatorId": authenticator, "credentialId": credential["credentialId"]})
    challenge, status = open_dialog_and_use_the_passkey()
    expect(status).to_have_text("The passkey prompt was closed. Choose Try again, or Use another method.")
    expect(challenge.get_by_text("Waiting for your browser's passkey prompt")).to_be_hidden()
    expect(challenge.get_by_role("button", name="Try again")).to_be_focused()
    clean_frame(page, axe_source, ("desktop", "light"), "dialog-passkey-2-prompt-closed")
    press_enter(challenge.get_by_role("button", name="Use another method"))
    sent = len(custom_domain_stack.mailbox(email))
    press_enter(challenge.get_by_role("button", name="Email me a code"))
    expect(challenge.get_by_label("Verification code")).to_be_visible()
    challenge.get_by_label("Verification code").fill(next_code(custom_domain_stack, email, sent))
    press_enter(challenge.get_by_role("button", name="Verify"))
    expect_signed_in(page, email)
    watch.assert_clean(("/challenge/passkey/verify", 400))


def test_a_new_user_proves_the_email_then_adds_an_app_and_a_passkey_and_signs_in_with_each(
        open_page, browser_stack, email, axe_source):
    """Issue 20's path for a person: the first round can only be the email code (the backend
    enrolled the address), then every other method is theirs to add, and each signs them in."""
    page, watch = open_page(host="localhost")
    cdp, authenticator = virtual_authenticator(page)
    start_sign_in(page, email)
    challenge = prove_email_then(page, browser_stack, email, "Set up an authenticator app", axe_source,
                                 ("desktop", "light"), "first-user")
    setup = challenge.get_by_role("region", name="Authenticator app setup")
    secret = re.search(r"\b[A-Z2-7]{32}\b", setup.inner_text()).group(0)
    totp = pyotp.TOTP(secret)
    challenge.get_by_label("Verification code").fill(totp.now())
    challenge.get_by_label("Verification code").press("Enter")
    expect_signed_in(page, email)
    page.get_by_role("button", name="Call protected API").click()
    expect_api_answer(page, email)  # the email code of the first round verified the address

    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Passkey added. Next time, choose Sign in with a passkey.")
    assert len(credentials(cdp, authenticator)) == 1

    challenge = sign_out_then_open_the_dialog(page, email)
    press_enter(challenge.get_by_role("button", name="Use my authenticator app"))
    challenge.get_by_label("Verification code").fill(totp.at(time.time() + 30))  # the enrolment spent now()
    challenge.get_by_label("Verification code").press("Enter")
    expect_signed_in(page, email)

    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("status")).to_have_text("You are signed in with your passkey.")
    expect_signed_in(page, email)
    watch.assert_clean()


def test_adding_a_passkey_long_after_the_sign_in_asks_for_one_more_round_first(open_page, browser_stack, email):
    """The backend answers 401 `reauthenticate` once the sign-in is over 5 minutes old (here
    injected on the first call): the page runs a fresh round, then creates the passkey."""
    page, watch = open_page(host="localhost")
    cdp, authenticator = virtual_authenticator(page)
    sign_in_with_email_code(page, browser_stack, email)
    calls = []

    def stale_once(route):
        calls.append(route.request.headers.get("origin"))
        if len(calls) == 1:
            route.fulfill(status=401, content_type="application/json", body=json.dumps(
                {"error": {"code": "reauthenticate", "message": "sign in again"}}))
        else:
            route.continue_()

    page.route("**/api/passkey-token", stale_once)
    sent = len(browser_stack.mailbox(email))
    page.get_by_role("button", name="Add a passkey").click()
    challenge = challenge_frame(page)
    expect(challenge.get_by_label("Verification code")).to_be_visible()
    challenge.get_by_label("Verification code").fill(next_code(browser_stack, email, sent))
    press_enter(challenge.get_by_role("button", name="Verify"))
    expect(page.get_by_role("status")).to_have_text("Passkey added. Next time, choose Sign in with a passkey.")
    assert len(calls) == 2 and all(calls)  # asked again after the round, each time with the page's Origin
    assert len(credentials(cdp, authenticator)) == 1
    watch.assert_clean(("/api/passkey-token", 401))
