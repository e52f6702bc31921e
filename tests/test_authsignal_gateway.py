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


def test_a_new_user_enrols_then_is_challenged_and_the_token_validates(emu, config):
    user_id, email = new_user()
    first = gateway.start_challenge(config, user_id, email)  # ALLOW + isEnrolled false
    token = complete(emu, first, email)
    validation = gateway.validate(config, user_id, token)
    assert (validation.is_valid, validation.state, validation.idempotency_key) == (
        True, "CHALLENGE_SUCCEEDED", first.idempotency_key)
    again = gateway.start_challenge(config, user_id, email)  # CHALLENGE_REQUIRED
    assert again.url.startswith(emu.url + "/challenge?token=") and again.idempotency_key != first.idempotency_key


@pytest.mark.parametrize("outcome", ["BLOCK", "REVIEW_REQUIRED"])
def test_a_rule_that_refuses_is_blocked(emu, config, outcome, caplog):
    user_id, email = new_user()
    dev(emu, "/_dev/tenant", {"rules": {email: outcome}})
    with pytest.raises(gateway.AuthsignalBlocked, match=gateway.BLOCKED):
        gateway.start_challenge(config, user_id, email)
    assert outcome in caplog.text and email not in caplog.text


def test_allow_for_an_enrolled_user_is_a_misconfiguration(emu, config, caplog):
    user_id, email = new_user()
    complete(emu, gateway.start_challenge(config, user_id, email), email)
    dev(emu, "/_dev/tenant", {"rules": {email: "ALLOW"}})
    with pytest.raises(gateway.AuthsignalMisconfigured, match=gateway.MISCONFIGURED) as caught:
        gateway.start_challenge(config, user_id, email)
    assert "default outcome CHALLENGE" in str(caught.value)
    assert "Misconfiguration" in caplog.text and "cognitoAuth" in caplog.text


def test_a_401_is_a_misconfiguration_not_an_outage(emu, config, caplog):
    user_id, email = new_user()
    requests.post(f"{emu.url}/_dev/faults", json={"operation": "track", "fault": "401"}, timeout=5).raise_for_status()
    with pytest.raises(gateway.AuthsignalMisconfigured) as caught:
        gateway.start_challenge(config, user_id, email)
    assert "AUTHSIGNAL_SECRET_KEY" in str(caught.value) and "AUTHSIGNAL_API_URL" in str(caught.value)
    assert SECRET not in caplog.text and SECRET not in str(caught.value)
    assert gateway.start_challenge(config, user_id, email).url  # the next one works


@pytest.mark.parametrize("origins", [("https://mfa.authsignal.com",), ("http://127.0.0.1:1",)])
def test_a_challenge_url_on_an_origin_the_page_cannot_frame_is_refused(emu, config, origins, caplog):
    user_id, email = new_user()
    foreign = config.__class__(**{**config.__dict__, "authsignal_ui_origins": origins})
    with pytest.raises(gateway.AuthsignalMisconfigured, match="AUTHSIGNAL_UI_ORIGIN"):
        gateway.start_challenge(foreign, user_id, email)
    assert "AUTHSIGNAL_UI_ORIGIN" in caplog.text and "token=" not in caplog.text


def test_a_custom_domain_in_the_list_is_accepted(emu, config):
    domain = emu.url.replace("127.0.0.1", "localhost")
    dev(emu, "/_dev/tenant", {"customDomain": domain})
    try:
        with_domain = config.__class__(**{**config.__dict__, "authsignal_ui_origins": (emu.url, domain)})
        assert gateway.start_challenge(with_domain, *new_user()).url.startswith(domain + "/challenge?")
        with pytest.raises(gateway.AuthsignalMisconfigured):
            gateway.start_challenge(config, *new_user())
    finally:
        dev(emu, "/_dev/tenant", {"customDomain": None})
