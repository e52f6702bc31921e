"""The small Authsignal client against the `authsignal` SDK it replaces: the same answers from
the dev stack's Authsignal emulator, the same ApiException fields; plus what it does better."""
import contextlib
import http.server
import json
import threading
import uuid

import pytest
from authsignal.client import ApiException as SdkApiException
from authsignal.client import AuthsignalClient as Sdk

from chalicelib.authsignal_client import ApiException, AuthsignalClient
from tests.conftest import free_port

ACTION = "cognitoAuth"


@pytest.fixture
def both(devstack):
    env = devstack.local_env()
    return (AuthsignalClient(env["AUTHSIGNAL_SECRET_KEY"], api_url=env["AUTHSIGNAL_API_URL"]),
            Sdk(env["AUTHSIGNAL_SECRET_KEY"], api_url=env["AUTHSIGNAL_API_URL"]), env)


def test_track_and_validate_answer_as_the_sdk_does(devstack, both):
    ours, sdk, _ = both
    user = str(uuid.uuid4())
    email = f"client-{uuid.uuid4().hex[:8]}@example.com"
    tracked, expected = ours.track(user, ACTION, {"email": email}), sdk.track(user, ACTION, {"email": email})
    assert tracked.keys() == expected.keys() and "idempotency_key" in tracked  # snake_case, as the SDK gives
    assert tracked["url"].split("?")[0] == expected["url"].split("?")[0]
    token = devstack.token_for(tracked["url"], email)
    validated = ours.validate_challenge({"token": token, "userId": user, "action": ACTION})
    assert validated == sdk.validate_challenge({"token": token, "userId": user, "action": ACTION})
    assert validated["is_valid"] is True and validated["idempotency_key"] == tracked["idempotency_key"]


def test_errors_carry_what_the_sdk_carries(both):
    _, _, env = both
    bad_ours = AuthsignalClient("not-the-key", api_url=env["AUTHSIGNAL_API_URL"])
    bad_sdk = Sdk("not-the-key", api_url=env["AUTHSIGNAL_API_URL"])
    with pytest.raises(ApiException) as ours:
        bad_ours.track("u-1", ACTION, {"email": "a@example.com"})
    with pytest.raises(SdkApiException) as theirs:
        bad_sdk.track("u-1", ACTION, {"email": "a@example.com"})
    assert (ours.value.status_code, ours.value.error_code) == (theirs.value.status_code, theirs.value.error_code)
    assert ours.value.status_code == 401


def test_no_answer_is_an_exception_without_status():
    client = AuthsignalClient("key", api_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ApiException) as raised:
        client.track("u-1", ACTION)
    assert (raised.value.status_code, raised.value.error_code) == (None, None)


@contextlib.contextmanager
def answering(content_type, body):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield AuthsignalClient("key", api_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/problem+json"])
def test_any_json_content_type_is_read(content_type):
    with answering(content_type, json.dumps({"isValid": False, "state": "CHALLENGE_REQUIRED"}).encode()) as client:
        assert client.validate_challenge({"token": "t"}) == {"is_valid": False, "state": "CHALLENGE_REQUIRED"}


def test_an_answer_that_is_not_json_is_refused():
    with answering("text/html", b"<html>maintenance</html>") as client:
        with pytest.raises(ValueError):
            client.validate_challenge({"token": "t"})
