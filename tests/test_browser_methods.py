"""Every method the dev tenant offers, end to end in headless Chromium with the real Web SDK.

Same rules as tests/test_browser.py (whose fixtures these tests use): accessible names only,
no console error or CSP violation except the HTTP answers a test expects. Passkeys use
Chromium's virtual authenticator (DevTools protocol `WebAuthn` domain) on a page served at
http://localhost, as `make dev` serves it.
"""
import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from tests.test_browser import (  # noqa: F401  (fixtures)
    CHALLENGE_TITLE, axe_source, axe_violations, browser, code_for, expect_api_answer, expect_signed_in, expect_signed_out,
    open_page, sdk_bytes, shot, start_sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.devstack]


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
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)


@pytest.mark.parametrize("screen,scheme", [("desktop", "light"), ("phone", "dark")])
def test_add_a_passkey_then_sign_in_with_it(open_page, browser_stack, email, axe_source, screen, scheme):
    page, watch = open_page(screen, scheme)
    cdp, authenticator = virtual_authenticator(page)
    sign_in_with_email_code(page, browser_stack, email)

    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Passkey added. Next time, choose Sign in with a passkey.")
    [credential] = credentials(cdp, authenticator)
    assert credential["isResidentCredential"] is True and credential["rpId"] == "localhost"
    shot(page, f"{screen}-{scheme}-passkey-1-added", full_page=True)

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
    assert axe_violations(page.main_frame, axe_source) == []
    shot(page, f"{screen}-{scheme}-passkey-2-signed-in", full_page=True)

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
    page, watch = open_page()
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
    assert axe_violations(page.main_frame, axe_source) == []
    shot(page, "desktop-light-passkey-3-unknown", full_page=True)
    watch.assert_clean(("/v1/client/verify/passkey", 400))


def test_sign_in_with_a_passkey_asks_for_the_email_first(open_page):
    page, watch = open_page()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Enter your email address, then choose Sign in with a passkey.")
    expect(page.get_by_label("Email")).to_be_focused()
    watch.assert_clean()
