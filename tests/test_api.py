"""The HTTP API through Chalice's test client, against the dev stack's emulators."""
import json
import time

import pytest

from chalicelib.signin import MAX_SESSION_LENGTH, jwt_claims

JSON = {"Content-Type": "application/json"}


def post(client, path, body, headers=None):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(path, body=raw, headers={**JSON, **(headers or {})})


def body(response):
    return json.loads(response.body)


def assert_error(response, status, code=None):
    assert response.status_code == status, response.body
    error = body(response)["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code
    assert "Traceback" not in error["message"]
    return error


def cookie_of(response):
    return response.headers["Set-Cookie"].split(";")[0]


def sign_in(client, devstack, email):
    started = body(post(client, "/auth/start", {"email": email}))
    token = devstack.token_for(started["challengeUrl"], email)
    return post(client, "/auth/finish", {"email": email, "session": started["session"], "token": token})


def test_page_is_served_with_its_csp(client):
    response = client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.body.decode()
    assert 'integrity="sha384-' in page and "{{" not in page
    csp = response.headers["Content-Security-Policy"]
    assert "frame-src http://127.0.0.1:" in csp and "default-src 'none'" in csp


@pytest.mark.parametrize("name,content_type", [("app.js", "text/javascript"), ("app.css", "text/css")])
def test_assets_have_their_content_type(client, name, content_type):
    response = client.http.get(f"/static/{name}")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(content_type)


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "index.html", "app.py", ".hidden.js"])
def test_unknown_assets_are_404(client, name):
    assert_error(client.http.get(f"/static/{name}"), 404, "not_found")


def test_config_is_public_only(client, devstack):
    config = body(client.http.get("/config"))
    assert config == {"tenantId": "devstack-tenant", "baseUrl": devstack.authsignal_url + "/v1"}


def test_every_response_has_security_headers(client):
    for response in (client.http.get("/config"), post(client, "/auth/start", {})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in response.headers


def test_full_sign_in_refresh_me_and_sign_out(client, devstack, email):
    started = post(client, "/auth/start", {"email": email})
    assert started.status_code == 200
    challenge = body(started)
    assert challenge["status"] == "CHALLENGE" and challenge["challengeUrl"].startswith(devstack.authsignal_url)
    token = devstack.token_for(challenge["challengeUrl"], email)
    finished = post(client, "/auth/finish", {"email": email, "session": challenge["session"], "token": token})
    signed_in = body(finished)
    assert signed_in["status"] == "SIGNED_IN" and signed_in["expiresIn"] == 3600
    assert set(signed_in) == {"status", "idToken", "accessToken", "expiresIn"}  # no refresh token in JSON
    set_cookie = finished.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/auth"):
        assert attribute in set_cookie

    me = body(client.http.get("/api/me?check=cognito", headers={"Authorization": "Bearer " + signed_in["accessToken"]}))
    assert me["email"] == email and me["emailVerified"] is True and me["sub"] and me["verifiedBy"] == "cognito"
    local = body(client.http.get("/api/me", headers={"Authorization": "Bearer " + signed_in["accessToken"]}))
    assert local["sub"] == me["sub"] and local["verifiedBy"] == "local"

    refreshed = post(client, "/auth/refresh", {}, headers={"Cookie": cookie_of(finished)})
    assert body(refreshed)["status"] == "SIGNED_IN"

    out = post(client, "/auth/sign-out", {}, headers={"Cookie": cookie_of(finished)})
    assert out.status_code == 204 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert_error(post(client, "/auth/refresh", {}, headers={"Cookie": cookie_of(finished)}), 401)
    assert_error(client.http.get("/api/me?check=cognito",
                                 headers={"Authorization": "Bearer " + signed_in["accessToken"]}), 401)


def test_start_answers_the_same_for_new_and_existing_emails(client, devstack, email):
    sign_in(client, devstack, email)
    new, existing = post(client, "/auth/start", {"email": "new-" + email}), post(client, "/auth/start", {"email": email})
    assert new.status_code == existing.status_code == 200
    assert set(body(new)) == set(body(existing)) == {"status", "session", "challengeUrl", "challengeToken"}


def test_returning_user_costs_two_cognito_calls(client, devstack, email):
    sign_in(client, devstack, email)
    before = devstack.stats("cognito")["calls"]
    assert body(sign_in(client, devstack, email))["status"] == "SIGNED_IN"
    after = devstack.stats("cognito")["calls"]
    spent = {op: after.get(op, 0) - before.get(op, 0) for op in after if after.get(op, 0) != before.get(op, 0)}
    # Other tests may run in between only sequentially, so the difference is this sign-in's.
    assert spent == {"InitiateAuth": 1, "RespondToAuthChallenge": 1}


def test_email_is_normalized(client, devstack, email):
    first = body(sign_in(client, devstack, email))
    second = body(sign_in(client, devstack, "  " + email.upper() + " "))
    assert jwt_claims(first["idToken"])["sub"] == jwt_claims(second["idToken"])["sub"]


def test_wrong_token_retries_then_fails(client, devstack, email):
    challenge = body(post(client, "/auth/start", {"email": email}))
    for attempt in range(2):
        again = post(client, "/auth/finish", {"email": email, "session": challenge["session"], "token": "wrong.token.value"})
        assert again.status_code == 200
        challenge = body(again)
        assert challenge["status"] == "CHALLENGE" and challenge["challengeUrl"]
    final = post(client, "/auth/finish", {"email": email, "session": challenge["session"], "token": "wrong.token.value"})
    assert_error(final, 401, "not_authorized")


def test_reused_session_is_refused(client, devstack, email):
    challenge = body(post(client, "/auth/start", {"email": email}))
    token = devstack.token_for(challenge["challengeUrl"], email)
    assert body(post(client, "/auth/finish", {"email": email, "session": challenge["session"], "token": token}))["status"] == "SIGNED_IN"
    error = assert_error(post(client, "/auth/finish", {"email": email, "session": challenge["session"], "token": token}), 401)
    assert "Start again" in error["message"]


def test_garbage_session_is_refused(client, email):
    assert_error(post(client, "/auth/finish", {"email": email, "session": "garbage", "token": "t"}), 401)


@pytest.mark.parametrize("raw,status,code", [
    (b"not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b"{}", 400, "missing_field"),
    (b'{"email": 42}', 400, "invalid_field"),
    (b'{"email": ["a@b.co"]}', 400, "invalid_field"),
    (b'{"email": "not-an-email"}', 400, "invalid_email"),
    (b'{"email": "a b@example.com"}', 400, "invalid_email"),
    (json.dumps({"email": "x" * 290 + "@example.com"}).encode(), 400, "invalid_email"),
    (json.dumps({"email": "a@b.co", "pad": "x" * 17000}).encode(), 413, "body_too_large"),
    (b"\xff\xfe", 400, "invalid_json"),
])
def test_bad_start_bodies(client, raw, status, code):
    assert_error(post(client, "/auth/start", raw), status, code)


@pytest.mark.parametrize("payload,code", [
    ({"email": "a@b.co", "session": "s"}, "missing_field"),
    ({"email": "a@b.co", "token": "t"}, "missing_field"),
    ({"email": "a@b.co", "session": 1, "token": "t"}, "invalid_field"),
    ({"email": "a@b.co", "session": "s" * (MAX_SESSION_LENGTH + 1), "token": "t"}, "invalid_field"),
])
def test_bad_finish_bodies(client, payload, code):
    assert_error(post(client, "/auth/finish", payload), 400, code)


def test_unicode_email_is_accepted_or_refused_cleanly(client):
    response = post(client, "/auth/start", {"email": "üñí@exämple.com"})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert_error(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_state_changing_routes_want_json(client, content_type):
    response = client.http.post("/auth/start", body=b'{"email": "a@b.co"}', headers={"Content-Type": content_type})
    assert_error(response, 415, "unsupported_media_type")


def test_foreign_origin_is_refused(client):
    response = post(client, "/auth/start", {"email": "a@b.co"}, headers={"Origin": "https://evil.example", "Host": "127.0.0.1:8000"})
    assert_error(response, 403, "foreign_origin")


def test_same_origin_is_accepted(client, email):
    response = post(client, "/auth/start", {"email": email}, headers={"Origin": "http://127.0.0.1:8000", "Host": "127.0.0.1:8000"})
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["Basic abc", "Bearer ", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_me_refuses_bad_tokens(client, header):
    assert_error(client.http.get("/api/me", headers={"Authorization": header}), 401)


def test_me_without_authorization(client):
    # chalice local's gateway answers this itself ({"message": "Unauthorized"}), before the
    # authorizer; deployed, the UNAUTHORIZED gateway response uses the API's error shape.
    assert client.http.get("/api/me").status_code == 401


@pytest.mark.parametrize("cookie", ["cas_refresh=garbage", "cas_refresh=sub:token"])
def test_refresh_refuses_bad_cookies(client, cookie):
    assert_error(post(client, "/auth/refresh", {}, headers={"Cookie": cookie}), 401)


@pytest.mark.parametrize("cookie", [None, "cas_refresh=", "other=1"])
def test_refresh_without_a_session_is_signed_out_not_an_error(client, cookie):
    # A first visit is not a failure: no error status, so the browser logs nothing.
    response = post(client, "/auth/refresh", {}, headers={"Cookie": cookie} if cookie else {})
    assert response.status_code == 200
    assert json.loads(response.body) == {"status": "SIGNED_OUT"}
    assert "Set-Cookie" not in response.headers


def test_sign_out_without_a_cookie_still_clears_it(client):
    response = post(client, "/auth/sign-out", {})
    assert response.status_code == 204 and "Max-Age=0" in response.headers["Set-Cookie"]


def test_cognito_throttling_is_429(client, devstack, email):
    # One throttle is retried (tests/test_signin_retries.py); three outlast the retries.
    devstack.fault("cognito", "InitiateAuth", "TooManyRequestsException", count=3)
    assert_error(post(client, "/auth/start", {"email": email}), 429, "throttled")
    assert post(client, "/auth/start", {"email": email}).status_code == 200


def test_authsignal_outage_is_503_and_the_next_sign_in_works(client, devstack, email):
    devstack.fault("authsignal", "track", "500", count=3)
    started = time.monotonic()
    assert_error(post(client, "/auth/start", {"email": email}), 503, "unavailable")
    assert time.monotonic() - started < 10
    requests_left = 3
    while requests_left and post(client, "/auth/start", {"email": email}).status_code == 503:
        requests_left -= 1
    assert body(sign_in(client, devstack, email))["status"] == "SIGNED_IN"


def test_cognito_unreachable_is_503(client, monkeypatch, email):

    from chalicelib import settings
    real_load = settings.load
    # Fault injection: point the app at a loopback port where nothing listens.
    monkeypatch.setattr(settings, "load", lambda: real_load()._replace(cognito_endpoint_url="http://127.0.0.1:9"))
    assert_error(post(client, "/auth/start", {"email": email}), 503, "unavailable")


# ------------------------------------------------------------------ real sizes and unconfirmed Cognito behaviour

def cognito_setting(devstack, **settings):
    import requests

    answer = requests.post(devstack.cognito_url + "/_dev/settings", json=settings, timeout=5)
    answer.raise_for_status()
    return answer.json()


def test_the_longest_session_and_a_real_size_refresh_token_fit_the_page_and_the_cookie(client, devstack, email):
    """Cognito may send a Session of 4,096 characters (botocore's limit; the emulator's
    default) and a refresh token of about 1.8 KB: the sealed session carries the first
    through the page, and the cookie with its name and attributes stays under 4,096 bytes."""
    import base64
    from types import SimpleNamespace

    from chalicelib import http

    assert cognito_setting(devstack)["sessionLength"] == 4096
    started = body(post(client, "/auth/start", {"email": email}))
    payload = started["session"].rpartition(".")[0]
    _, _, cognito_session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert len(cognito_session) == 4096 and len(started["session"]) <= MAX_SESSION_LENGTH
    token = devstack.token_for(started["challengeUrl"], email)
    finished = post(client, "/auth/finish", {"email": email, "session": started["session"], "token": token})
    assert body(finished)["status"] == "SIGNED_IN"
    set_cookie = finished.headers["Set-Cookie"]
    refresh_token = cookie_of(finished).partition("=")[2].partition(":")[2]
    assert len(refresh_token) >= 1700
    assert len(set_cookie.encode()) < 4096
    # Deployed, the path carries API Gateway's stage prefix: still well under.
    deployed = SimpleNamespace(context={"path": "/production-stage/auth/finish", "resourcePath": "/auth/finish"})
    assert len(http.refresh_cookie(deployed, cookie_of(finished).partition("=")[2]).encode()) < 4096 - 1024
    assert body(post(client, "/auth/refresh", {}, headers={"Cookie": cookie_of(finished)}))["status"] == "SIGNED_IN"


@pytest.fixture(params=[False, True], ids=["initiate-metadata-dropped", "initiate-metadata-forwarded"])
def initiate_auth_metadata(devstack, request):
    """Whether InitiateAuth's ClientMetadata reaches Define and Create is unconfirmed: the app
    must work either way."""
    cognito_setting(devstack, initiateAuthClientMetadata=request.param)
    yield request.param
    cognito_setting(devstack, initiateAuthClientMetadata=False)


def test_sign_in_works_whether_or_not_initiate_auth_metadata_reaches_the_triggers(
        client, devstack, email, initiate_auth_metadata):
    for _ in range(2):  # a new user, then a returning one
        assert body(sign_in(client, devstack, email))["status"] == "SIGNED_IN"


def test_prevent_user_existence_errors_enabled_is_explained_once_in_the_log(client, devstack, email, caplog,
                                                                             monkeypatch):
    """ENABLED hides new emails from the app (Define fails them as userNotFound): each new email
    gets 'start again', and the operator's log names the setting and its fix, once."""
    from chalicelib import signin

    monkeypatch.setattr(signin, "_hidden_users_hint_logged", False)
    sign_in(client, devstack, email)  # an existing user, made while LEGACY
    cognito_setting(devstack, preventUserExistenceErrors=True)
    try:
        assert body(sign_in(client, devstack, email))["status"] == "SIGNED_IN"  # returning users still can
        assert "PreventUserExistenceErrors" not in caplog.text
        for new in ("new-" + email, "other-" + email):
            error = assert_error(post(client, "/auth/start", {"email": new}), 401, "not_authorized")
            assert error["message"] == signin.START_AGAIN
    finally:
        cognito_setting(devstack, preventUserExistenceErrors=False)
    hints = [r for r in caplog.records if "PreventUserExistenceErrors" in r.getMessage()]
    assert len(hints) == 1 and hints[0].levelname == "ERROR"
    assert "LEGACY" in hints[0].getMessage() and "python -m triggers connect" in hints[0].getMessage()
    assert email not in caplog.text
