"""Outages: Authsignal answering 500, timing out, answering garbage or refusing connections,
during Create and during Verify; Cognito throttling, failing, timing out or unreachable.
Each gives a clear 503 or 429 in a few seconds, and the next sign-in works.
Counted by `make security` (tests/security_report.py): one test, one injected fault."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from chalicelib import aws_retry, budget
from tests.conftest import ROOT, free_port
from tests.security_helpers import (
    EXTRA_LOG_LINES, User, assert_error, assert_not_signed_in, authsignal_token, capture_in_process_logs, remember,
)

pytestmark = pytest.mark.devstack

# Generous: these are not performance tests. The designed bounds are 1.5 s per Authsignal
# call (inside Cognito's 5 s trigger limit) and 8 s for a Cognito read.
DEADLINE_SECONDS = 10
# A Cognito call that times out is retried (as botocore retries it) within the request's budget.
COGNITO_TIMEOUT_DEADLINE_SECONDS = budget.API_NETWORK_SECONDS + 3


def outlasting(fault, safe_to_repeat=True):
    """How many faults make a Cognito call fail for good: enough to outlast our retries (as
    botocore's standard mode makes them) when the fault is retried, else one."""
    status = 500 if fault == "InternalErrorException" else 400
    retried = aws_retry.kind(fault, status) is not None and (safe_to_repeat or aws_retry.kind(fault, status)
                                                            == aws_retry.THROTTLING)
    return aws_retry.MAX_ATTEMPTS if retried else 1


@pytest.fixture(autouse=True, scope="module")
def _logs():
    capture_in_process_logs()


@pytest.fixture
def user(devstack):
    return User(devstack, f"fault-{uuid.uuid4().hex[:12]}@example.com")


def _timed(call):
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def assert_clear_failure(response, elapsed, status, deadline=DEADLINE_SECONDS):
    context = f"(answered {response.status_code} in {elapsed:.2f} s)"
    error = assert_error(response, status, "unavailable" if status == 503 else "throttled")
    assert elapsed < deadline, f"too slow {context}"
    for leak in ("Injected", "Exception", "AUTHSIGNAL_UNAVAILABLE", "Traceback", "http://", "secret"):
        assert leak not in error["message"], (leak, error, context)
    assert_not_signed_in(response)
    return error


def new_log_lines(devstack, since):
    return "".join(devstack.log[since:])


# ------------------------------------------------------------------ Authsignal, through the dev stack


@pytest.mark.parametrize("fault", ["500", "timeout", "garbage"])
def test_authsignal_fault_during_create(devstack, user, fault):
    since = len(devstack.log)
    devstack.fault("authsignal", "track", fault)
    response, elapsed = _timed(lambda: user.post("/auth/start", {"email": user.email}))
    assert_clear_failure(response, elapsed, 503)
    assert "timed out after" not in new_log_lines(devstack, since)  # the trigger beat Cognito's 5 s
    user.sign_in()


@pytest.mark.parametrize("fault", ["500", "timeout", "garbage"])
def test_authsignal_fault_during_verify(devstack, user, fault):
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    since = len(devstack.log)
    devstack.fault("authsignal", "validate", fault)
    response, elapsed = _timed(lambda: user.finish(challenge["session"], token))
    assert_clear_failure(response, elapsed, 503)
    assert "timed out after" not in new_log_lines(devstack, since)
    user.sign_in()


# ------------------------------------------------------------------ Cognito, through the dev stack


@pytest.mark.parametrize("fault,status", [("TooManyRequestsException", 429), ("InternalErrorException", 503)])
def test_cognito_fault_on_initiate_auth(devstack, user, fault, status):
    user.sign_in()  # a returning user: start is one InitiateAuth
    devstack.fault("cognito", "InitiateAuth", fault, outlasting(fault))
    response, elapsed = _timed(lambda: user.post("/auth/start", {"email": user.email}))
    assert_clear_failure(response, elapsed, status)
    user.sign_in()


@pytest.mark.parametrize("fault,status", [("TooManyRequestsException", 429), ("InternalErrorException", 503)])
def test_cognito_fault_on_sign_up(devstack, user, fault, status):
    devstack.fault("cognito", "SignUp", fault, outlasting(fault))
    response, elapsed = _timed(lambda: user.post("/auth/start", {"email": user.email}))
    assert_clear_failure(response, elapsed, status)
    user.sign_in()


@pytest.mark.parametrize("fault,status", [("TooManyRequestsException", 429), ("InternalErrorException", 503)])
def test_cognito_fault_on_respond_to_auth_challenge(devstack, user, fault, status):
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    devstack.fault("cognito", "RespondToAuthChallenge", fault, outlasting(fault, safe_to_repeat=False))
    response, elapsed = _timed(lambda: user.finish(challenge["session"], token))
    assert_clear_failure(response, elapsed, status)
    # Refused before Cognito looked at the session: the same answer, sent again, signs in.
    assert user.finish(challenge["session"], token).json()["status"] == "SIGNED_IN"


def test_cognito_fault_inside_verify_trigger(devstack, user):
    """The Verify trigger's own admin call (marking the email verified) fails."""
    challenge = user.start()
    token = user.prove(challenge["challengeUrl"])
    devstack.fault("cognito", "AdminUpdateUserAttributes", "InternalErrorException",
                   outlasting("InternalErrorException"))
    response, elapsed = _timed(lambda: user.finish(challenge["session"], token))
    assert_clear_failure(response, elapsed, 503)
    user.sign_in()


@pytest.mark.parametrize("fault,status", [("TooManyRequestsException", 429), ("InternalErrorException", 503)])
def test_cognito_fault_on_refresh(devstack, user, fault, status):
    _, cookie = user.sign_in()
    devstack.fault("cognito", "InitiateAuth", fault, outlasting(fault))
    response, elapsed = _timed(lambda: user.with_cookie("/auth/refresh", cookie))
    assert_clear_failure(response, elapsed, status)
    assert user.with_cookie("/auth/refresh", cookie).json()["status"] == "SIGNED_IN"


def test_cognito_fault_on_get_user(devstack, user):
    body, _ = user.sign_in()
    devstack.fault("cognito", "GetUser", "InternalErrorException", outlasting("InternalErrorException"))
    response, elapsed = _timed(lambda: user.me(body["accessToken"]))
    assert_clear_failure(response, elapsed, 503)
    assert user.me(body["accessToken"]).json()["email"] == user.email


@pytest.mark.parametrize("fault", ["InternalErrorException", "UnauthorizedException", "TooManyRequestsException"])
def test_cognito_fault_on_revoke(devstack, user, fault):
    """Sign-out clears the cookie whatever RevokeToken answers; the failure goes to the log
    (the dev stack's app output), not to the user."""
    body, cookie = user.sign_in()
    devstack.fault("cognito", "RevokeToken", fault, outlasting(fault))
    logged = len(devstack.log)
    response, elapsed = _timed(lambda: user.with_cookie("/auth/sign-out", cookie))
    assert response.status_code == 204 and not response.text, (response.status_code, response.text[:300])
    assert "Max-Age=0" in response.headers.get("Set-Cookie", "")
    assert elapsed < DEADLINE_SECONDS
    wanted = "RevokeToken failed (%s)" % fault
    for _ in range(50):  # the app's output reaches the harness through a pipe
        if wanted in new_log_lines(devstack, logged):
            break
        time.sleep(0.1)
    assert wanted in new_log_lines(devstack, logged), devstack.log[-5:]
    # Signing out again (a fresh cookie-less click) still answers 204 and clears.
    assert user.with_cookie("/auth/sign-out", cookie).status_code == 204


def test_cognito_timing_out(devstack, user):
    from devstack.cognito.server import FAULT_TIMEOUT_SECONDS

    user.sign_in()
    # The emulator holds each faulty call 10 s: the first attempt times out at 8 s (our read
    # timeout), the retries' timeouts are cut to what is left of the request's 14 s budget.
    devstack.fault("cognito", "InitiateAuth", "timeout", outlasting("RequestTimeout"))
    began = time.monotonic()
    response, elapsed = _timed(lambda: user.post("/auth/start", {"email": user.email}))
    assert_clear_failure(response, elapsed, 503, deadline=COGNITO_TIMEOUT_DEADLINE_SECONDS)
    user.sign_in()
    # Each held call then runs (its triggers too): let them finish before the next test counts.
    time.sleep(max(0.0, began + budget.API_NETWORK_SECONDS + FAULT_TIMEOUT_SECONDS + 1 - time.monotonic()))


# ------------------------------------------------------------------ refused connections


class SwitchableProxy:
    """A TCP forwarder on a fixed loopback port that can be switched off: while off, nothing
    listens there (connections are refused) and every forwarded connection is cut."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port = free_port()
        self._listener = None
        self._conns = []
        self._lock = threading.Lock()

    def on(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self):
        listener, self._listener = self._listener, None
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def switchable(devstack):
    """A second Cognito emulator whose triggers reach Authsignal through a SwitchableProxy.
    Yields (proxy, that emulator's URL); the app under chalice.test is pointed at it."""
    proxy = SwitchableProxy(int(devstack.authsignal_url.rsplit(":", 1)[1]))
    proxy.on()
    command = [sys.executable, "-m", "devstack.cognito", "--port", "0", "--project-dir", ROOT, "--stage", "local",
               *[f"--env={k}={v}" for k, v in devstack.env.items() if k != "COGNITO_ENDPOINT_URL"],
               f"--env=AUTHSIGNAL_API_URL=http://127.0.0.1:{proxy.port}/v1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    ready, url = threading.Event(), []

    def relay():
        for line in process.stdout:
            EXTRA_LOG_LINES.append("[cognito-2] " + line)
            if line.startswith("READY "):
                url.append(line.split()[1])
                ready.set()
    threading.Thread(target=relay, daemon=True).start()
    assert ready.wait(60), "second Cognito emulator did not start:\n" + "".join(EXTRA_LOG_LINES[-20:])
    yield proxy, url[0]
    proxy.off()
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def via_switchable(client, switchable, monkeypatch):
    from chalicelib import settings

    proxy, url = switchable
    real_load = settings.load
    monkeypatch.setattr(settings, "load", lambda: real_load()._replace(cognito_endpoint_url=url))
    yield client, proxy
    if proxy._listener is None:
        proxy.on()


class InProcessResponse:
    """chalice.test's response, seen through the same helpers as a requests response."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)

    def json(self):
        return json.loads(self.text)


def post(client, path, body):
    return InProcessResponse(client.http.post(path, body=json.dumps(body), headers={"Content-Type": "application/json"}))


def in_process_sign_in(devstack, client, email):
    prover = User(devstack, email)
    started = post(client, "/auth/start", {"email": email})
    assert started.status_code == 200, started.text
    challenge = started.json()
    remember(challenge["session"], authsignal_token(challenge["challengeUrl"]))
    finished = post(client, "/auth/finish", {"email": email, "session": challenge["session"],
                                             "token": prover.prove(challenge["challengeUrl"])})
    assert finished.status_code == 200 and finished.json()["status"] == "SIGNED_IN", finished.text
    remember(finished.json()["idToken"], finished.json()["accessToken"])


def test_authsignal_refusing_connections_during_create(devstack, via_switchable, caplog):
    client, proxy = via_switchable
    email = f"refused-{uuid.uuid4().hex[:12]}@example.com"
    remember(email, kind="email")
    proxy.off()
    response, elapsed = _timed(lambda: post(client, "/auth/start", {"email": email}))
    assert_clear_failure(response, elapsed, 503)
    proxy.on()
    in_process_sign_in(devstack, client, email)
    assert email not in caplog.text


def test_authsignal_refusing_connections_during_verify(devstack, via_switchable, caplog):
    client, proxy = via_switchable
    email = f"refused-{uuid.uuid4().hex[:12]}@example.com"
    prover = User(devstack, email)
    challenge = post(client, "/auth/start", {"email": email}).json()
    remember(challenge["session"], authsignal_token(challenge["challengeUrl"]))
    token = prover.prove(challenge["challengeUrl"])
    proxy.off()
    response, elapsed = _timed(lambda: post(client, "/auth/finish", {"email": email, "session": challenge["session"],
                                                                   "token": token}))
    assert_clear_failure(response, elapsed, 503)
    proxy.on()
    in_process_sign_in(devstack, client, email)
    assert email not in caplog.text and token not in caplog.text


def test_cognito_refusing_connections(devstack, client, monkeypatch, caplog):
    from chalicelib import settings

    closed = free_port()  # bound, then closed: nothing listens there
    real_load = settings.load
    email = f"refused-{uuid.uuid4().hex[:12]}@example.com"
    remember(email, kind="email")
    with monkeypatch.context() as patch:
        patch.setattr(settings, "load", lambda: real_load()._replace(cognito_endpoint_url=f"http://127.0.0.1:{closed}"))
        response, elapsed = _timed(lambda: post(client, "/auth/start", {"email": email}))
    assert_clear_failure(response, elapsed, 503)
    in_process_sign_in(devstack, client, email)
    assert email not in caplog.text


# ------------------------------------------------------------------ what the tenant and Cognito really do
# Each ends in a clear message, a log line that says what to fix, and a next sign-in that works.


def tenant(devstack, body):
    response = requests.post(devstack.authsignal_url + "/_dev/tenant", json=body, timeout=5)
    response.raise_for_status()


def assert_not_configured(response):
    error = assert_error(response, 500, "not_configured")
    for leak in ("AUTHSIGNAL", "Exception", "http://", "portal", "secret"):
        assert leak not in error["message"], (leak, error)
    assert_not_signed_in(response)


@pytest.mark.parametrize("outcome", ["BLOCK", "REVIEW_REQUIRED"])
def test_a_blocked_user_gets_403_sign_in_blocked(devstack, user, outcome):
    since = len(devstack.log)
    tenant(devstack, {"rules": {user.email: outcome}})
    try:
        response = user.post("/auth/start", {"email": user.email})
    finally:
        tenant(devstack, {"rules": {user.email: None}})
    error = assert_error(response, 403, "blocked")
    assert error["message"].startswith("Sign-in blocked")
    assert_not_signed_in(response)
    assert "Sign-in blocked by an Authsignal rule" in new_log_lines(devstack, since)
    user.sign_in()


def test_allow_for_an_enrolled_user_is_a_logged_misconfiguration(devstack, user):
    user.sign_in()  # enrolled now
    since = len(devstack.log)
    tenant(devstack, {"rules": {user.email: "ALLOW"}})
    try:
        response = user.post("/auth/start", {"email": user.email})
    finally:
        tenant(devstack, {"rules": {user.email: None}})
    assert_not_configured(response)
    assert "default outcome CHALLENGE" in new_log_lines(devstack, since)
    user.sign_in()


def test_authsignal_401_is_a_misconfiguration_not_an_outage(devstack, user):
    since = len(devstack.log)
    devstack.fault("authsignal", "track", "401")
    assert_not_configured(user.post("/auth/start", {"email": user.email}))
    assert "check AUTHSIGNAL_SECRET_KEY" in new_log_lines(devstack, since)
    user.sign_in()


def test_a_challenge_url_on_a_foreign_origin_never_reaches_the_page(devstack, user):
    since = len(devstack.log)
    tenant(devstack, {"customDomain": devstack.authsignal_url.replace("127.0.0.1", "localhost")})
    try:
        response = user.post("/auth/start", {"email": user.email})
    finally:
        tenant(devstack, {"customDomain": None})
    assert_not_configured(response)
    assert "localhost" not in response.text
    assert "not in AUTHSIGNAL_UI_ORIGIN" in new_log_lines(devstack, since)
    user.sign_in()


def trigger_delay(devstack, trigger, seconds, count):
    response = requests.post(devstack.cognito_url + "/_dev/faults", timeout=5,
                             json={"trigger": trigger, "fault": "delay", "seconds": seconds, "count": count})
    response.raise_for_status()


def test_a_trigger_past_5_s_is_retried_and_the_retry_does_no_harm(devstack, user):
    """Create's first attempt takes 6 s (a slow cold start): Cognito gives up on it at 5 s
    and invokes Create again. The abandoned attempt still runs (a second track); the user
    gets the retry's challenge, one code, and signs in with it."""
    user.sign_in()
    before = devstack.stats("cognito")["invocations"].get("create_auth_challenge", 0)
    tracks = devstack.stats("authsignal")["calls"]["track"]
    trigger_delay(devstack, "CreateAuthChallenge", 6, 1)
    challenge = user.start()
    assert devstack.stats("cognito")["invocations"]["create_auth_challenge"] == before + 2
    time.sleep(1.5)  # the abandoned attempt wakes and tracks too
    assert devstack.stats("authsignal")["calls"]["track"] == tracks + 2
    mails = len(devstack.mailbox(user.email))
    token = user.prove(challenge["challengeUrl"])
    assert len(devstack.mailbox(user.email)) == mails + 1  # one code for this sign-in
    finished = user.finish(challenge["session"], token)
    assert finished.json()["status"] == "SIGNED_IN"


def test_a_hanging_trigger_is_a_503_with_a_log_line_and_the_next_sign_in_works(devstack, user):
    # Cognito's limit scaled down to 1 s, so that its three attempts end before the app's
    # own read timeout and the app sees Cognito's UnexpectedLambdaException.
    since = len(devstack.log)
    requests.post(devstack.cognito_url + "/_dev/settings", json={"triggerTimeoutSeconds": 1}, timeout=5).raise_for_status()
    try:
        trigger_delay(devstack, "CreateAuthChallenge", 1.5, 3)
        response, elapsed = _timed(lambda: user.post("/auth/start", {"email": user.email}))
    finally:
        requests.post(devstack.cognito_url + "/_dev/settings", json={"triggerTimeoutSeconds": 5}, timeout=5)
    assert_clear_failure(response, elapsed, 503)
    lines = new_log_lines(devstack, since)
    assert "attempt 3 of 3" in lines
    assert "A Cognito trigger did not answer in time" in lines and "CreateAuthChallenge" in lines
    user.sign_in()
