"""Shared by the tests/test_security_*.py suites: a user's moves over real HTTP, the error
shape, and a registry of every secret the suites saw (tokens, OTP codes, sessions, refresh
cookies, email addresses), which test_security_logs.py then looks for in every log line."""
import logging
import threading
from urllib.parse import parse_qs, urlsplit

import requests

from chalicelib.http import REFRESH_COOKIE
from chalicelib.signin import jwt_claims as claims  # noqa: F401  (the suites import it from here)

TIMEOUT = 20

# ------------------------------------------------------------------ secrets seen

_seen = {"secret": set(), "code": set(), "email": set()}
_seen_lock = threading.Lock()


def remember(*values, kind="secret"):
    with _seen_lock:
        _seen[kind].update(v for v in values if isinstance(v, str) and v)


def seen(kind):
    with _seen_lock:
        return set(_seen[kind])


class _Records(logging.Handler):
    """Every log record of in-process code (the app under chalice.test, the triggers)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        try:
            line = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is still a line to check
            line = str(record.msg)
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {line}")


RECORDS = _Records()
# Output of extra emulator processes the suites start themselves (checked like the stack's).
EXTRA_LOG_LINES = []
APP_LOGGERS = ("chalicelib", "triggers", "app", "cognito-authsignal")


def capture_in_process_logs():
    """Idempotent: the root logger keeps one RECORDS handler; the app's loggers log at DEBUG."""
    root = logging.getLogger()
    if RECORDS not in root.handlers:
        root.addHandler(RECORDS)
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


# ------------------------------------------------------------------ shapes


def assert_error(response, status, code=None):
    """The API's error shape: {"error": {"code", "message"}}, a message, no trace."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_not_signed_in(response):
    """Whatever the status, no tokens and no refresh cookie came back."""
    text = response.text
    assert "idToken" not in text and "accessToken" not in text, text[:300]
    assert REFRESH_COOKIE + "=" not in response.headers.get("Set-Cookie", "").replace(
        REFRESH_COOKIE + "=;", ""), response.headers.get("Set-Cookie")


def assert_refused_with_new_challenge(response):
    """A wrong answer while attempts remain: 200 with a fresh CHALLENGE, nothing else."""
    assert_not_signed_in(response)
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["status"] == "CHALLENGE" and body["session"] and body["challengeUrl"], body
    remember(body["session"], authsignal_token(body["challengeUrl"]))
    return body


def authsignal_token(challenge_url):
    return parse_qs(urlsplit(challenge_url).query)["token"][0]


# ------------------------------------------------------------------ a user, over HTTP


class User:
    """One person using the app through the dev stack, as the page would (real HTTP)."""

    def __init__(self, stack, email, session=None):
        self.stack = stack
        self.email = email
        self.http = session or requests.Session()
        self.http.headers["Origin"] = stack.app_url  # what a browser on the page sends
        remember(email, kind="email")

    def post(self, path, body=None, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.post(self.stack.app_url + path, json={} if body is None else body, **kwargs)

    def start(self):
        response = self.post("/auth/start", {"email": self.email})
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        remember(body["session"], authsignal_token(body["challengeUrl"]))
        return body

    def prove(self, challenge_url, email=None):
        """Open the challenge page (it sends the code), read the mail, enter the code."""
        email = email or self.email
        page = requests.get(challenge_url, timeout=TIMEOUT)
        assert page.status_code == 200, page.text[:300]
        code = self.stack.mailbox(email)[-1]["code"]
        remember(code, kind="code")
        token = authsignal_token(challenge_url)
        answer = requests.post(self.stack.authsignal_url + "/challenge/verify",
                               json={"token": token, "code": code}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text[:300]
        remember(answer.json()["token"])
        return answer.json()["token"]

    def finish(self, session, token, email=None):
        return self.post("/auth/finish", {"email": email or self.email, "session": session, "token": token})

    def sign_in(self):
        challenge = self.start()
        finished = self.finish(challenge["session"], self.prove(challenge["challengeUrl"]))
        assert finished.status_code == 200, finished.text[:300]
        body = finished.json()
        assert body["status"] == "SIGNED_IN", body
        cookie = refresh_cookie_value(finished)
        remember(body["idToken"], body["accessToken"], cookie, cookie.partition(":")[2])
        return body, cookie

    def me(self, access_token, check="cognito"):
        """/api/me; by default with Cognito's own check (GetUser), which answers the email and
        sees a sign-out at once; check=None: the authorizer's local verification alone."""
        return self.http.get(self.stack.app_url + "/api/me" + (f"?check={check}" if check else ""),
                             timeout=TIMEOUT, headers={"Authorization": "Bearer " + access_token})

    def with_cookie(self, path, cookie, **kwargs):
        # requests keeps Secure cookies for https only; send it as a browser on loopback does.
        return self.post(path, {}, headers={"Cookie": f"{REFRESH_COOKIE}={cookie}"}, **kwargs)


def refresh_cookie_value(response):
    header = response.headers.get("Set-Cookie", "")
    first = header.split(";")[0]
    name, _, value = first.partition("=")
    assert name == REFRESH_COOKIE and value, header
    return value


def store_proxy():
    """A DynamoDB endpoint between the app and the real one (set `target`), which fails on
    demand: `throttles` calls answered ThrottlingException, or every call while `mode` is
    "throttle"; while "down" each connection drops unanswered. Each call gets its own class,
    so suites never share its state. `seen`: (Content-Type, X-Amz-Target) of every call."""
    import http.server
    import json
    import urllib.error
    import urllib.request

    throttled = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                            "message": "Rate of requests exceeds the allowed throughput."}).encode()

    class StoreProxy(http.server.BaseHTTPRequestHandler):
        target, mode, throttles, seen = None, "forward", 0, []

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            proxy = type(self)
            proxy.seen.append((self.headers["Content-Type"], self.headers["X-Amz-Target"]))
            if proxy.mode == "down":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if proxy.mode == "throttle" or proxy.throttles > 0:
                proxy.throttles = max(proxy.throttles - 1, 0)
                self._answer(400, throttled)
                return
            request = urllib.request.Request(proxy.target, data=body, headers=dict(self.headers), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    self._answer(answer.status, answer.read())
            except urllib.error.HTTPError as error:
                self._answer(error.code, error.read())

        def _answer(self, status, data):
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return StoreProxy
