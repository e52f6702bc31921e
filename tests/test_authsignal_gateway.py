"""The Authsignal gateway against the real emulator: track's states, misconfigurations,
and JSON answers under any JSON content type (SDK 4.1.0 parses only the exact one; the
app's own client must not)."""
import uuid

import pytest
import requests

from chalicelib import authsignal_gateway as gateway
from chalicelib import settings
from tests.test_authsignal_emulator import SECRET, Emulator, mailbox, open_page


@pytest.fixture(scope="module", params=["application/json", "application/json; charset=utf-8"])
def emu(request):
    emulator = Emulator("--json-content-type", request.param)
    yield emulator
    emulator.stop()


@pytest.fixture
def config(emu, monkeypatch):
    monkeypatch.setenv("AUTHSIGNAL_SECRET_KEY", SECRET)
    return settings.Settings(
        user_pool_id="us-east-1_DevStack01", client_id="c", region="us-east-1", cognito_endpoint_url=None,
        authsignal_api_url=f"{emu.url}/v1", authsignal_tenant_id="t", authsignal_action="cognitoAuth",
        authsignal_ui_origins=(emu.url,), authsignal_sdk_url=f"{emu.url}/sdk.js")


def dev(emu, path, body):
    answer = requests.post(f"{emu.url}{path}", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def complete(emu, challenge, email):
    assert open_page(challenge.url).status_code == 200
    token = challenge.url.split("token=")[1]
    code = mailbox(emu, email)[-1]["code"]
    assert requests.post(f"{emu.url}/challenge/verify", json={"token": token, "code": code}, timeout=5).ok
    return token


def new_user():
    user_id = str(uuid.uuid4())
    return user_id, f"gw-{user_id[:8]}@example.com"


def start(config, user_id, email, **more):
    return gateway.start_challenge(config, user_id=user_id, email=email, **more)


def stats(emu):
    return requests.get(f"{emu.url}/_dev/stats", timeout=5).json()["calls"]


def test_a_new_user_gets_their_email_enrolled_then_is_challenged_and_the_token_validates(emu, config):
    user_id, email = new_user()
    before = stats(emu)
    first = start(config, user_id, email)  # track (ALLOW, not enrolled), enrol the email, track again
    after = stats(emu)
    assert (after["track"] - before["track"], after["enroll_authenticator"] - before["enroll_authenticator"]) == (2, 1)
    listed = gateway.authenticators(config, user_id)
    assert [(a["verification_method"], a["email"]) for a in listed] == [("EMAIL_OTP", email)]
    token = complete(emu, first, email)
    validation = gateway.validate(config, user_id, token)
    assert (validation.is_valid, validation.state, validation.idempotency_key) == (
        True, "CHALLENGE_SUCCEEDED", first.idempotency_key)
    again = start(config, user_id, email)  # CHALLENGE_REQUIRED at once: one track
    assert again.url.startswith(emu.url + "/challenge?token=") and again.idempotency_key != first.idempotency_key
    assert stats(emu)["track"] - after["track"] == 1 and stats(emu)["enroll_authenticator"] == after["enroll_authenticator"]


def test_a_user_with_only_a_phone_gets_the_phone_enrolled(emu, config):
    user_id, _ = new_user()
    start(config, user_id, None, phone_number="+15550102030", phone_number_verified=True)
    assert [a["verification_method"] for a in gateway.authenticators(config, user_id)] == ["SMS"]


def test_a_user_with_neither_email_nor_phone_is_refused_before_anything_is_enrolled(emu, config):
    user_id, _ = new_user()
    with pytest.raises(gateway.AuthsignalBlocked):
        start(config, user_id, None)
    assert gateway.authenticators(config, user_id) == []


@pytest.mark.parametrize("fault, error", [("500", gateway.AuthsignalUnavailable), ("timeout", gateway.AuthsignalUnavailable)])
def test_an_enrolment_outage_hands_out_no_token(emu, config, fault, error):
    user_id, email = new_user()
    dev(emu, "/_dev/faults", {"operation": "enroll_authenticator", "fault": fault})
    with pytest.raises(error):
        start(config, user_id, email)
    assert gateway.authenticators(config, user_id) == []


def test_a_tenant_that_cannot_enrol_the_email_is_a_misconfiguration(config, caplog):
    emulator = Emulator("--methods", "AUTHENTICATOR_APP,PASSKEY")
    try:
        other = config._replace(authsignal_api_url=f"{emulator.url}/v1", authsignal_ui_origins=(emulator.url,))
        with pytest.raises(gateway.AuthsignalMisconfigured, match="EMAIL_OTP"):
            start(other, *new_user())
    finally:
        emulator.stop()


def test_authenticators_that_cannot_be_read_are_none(emu, config, caplog):
    user_id, email = new_user()
    start(config, user_id, email)
    for fault in ("500", "garbage", "401"):
        dev(emu, "/_dev/faults", {"operation": "get_authenticators", "fault": fault})
        assert gateway.authenticators(config, user_id) is None
    assert email not in caplog.text


@pytest.mark.parametrize("outcome", ["BLOCK", "REVIEW_REQUIRED"])
def test_a_rule_that_refuses_is_blocked(emu, config, outcome, caplog):
    user_id, email = new_user()
    dev(emu, "/_dev/tenant", {"rules": {email: outcome}})
    with pytest.raises(gateway.AuthsignalBlocked, match=gateway.BLOCKED):
        start(config, user_id, email)
    assert outcome in caplog.text and email not in caplog.text


def test_allow_for_an_enrolled_user_is_a_misconfiguration(emu, config, caplog):
    user_id, email = new_user()
    complete(emu, start(config, user_id, email), email)
    dev(emu, "/_dev/tenant", {"rules": {email: "ALLOW"}})
    with pytest.raises(gateway.AuthsignalMisconfigured, match=gateway.MISCONFIGURED) as caught:
        start(config, user_id, email)
    assert "default outcome CHALLENGE" in str(caught.value)
    assert "Misconfiguration" in caplog.text and "cognitoAuth" in caplog.text


def test_a_401_is_a_misconfiguration_not_an_outage(emu, config, caplog):
    user_id, email = new_user()
    requests.post(f"{emu.url}/_dev/faults", json={"operation": "track", "fault": "401"}, timeout=5).raise_for_status()
    with pytest.raises(gateway.AuthsignalMisconfigured) as caught:
        start(config, user_id, email)
    assert "AUTHSIGNAL_SECRET_KEY" in str(caught.value) and "AUTHSIGNAL_API_URL" in str(caught.value)
    assert SECRET not in caplog.text and SECRET not in str(caught.value)
    assert start(config, user_id, email).url  # the next one works


@pytest.mark.parametrize("origins", [("https://mfa.authsignal.com",), ("http://127.0.0.1:1",)])
def test_a_challenge_url_on_an_origin_the_page_cannot_frame_is_refused(emu, config, origins, caplog):
    user_id, email = new_user()
    foreign = config._replace(authsignal_ui_origins=origins)
    with pytest.raises(gateway.AuthsignalMisconfigured, match="AUTHSIGNAL_UI_ORIGIN"):
        start(foreign, user_id, email)
    assert "AUTHSIGNAL_UI_ORIGIN" in caplog.text and "token=" not in caplog.text


def test_a_custom_domain_in_the_list_is_accepted(emu, config):
    domain = emu.url.replace("127.0.0.1", "localhost")
    dev(emu, "/_dev/tenant", {"customDomain": domain})
    try:
        with_domain = config._replace(authsignal_ui_origins=(emu.url, domain))
        assert start(with_domain, *new_user()).url.startswith(domain + "/challenge?")
        with pytest.raises(gateway.AuthsignalMisconfigured):
            start(config, *new_user())
    finally:
        dev(emu, "/_dev/tenant", {"customDomain": None})
