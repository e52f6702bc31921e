"""End to end in headless Chromium: the page, the real Web SDK and the emulator's pre-built UI.

One browser and one dev stack (`browser_stack`) per session. The stack's page loads the Web SDK
from the production CDN URL; every browser context answers that URL with the pinned npm file
(route interception), so the real SDK runs with its real SRI check and no network. Any other
request that would leave loopback is aborted and fails the test.

Only the accessible names of SPEC section 7 drive the flow. Every test also checks that the
browser saw no console error and no Content-Security-Policy violation (in the page and in the
challenge iframe), except the HTTP error answers the flow expects (listed per test).

Screenshots of each state land in artifacts/screenshots/ on every run.
"""
import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from chalicelib import aws_retry

from tests.conftest import ROOT, production_sdk_url  # `browser`: one Chromium per session, in conftest

pytestmark = [pytest.mark.browser, pytest.mark.devstack]

SDK_FILE = os.path.join(ROOT, "node_modules", "@authsignal", "browser", "dist", "index.min.js")
AXE_FILE = os.path.join(ROOT, "node_modules", "axe-core", "axe.min.js")
SHOTS = os.path.join(ROOT, "artifacts", "screenshots")
SDK_URL = production_sdk_url()
SCREENS = {
    "desktop": {"viewport": {"width": 1280, "height": 860}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
              "is_mobile": True, "has_touch": True},
}
CHALLENGE_TITLE = "Authsignal multi-factor authentication"  # the SDK's iframe title
TIMEOUT_MS = 20_000
# A waiting limit, not a timed assertion: on a busy 2-core machine a step can take seconds.
expect.set_options(timeout=TIMEOUT_MS)

# Records each console message, page error and CSP violation, in every frame.
REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation({
    directive: event.violatedDirective, blocked: event.blockedURI, sample: event.sample,
    source: event.sourceFile, document: event.documentURI,
  });
});
"""


@dataclass
class Watch:
    """What the browser complained about during one test."""
    console_errors: list = field(default_factory=list)
    csp_violations: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    left_loopback: list = field(default_factory=list)
    sdk_served: int = 0

    def on_console(self, message):
        if message.type in ("error", "assert"):
            self.console_errors.append((message.text, message.location.get("url", "")))

    def expected_http_error(self, text, url, allowed):
        status = re.match(r"Failed to load resource: the server responded with a status of (\d+)", text)
        return bool(status) and (urlsplit(url).path, int(status.group(1))) in allowed

    def assert_clean(self, *allowed):
        allowed = set(allowed)
        errors = [(text, url) for text, url in self.console_errors
                  if not self.expected_http_error(text, url, allowed)]
        assert not errors, f"console errors: {errors}"
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"
        assert not self.page_errors, f"uncaught page errors: {self.page_errors}"
        assert not self.left_loopback, f"requests that would need the network: {self.left_loopback}"


@pytest.fixture(scope="session")
def sdk_bytes():
    with open(SDK_FILE, "rb") as handle:
        return handle.read()


@pytest.fixture(scope="session")
def axe_source():
    with open(AXE_FILE, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def open_page(browser, browser_stack, sdk_bytes):
    """open_page(screen="desktop", scheme="light", host="127.0.0.1") → (page, watch), at the sign-in page."""
    contexts = []

    def answer(route, watch):
        url = route.request.url
        if url == SDK_URL:
            watch.sdk_served += 1
            route.fulfill(status=200, body=sdk_bytes, headers={
                "Content-Type": "application/javascript; charset=utf-8",
                "Access-Control-Allow-Origin": "*",
                "Cache-Control": "public, max-age=31536000, immutable",
            })
        elif urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith("data:"):
            route.continue_()
        else:
            watch.left_loopback.append(url)
            route.abort("blockedbyclient")

    def opener(screen="desktop", scheme="light", host="127.0.0.1", stack=None):
        watch = Watch()
        context = browser.new_context(color_scheme=scheme, reduced_motion="reduce", **SCREENS[screen])
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        context.expose_binding("__reportCspViolation", lambda source, violation: watch.csp_violations.append(violation))
        context.add_init_script(REPORT_CSP)
        context.route("**/*", lambda route: answer(route, watch))
        page = context.new_page()
        page.on("console", watch.on_console)
        page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
        # Passkey tests pass host="localhost", as `make dev` serves it (WebAuthn needs a domain).
        # The others stay on 127.0.0.1: the dialog's frame is then same-site, and clicks into
        # a cross-site frame under phone emulation land off target now and then.
        page.goto((stack or browser_stack).app_url.replace("127.0.0.1", host) + "/")
        expect(page.get_by_label("Email")).to_be_visible()
        return page, watch

    yield opener
    for context in contexts:
        context.close()


def shot(page, name, full_page=False):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=full_page, animations="disabled")


def axe_violations(frame, axe_source, **options):
    """axe-core's violations in one frame (injected through the DevTools protocol, so the
    page's CSP neither blocks nor notices it)."""
    frame.evaluate(axe_source)
    results = frame.evaluate("(options) => axe.run(document, options)", {"iframes": False, **options})
    return [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:5]) for v in results["violations"]]


def press_enter(button):
    """Activate a button from the keyboard once it is enabled: the dialog disables its buttons
    while a call is in flight, and Enter on a disabled button does nothing (a race under load)."""
    expect(button).to_be_enabled()
    button.press("Enter")


def challenge_frame(page):
    return page.get_by_title(CHALLENGE_TITLE).content_frame


def challenge_document(page):
    return page.get_by_title(CHALLENGE_TITLE).element_handle().content_frame()


def start_sign_in(page, email):
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in", exact=True).click()
    challenge = challenge_frame(page)
    expect(challenge.get_by_label("Verification code")).to_be_visible()
    return challenge


def code_for(stack, email):
    mails = stack.mailbox(email)
    assert mails, f"no code was mailed to {email}"
    return mails[-1]["code"]


def wrong(code):
    return f"{(int(code) + 1) % 1_000_000:06d}"


def expect_signed_in(page, email):
    try:
        expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    except AssertionError as error:
        # The dialog's own words (its status region) say why, e.g. a refused passkey prompt.
        said = [frame.evaluate("() => document.body ? document.body.innerText.slice(-600) : ''")
                for frame in page.frames if frame != page.main_frame]
        raise AssertionError(f"{error}\nThe dialog showed: {said}") from None


def expect_api_answer(page, email):
    """The /api/me answer, as the page shows it (its JSON, pretty-printed): the authorizer
    verified the access token locally, and it names the user of the ID token the page shows."""
    id_claims = json.loads(page.locator("#claims-json").text_content())
    # The address was proven (the ID token is issued after Verify marked it): what the
    # Cognito-checked answer's emailVerified said before the API verified tokens locally.
    assert id_claims["email"] == email and id_claims["email_verified"] is True
    answer = page.locator("#api-result")
    expect(answer).to_be_visible()
    expect(answer).to_contain_text('"verifiedBy": "local"')
    expect(answer).to_contain_text(f'"sub": "{id_claims["sub"]}"')


def expect_signed_out(page):
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_enabled()
    expect(page.get_by_text("Signed in as")).to_be_hidden()


# ---- the whole flow, on each screen and colour scheme ----------------------------------------

@pytest.mark.parametrize("screen,scheme", [("desktop", "light"), ("desktop", "dark"),
                                           ("phone", "light"), ("phone", "dark")])
def test_sign_in_call_the_api_reload_and_sign_out(open_page, browser_stack, email, axe_source, screen, scheme):
    page, watch = open_page(screen, scheme)
    name = f"{screen}-{scheme}"
    assert axe_violations(page.main_frame, axe_source) == [], "sign-in form"
    shot(page, f"{name}-1-form", full_page=True)

    challenge = start_sign_in(page, email)
    assert axe_violations(challenge_document(page), axe_source) == [], "challenge page"
    shot(page, f"{name}-2-challenge")

    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    expect(page.get_by_title(CHALLENGE_TITLE)).to_have_count(0)

    page.get_by_role("button", name="Call protected API").click()
    expect_api_answer(page, email)
    assert axe_violations(page.main_frame, axe_source) == [], "signed-in view"
    shot(page, f"{name}-3-signed-in", full_page=True)

    with page.expect_response(lambda r: r.url.endswith("/auth/refresh")) as refreshed:
        page.reload()
    assert refreshed.value.status == 200
    expect_signed_in(page, email)

    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    with page.expect_response(lambda r: r.url.endswith("/auth/refresh")) as refreshed:
        page.reload()
    assert refreshed.value.status == 200  # no session is no error: nothing in the console
    expect_signed_out(page)
    assert watch.sdk_served >= 1
    watch.assert_clean()


def test_after_sign_out_cognitos_check_refuses_the_old_access_token(open_page, browser_stack, email):
    """Call protected API names the signed-in user; after Sign out, a route that asks Cognito
    (`/api/me?check=cognito`) refuses the access token the page held, while local verification
    still admits it until it expires: the exposure docs/design.md states."""
    import requests

    page, watch = open_page("desktop", "light")
    challenge = start_sign_in(page, email)
    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    with page.expect_response(lambda r: r.url.endswith("/auth/finish")) as finished:
        challenge.get_by_role("button", name="Verify").click()
    access_token = finished.value.json()["accessToken"]
    expect_signed_in(page, email)
    page.get_by_role("button", name="Call protected API").click()
    expect_api_answer(page, email)

    bearer = {"Authorization": f"Bearer {access_token}"}
    assert requests.get(browser_stack.app_url + "/api/me?check=cognito", headers=bearer, timeout=10).json()[
        "email"] == email
    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page)
    refused = requests.get(browser_stack.app_url + "/api/me?check=cognito", headers=bearer, timeout=10)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert requests.get(browser_stack.app_url + "/api/me", headers=bearer, timeout=10).status_code == 200
    watch.assert_clean()


def test_the_longest_session_and_a_real_size_refresh_token_sign_in_and_the_cookie_fits(open_page, browser_stack,
                                                                                        email):
    """Cognito may send a Session of 4,096 characters (the emulator's default) and refresh
    tokens of about 1.8 KB: the page carries the sealed session, the browser keeps the
    cookie (its whole Set-Cookie under 4,096 bytes) and sends it back on reload."""
    import requests

    settings = requests.post(browser_stack.cognito_url + "/_dev/settings", json={}, timeout=5).json()
    assert settings["sessionLength"] == 4096
    page, watch = open_page()
    with page.expect_response(lambda r: r.url.endswith("/auth/start")) as started:
        challenge = start_sign_in(page, email)
    assert len(started.value.json()["session"]) > 4096  # Cognito's 4,096 inside, sealed
    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    with page.expect_response(lambda r: r.url.endswith("/auth/finish")) as finished:
        challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    set_cookie = finished.value.header_value("set-cookie")
    assert len(set_cookie.encode()) < 4096
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "cas_refresh"]
    assert len(cookie["value"].partition(":")[2]) >= 1700  # the refresh token, at its real size
    with page.expect_response(lambda r: r.url.endswith("/auth/refresh")) as refreshed:
        page.reload()
    assert refreshed.value.status == 200
    expect_signed_in(page, email)
    watch.assert_clean()


# ---- the unhappy paths -------------------------------------------------------------------------

@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_a_wrong_code_shows_the_emulators_error_and_a_retry_succeeds(open_page, browser_stack, email, screen):
    page, watch = open_page(screen)
    challenge = start_sign_in(page, email)
    code = code_for(browser_stack, email)

    challenge.get_by_label("Verification code").fill(wrong(code))
    challenge.get_by_role("button", name="Verify").click()
    expect(challenge.get_by_role("status")).to_have_text("That code is not right. Check the latest email and try again.")
    expect(challenge.get_by_label("Verification code")).to_have_attribute("aria-invalid", "true")
    shot(page, f"{screen}-light-4-error-wrong-code")

    challenge.get_by_label("Verification code").fill(code)
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    watch.assert_clean(("/challenge/verify", 400))


def test_closing_the_challenge_is_a_calm_cancel_and_the_form_works_again(open_page, browser_stack, email):
    page, watch = open_page()
    start_sign_in(page, email)
    page.mouse.click(8, 8)  # outside the dialog: the SDK closes it without a token
    expect(page.get_by_title(CHALLENGE_TITLE)).to_have_count(0)
    status = page.get_by_role("status")
    expect(status).to_contain_text("Sign-in cancelled")
    expect(status).not_to_have_attribute("data-kind", "error")
    expect(page.get_by_label("Email")).to_be_focused()
    shot(page, "desktop-light-5-cancelled")

    challenge = start_sign_in(page, email)
    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    watch.assert_clean()


def test_the_dialogs_cancel_button_hands_back_no_token(open_page, browser_stack, email):
    """The pre-built UI's own Cancel sends AUTHSIGNAL_CLOSE_POPUP without a token: no round is
    finished, the page says so calmly, and a new sign-in works."""
    page, watch = open_page()
    finishes = []
    page.on("request", lambda request: finishes.append(request.url) if "/auth/finish" in request.url else None)
    challenge = start_sign_in(page, email)
    press_enter(challenge.get_by_role("button", name="Cancel"))
    expect(page.get_by_title(CHALLENGE_TITLE)).to_have_count(0)
    status = page.get_by_role("status")
    expect(status).to_have_text("Sign-in cancelled. Nothing was changed; sign in again whenever you are ready.")
    expect(status).not_to_have_attribute("data-kind", "error")
    assert finishes == []  # no token, so nothing was sent to finish the round

    challenge = start_sign_in(page, email)
    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    watch.assert_clean()


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_an_outage_is_a_friendly_error_and_the_form_works_again(open_page, browser_stack, email, screen):
    page, watch = open_page(screen)
    # Enough faults to outlast the client's retries (botocore's standard mode: 3 attempts).
    browser_stack.fault("cognito", "InitiateAuth", "InternalErrorException", count=aws_retry.MAX_ATTEMPTS)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Sign-in is unavailable right now. Try again in a minute.")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_enabled()
    shot(page, f"{screen}-light-4-error-outage", full_page=True)

    challenge = start_sign_in(page, email)
    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    watch.assert_clean(("/auth/start", 503))


def test_an_invalid_email_is_explained_without_asking_the_server(open_page):
    page, watch = open_page()
    starts = []
    page.on("request", lambda request: starts.append(request.url) if request.url.endswith("/auth/start") else None)
    page.get_by_label("Email").fill("not an email")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("That does not look like an email address. Check it and try again.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_be_focused()
    assert starts == []  # the message and the check happen in the same task as the submit
    watch.assert_clean()


# ---- keyboard alone -----------------------------------------------------------------------------

def test_the_whole_flow_with_the_keyboard_alone(open_page, browser_stack, email):
    page, watch = open_page()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Enter")

    challenge = challenge_frame(page)
    code_box = challenge.get_by_label("Verification code")
    expect(code_box).to_be_focused()  # the dialog takes focus straight to the code box
    page.keyboard.type(code_for(browser_stack, email))
    page.keyboard.press("Enter")
    expect_signed_in(page, email)
    expect(page.get_by_role("heading", name=f"Signed in as {email}")).to_be_focused()

    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Call protected API")).to_be_focused()
    page.keyboard.press("Enter")
    expect_api_answer(page, email)

    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add a passkey")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    page.keyboard.press("Enter")
    expect_signed_out(page)
    expect(page.get_by_label("Email")).to_be_focused()
    watch.assert_clean()


# ---- the Web SDK, its URL and its one inline style -------------------------------------------

def test_the_sdk_loads_from_the_production_url_and_its_popup_style_is_allowed(open_page, browser_stack, email):
    page, watch = open_page()
    assert page.locator("script[integrity]").get_attribute("src") == SDK_URL
    assert watch.sdk_served == 1
    csp = page.evaluate("""() => fetch(location.href).then((r) => r.headers.get("Content-Security-Policy"))""")
    assert "'unsafe-inline'" not in csp

    start_sign_in(page, email)
    style = page.locator("style#__authsignal-popup-style")
    expect(style).to_have_count(1)
    text = style.evaluate("(element) => element.textContent")
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    style_src = next(d for d in csp.split(";") if d.strip().startswith("style-src")).split()
    assert style_src == ["style-src", "'self'", f"'sha256-{digest}'"], "the CSP must allow exactly the SDK's style"
    # Applied, not blocked: the SDK's rules position its dialog over the page.
    container = page.locator("#__authsignal-popup-container")
    assert container.evaluate("(element) => getComputedStyle(element).position") == "fixed"
    assert container.evaluate("(element) => getComputedStyle(element).zIndex") == "2147483647"
    watch.assert_clean()


# ---- fidelity: a tenant's custom domain, and errors the pre-built UI reports ----------------------


def test_sign_in_through_the_tenants_custom_domain(open_page, custom_domain_stack, email):
    """The tenant serves its UI on a second origin; with AUTHSIGNAL_UI_ORIGIN listing both,
    the CSP frames it and the sign-in works through it."""
    page, watch = open_page(stack=custom_domain_stack)
    domain = custom_domain_stack.authsignal_url.replace("127.0.0.1", "localhost")
    challenge = start_sign_in(page, email)
    assert page.get_by_title(CHALLENGE_TITLE).get_attribute("src").startswith(domain + "/challenge?")
    challenge.get_by_label("Verification code").fill(code_for(custom_domain_stack, email))
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    watch.assert_clean()


def test_an_error_reported_by_the_ui_is_explained(open_page, browser_stack, email):
    page, watch = open_page()
    # The UI finds its link not valid (as for a token from elsewhere) and says so via onError.
    page.route("**/challenge?token=*", lambda route: route.continue_(
        url=route.request.url.replace("token=", "token=broken")))
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in", exact=True).click()
    status = page.get_by_role("status")
    expect(status).to_have_text("The verification link was not valid.")
    expect(status).to_have_attribute("data-kind", "error")
    page.mouse.click(8, 8)  # the person closes the dialog
    expect(status).to_have_text("The verification link was not valid. Sign in again to get a new one.")
    page.unroute("**/challenge?token=*")
    challenge = start_sign_in(page, email)
    challenge.get_by_label("Verification code").fill(code_for(browser_stack, email))
    challenge.get_by_role("button", name="Verify").click()
    expect_signed_in(page, email)
    watch.assert_clean(("/challenge", 400))
