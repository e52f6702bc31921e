"""The running dev stack over real HTTP, as the page uses it: `chalice local` in front of
the Cognito emulator (running the app's own triggers) and the Authsignal emulator."""

import pytest
import requests

from chalicelib.signin import jwt_claims as claims


@pytest.fixture
def http(devstack):
    session = requests.Session()
    session.headers["Origin"] = devstack.app_url  # what a browser on the page sends
    return session


def url(devstack, path):
    return devstack.app_url + path


def start(http, devstack, email):
    response = http.post(url(devstack, "/auth/start"), json={"email": email}, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def sign_in(http, devstack, email):
    challenge = start(http, devstack, email)
    token = devstack.token_for(challenge["challengeUrl"], email)
    response = http.post(url(devstack, "/auth/finish"), timeout=15,
                         json={"email": email, "session": challenge["session"], "token": token})
    assert response.status_code == 200, response.text
    return response


def test_the_page_and_its_assets_are_served(http, devstack):
    page = http.get(url(devstack, "/"), timeout=5)
    assert page.status_code == 200 and "<label for=\"email\">Email</label>" in page.text
    sdk_url = devstack.env["AUTHSIGNAL_SDK_URL"]
    assert sdk_url in page.text
    sdk = requests.get(sdk_url, timeout=5)
    assert sdk.status_code == 200 and "AUTHSIGNAL_CLOSE_POPUP" in sdk.text


def test_sign_in_me_refresh_sign_out(http, devstack, email):
    finished = sign_in(http, devstack, email)
    answer = finished.json()
    assert answer["status"] == "SIGNED_IN"
    cookie = finished.cookies.get("cas_refresh")
    assert cookie and cookie not in finished.text  # only in the cookie, never in JSON
    set_cookie = finished.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Secure" in set_cookie

    bearer = {"Authorization": "Bearer " + answer["accessToken"]}
    me = http.get(url(devstack, "/api/me?check=cognito"), headers=bearer, timeout=5).json()
    assert me == {"sub": claims(answer["idToken"])["sub"], "email": email, "emailVerified": True,
                  "verifiedBy": "cognito"}
    local = http.get(url(devstack, "/api/me"), headers=bearer, timeout=5).json()
    assert local["sub"] == me["sub"] and local["verifiedBy"] == "local"

    # requests keeps Secure cookies only for https; send it the way a browser would on loopback.
    cookie_header = {"Cookie": f"cas_refresh={cookie}"}
    refreshed = http.post(url(devstack, "/auth/refresh"), json={}, headers=cookie_header, timeout=5)
    assert refreshed.status_code == 200 and refreshed.json()["status"] == "SIGNED_IN"
    assert claims(refreshed.json()["idToken"])["sub"] == me["sub"]

    out = http.post(url(devstack, "/auth/sign-out"), json={}, headers=cookie_header, timeout=5)
    assert out.status_code == 204
    assert http.get(url(devstack, "/api/me?check=cognito"), headers=bearer, timeout=5).status_code == 401
    assert http.get(url(devstack, "/api/me"), headers=bearer, timeout=5).status_code == 200  # until it expires
    assert http.post(url(devstack, "/auth/refresh"), json={}, headers=cookie_header, timeout=5).status_code == 401


def test_second_sign_in_keeps_the_same_sub(http, devstack, email):
    first = claims(sign_in(http, devstack, email).json()["idToken"])
    second = claims(sign_in(http, devstack, email).json()["idToken"])
    assert first["sub"] == second["sub"] and first["email"] == email
    assert first["email_verified"] is True


def test_wrong_token_gets_a_retry_and_the_third_ends_the_attempt(http, devstack, email):
    challenge = start(http, devstack, email)
    other = start(http, devstack, "other-" + email)
    foreign = devstack.token_for(other["challengeUrl"], "other-" + email)  # a real token, someone else's
    for _ in range(2):
        retry = http.post(url(devstack, "/auth/finish"), timeout=15,
                          json={"email": email, "session": challenge["session"], "token": foreign})
        assert retry.status_code == 200 and retry.json()["status"] == "CHALLENGE"
        challenge = retry.json()
    final = http.post(url(devstack, "/auth/finish"), timeout=15,
                      json={"email": email, "session": challenge["session"], "token": foreign})
    assert final.status_code == 401
    assert final.json()["error"]["code"] == "not_authorized"


def test_a_retry_after_a_wrong_answer_can_still_succeed(http, devstack, email):
    challenge = start(http, devstack, email)
    retry = http.post(url(devstack, "/auth/finish"), timeout=15,
                      json={"email": email, "session": challenge["session"], "token": "garbage"}).json()
    assert retry["status"] == "CHALLENGE"
    token = devstack.token_for(retry["challengeUrl"], email)
    done = http.post(url(devstack, "/auth/finish"), timeout=15,
                     json={"email": email, "session": retry["session"], "token": token})
    assert done.json()["status"] == "SIGNED_IN"


def test_replayed_token_does_not_sign_in_again(http, devstack, email):
    challenge = start(http, devstack, email)
    token = devstack.token_for(challenge["challengeUrl"], email)
    http.post(url(devstack, "/auth/finish"), json={"email": email, "session": challenge["session"], "token": token}, timeout=15)
    again = start(http, devstack, email)
    replay = http.post(url(devstack, "/auth/finish"), json={"email": email, "session": again["session"], "token": token}, timeout=15)
    assert replay.json()["status"] == "CHALLENGE"  # refused, with a fresh challenge


def test_logs_hold_no_secrets(http, devstack, email):
    finished = sign_in(http, devstack, email).json()
    app_and_cognito = [line for line in devstack.log if not line.startswith("[authsignal]")]
    text = "".join(app_and_cognito)
    for secret in (finished["accessToken"], finished["idToken"], email,
                   devstack.local_env()["COGNITO_CLIENT_SECRET"], devstack.local_env()["AUTHSIGNAL_SECRET_KEY"]):
        assert secret not in text


@pytest.fixture(params=[False, True], ids=["email-alias-accepted", "strict-username"])
def username_mode(devstack, request):
    """Whether Cognito accepts the email alias as USERNAME in RespondToAuthChallenge is
    unconfirmed: the app must work either way."""
    def strict(value):
        requests.post(devstack.cognito_url + "/_dev/settings", json={"strictUsername": value},
                      timeout=5).raise_for_status()
    strict(request.param)
    yield request.param
    strict(False)


def test_sign_in_works_whether_or_not_cognito_accepts_the_email_there(http, devstack, email, username_mode):
    first = claims(sign_in(http, devstack, email).json()["idToken"])
    second = claims(sign_in(http, devstack, email).json()["idToken"])
    assert first["sub"] == second["sub"] and first["email"] == email


def test_the_session_binds_the_user_and_the_page_cannot_change_it(http, devstack, email):
    import base64
    import json

    victim = f"victim-{email}"
    sign_in(http, devstack, victim)
    challenge = start(http, devstack, email)
    token = devstack.token_for(challenge["challengeUrl"], email)
    payload, _, mac = challenge["session"].rpartition(".")
    username, started_with, session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert username != email and email not in started_with  # Cognito's internal username, not the alias
    forged = base64.urlsafe_b64encode(json.dumps([victim, victim, session]).encode()).decode().rstrip("=")
    for body in ({"email": victim, "session": f"{forged}.{mac}", "token": token},
                 {"email": victim, "session": challenge["session"], "token": token}):
        refused = http.post(url(devstack, "/auth/finish"), timeout=15, json=body)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authorized"
    finished = http.post(url(devstack, "/auth/finish"), timeout=15,
                         json={"email": email.upper(), "session": challenge["session"], "token": token})
    assert claims(finished.json()["idToken"])["email"] == email
