"""HTTP layer of the Authsignal emulator: routing, auth, headers, request log."""

from __future__ import annotations

import base64
import hmac
import html
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from . import client_api
from .mailbox import Mailbox
from .methods.passkey import Passkeys
from .prebuilt_ui import ALL_METHODS, PrebuiltUi, View
from .state import ApiError, ChallengeError, Store
from .tenant import Tenant
from .tokens import TokenSigner

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
FAULT_TIMEOUT_SECONDS = 10.0
UNAUTHORIZED = ApiError(
    401,
    "unauthorized",
    "The request is unauthorized. Check that your API key and region base URL are correctly configured.",
)
CHALLENGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    # The app embeds this page in the Web SDK's popup iframe from another loopback port.
    "frame-ancestors http://127.0.0.1:* http://localhost:*"
)
SDK_PREFIX = "/sdk/@authsignal/browser@"
SDK_SUFFIX = "/dist/index.min.js"

# What the challenge page says for each state the server can find the action in.
PAGE_TEXT = {
    "ready": ("Check your email", None),
    "succeeded": ("Already verified", "This sign-in is already verified. You can close this window."),
    "failed": ("Too many wrong codes", "Too many wrong codes. Close this window and sign in again."),
    "blocked": ("Sign-in blocked", "This sign-in was blocked. Close this window."),
    "no_email": ("No email address", "There is no email address to send a code to."),
    "expired": ("Link expired", "This sign-in link has expired. Close this window and sign in again."),
    "invalid": ("Link not valid", "This sign-in link is not valid. Close this window and sign in again."),
}


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # 50 browsers signing in at once must not overflow the listen backlog.
    request_queue_size = 256

    def __init__(self, address, store_factory: Callable[[str], Store], secret_key: str,
                 project_dir: Path, log: Callable[[str], None], mailbox: Mailbox,
                 methods: tuple[str, ...] = ALL_METHODS, rp_id: str = "localhost",
                 json_content_type: str = "application/json"):
        super().__init__(address, Handler)
        self.json_content_type = json_content_type
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        self.base_url = f"http://{host}:{port}"
        self.store = store_factory(self.base_url)
        self.mailbox = mailbox
        self.passkeys = Passkeys(rp_id=rp_id)
        self.ui = PrebuiltUi(self.store, mailbox, methods, passkeys=self.passkeys)
        self.secret_key = secret_key
        self.project_dir = project_dir
        self.log = log
        self.stopping = threading.Event()
        self._template = (STATIC_DIR / "challenge.html").read_text(encoding="utf-8")

    def render_link(self, opened: bool) -> bytes:
        return _link_page(opened)

    def render_challenge(self, view: View) -> bytes:
        state = view.state
        heading, message = PAGE_TEXT[state]
        code_box = state == "ready" and view.page.get("first") == "EMAIL_OTP"
        if state == "ready" and not code_box:
            heading = "Choose how to verify"
        intro = f"We sent a code to {view.masked_email}." if code_box else ""
        values = {
            "state": state,
            "view": json.dumps(view.page),
            "heading": heading,
            "intro": intro,
            "intro_hidden": "" if intro else "hidden",
            "form_hidden": "" if code_box else "hidden",
            "close_hidden": "" if state in ("failed", "succeeded") else "hidden",
            # Cancel hands back no token; Close (above) hands back the one that ended.
            "cancel_hidden": "hidden" if state in ("failed", "succeeded") else "",
            # As the script will show it: a layout shift after load moves the dialog under a click.
            "others_hidden": "" if code_box and len(view.page.get("methods", [])) > 1 else "hidden",
            "status": message or "",
        }
        page = self._template
        for key, value in values.items():
            page = page.replace("{{" + key + "}}", html.escape(value))
        return page.encode("utf-8")


LINK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>{title} – Authsignal (dev stack)</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/challenge.css"></head>
<body><main class="card"><h1>{title}</h1><p class="status" data-kind="{kind}">{text}</p>
<p class="footnote">Offline dev stack: this link came from the emulator's dev mailbox.</p></main></body></html>
"""


def _link_page(opened: bool) -> bytes:
    if opened:
        title, kind, text = ("Verified", "ok", "You are verified. Go back to the tab where you were signing in: "
                             "it continues on its own. You can close this tab.")
    else:
        title, kind, text = ("Link not valid", "error", "This sign-in link has expired or was already used. "
                             "Go back and ask for a new one.")
    return LINK_PAGE.format(title=title, kind=kind, text=text).encode("utf-8")


def make_server(host: str, port: int, secret_key: str, tenant_id: str, project_dir: Path,
                token_ttl: int = 600, log: Callable[[str], None] | None = None,
                mail_sink: Callable[[dict], None] | None = None,
                tenant: Tenant | None = None, methods: tuple[str, ...] = ALL_METHODS,
                rp_id: str = "localhost", json_content_type: str = "application/json") -> EmulatorServer:
    # One write per line: print() writes the text and the newline separately, and another
    # thread's line (the mailbox, on stdout into the same pipe) could land in between.
    log = log or (lambda line: (sys.stderr.write(line + "\n"), sys.stderr.flush()))
    signer = TokenSigner(ttl_seconds=token_ttl)

    def store_factory(base_url: str) -> Store:
        return Store(signer, base_url, tenant_id=tenant_id, tenant=tenant, methods=methods)

    return EmulatorServer((host, port), store_factory, secret_key, project_dir, log,
                          mailbox=Mailbox(mail_sink), methods=methods, rp_id=rp_id,
                          json_content_type=json_content_type)


class Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms a call on Linux loopback).
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "devstack-authsignal"

    # ---- plumbing ------------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        # Replaced by one line per request in _send, which never shows a query string.
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        path = urlsplit(self.path).path
        self.server.log(f"[authsignal] {self.command} {path} {status}")

    def _json(self, status: int, payload: object, headers: dict | None = None) -> None:
        # "application/json" exactly by default (the Python SDK ignores the body
        # otherwise); --json-content-type sends another JSON type from the server API.
        kind = self.server.json_content_type if urlsplit(self.path).path.startswith("/v1/") else "application/json"
        self._send(status, json.dumps(payload).encode("utf-8"), kind, headers)

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest(400, "Content-Length is not a number.") from None
        if length < 0:
            raise BadRequest(400, "Content-Length is not valid.")
        if length > MAX_BODY:
            raise BadRequest(413, "The request body is too large.")
        return self.rfile.read(length) if length else b""

    def _read_json(self, empty: object = None) -> object:
        raw = self._read_body()
        if not raw.strip():
            return empty
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(400, "The request body is not valid JSON.") from None

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, _password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), self.server.secret_key.encode())

    # ---- dispatch ------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query)
        try:
            if path.startswith(client_api.PREFIX):
                self._client_api(method, path, query)
            elif path.startswith("/v1/"):
                self._api(method, path)
            elif path.startswith("/_dev/"):
                self._dev(method, path, query)
            elif path in ("/challenge", "/challenge.js", "/challenge.css") or path.startswith("/challenge/"):
                self._challenge(method, path, query)
            elif path.startswith(SDK_PREFIX):
                self._sdk(method, path)
            else:
                self._read_body()
                self._json(404, {"error": "Not found."})
        except BadRequest as exc:
            if exc.status == 413:
                self.close_connection = True  # the unread body would desync keep-alive
            if path.startswith("/v1/"):
                self._json(exc.status, ApiError(exc.status, "invalid_request", exc.message).body())
            else:
                self._json(exc.status, {"error": exc.message})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. the SDK's own timeout)

    # ---- server API (/v1) ----------------------------------------------------

    def _api(self, method: str, path: str) -> None:
        if not self._authorized():
            self._read_body()  # drain, so keep-alive stays in step
            self._json(401, UNAUTHORIZED.body())
            return
        parts = [unquote(p) for p in path[len("/v1/"):].split("/")]
        store = self.server.store
        if method == "POST" and parts == ["validate"]:
            operation, run = "validate", lambda body: store.validate(body)
        elif method == "POST" and len(parts) == 4 and parts[0] == "users" and parts[2] == "actions":
            operation, run = "track", lambda body: store.track(parts[1], parts[3], body)
        elif method == "GET" and len(parts) == 5 and parts[0] == "users" and parts[2] == "actions":
            operation, run = "get_action", lambda body: store.get_action(parts[1], parts[3], parts[4])
        elif method == "POST" and len(parts) == 3 and parts[0] == "users" and parts[2] == "authenticators":
            operation, run = "enroll_authenticator", lambda body: store.enroll_authenticator(parts[1], body)
        elif method == "GET" and len(parts) == 3 and parts[0] == "users" and parts[2] == "authenticators":
            operation, run = "get_authenticators", lambda body: store.get_authenticators(parts[1])
        else:
            self._read_body()
            self._json(404, ApiError(404, "not_found", "No such route.").body())
            return
        body = self._read_json(empty={})
        store.count(operation)
        started = time.monotonic()
        try:
            self._api_answer(store, operation, run, body)
        finally:
            store.add_time(operation, time.monotonic() - started)

    def _api_answer(self, store, operation: str, run, body) -> None:
        fault = store.take_fault(operation)
        if fault == "500":
            self._json(500, ApiError(500, "internal_error", "Injected fault: internal error.").body())
            return
        if fault == "401":  # as a wrong key or region would
            self._json(401, UNAUTHORIZED.body())
            return
        if fault == "garbage":
            self._send(200, b"<html><body>upstream garbage</body></html>", "text/html")
            return
        if fault == "timeout":
            # Sleep past any sane client timeout, then answer normally.
            self.server.stopping.wait(FAULT_TIMEOUT_SECONDS)
        try:
            self._json(200, run(body))
        except ApiError as exc:
            self._json(exc.status, exc.body())

    # ---- client API (/v1/client, called by the Web SDK from the browser) ------

    def _client_api(self, method: str, path: str, query: dict) -> None:
        raw = self._read_body()
        self.server.store.count("client_api")
        status, payload, headers = client_api.handle(
            self.server.store, self.server.ui, method, path, query, self.headers, raw)
        if payload is None:
            self._send(status, b"", "text/plain", headers)
        else:
            self._json(status, payload, headers)

    # ---- dev endpoints -------------------------------------------------------

    def _dev(self, method: str, path: str, query: dict) -> None:
        store = self.server.store
        if method == "GET" and path == "/_dev/health":
            self._json(200, {"ok": True})
        elif method == "GET" and path == "/_dev/stats":
            self._json(200, store.stats())
        elif method == "GET" and path == "/_dev/mailbox":
            email = (query.get("email") or [""])[0].strip()
            phone = (query.get("phone") or [""])[0].strip()
            if email:
                self._json(200, self.server.mailbox.for_email(email))
            elif phone:
                self._json(200, self.server.mailbox.for_phone(phone))
            else:
                raise BadRequest(400, "Give the email or the phone query parameter (E.164, e.g. %2B15550102030).")
        elif method == "POST" and path == "/_dev/reset":
            body = self._read_json(empty={})
            if not isinstance(body, dict):
                raise BadRequest(400, "The request body must be a JSON object.")
            store.reset(clear_state=body.get("state") is True)
            if body.get("state") is True:
                self.server.mailbox.clear()
                self.server.ui.reset()
                self.server.passkeys.reset()
            self._json(200, {"reset": True, "state": body.get("state") is True})
        elif method == "GET" and path == "/_dev/tenant":
            self._json(200, store.tenant.describe())
        elif method == "POST" and path == "/_dev/tenant":
            try:
                self._json(200, store.tenant.configure(self._read_json(empty={})))
            except ValueError as exc:
                raise BadRequest(400, str(exc)) from None
        elif method == "POST" and path == "/_dev/faults":
            body = self._read_json(empty={})
            if not isinstance(body, dict):
                raise BadRequest(400, "The request body must be a JSON object.")
            try:
                armed = store.set_fault(body.get("operation"), body.get("fault"), body.get("count", 1))
            except ValueError as exc:
                raise BadRequest(400, str(exc)) from None
            self._json(200, armed)
        else:
            self._read_body()
            self._json(404, {"error": "Not found."})

    # ---- pre-built UI --------------------------------------------------------

    # The page's calls: path -> (counter, what to run with the JSON body and the Origin).
    CHALLENGE_CALLS = {
        "/challenge/verify": ("challenge_verify", lambda ui, b, o: ui.email_verify(b.get("token"), b.get("code"))),
        "/challenge/resend": ("challenge_resend", lambda ui, b, o: ui.email_send(b.get("token"))),
        "/challenge/status": ("challenge_status", lambda ui, b, o: ui.status(b.get("token"))),
        "/challenge/magic-link": ("challenge_magic_link", lambda ui, b, o: ui.link_send(b.get("token"))),
        "/challenge/sms/send": ("challenge_sms_send", lambda ui, b, o: ui.sms_send(b.get("token"), b.get("phone"))),
        "/challenge/sms/verify": ("challenge_sms_verify", lambda ui, b, o: ui.sms_verify(b.get("token"), b.get("code"))),
        "/challenge/totp/setup": ("challenge_totp_setup", lambda ui, b, o: ui.totp_setup(b.get("token"))),
        "/challenge/totp/verify": ("challenge_totp_verify",
                                   lambda ui, b, o: ui.totp_verify(b.get("token"), b.get("code"))),
        "/challenge/passkey/options": ("challenge_passkey_options",
                                       lambda ui, b, o: ui.passkey_options(b.get("token"), o)),
        "/challenge/passkey/verify": ("challenge_passkey_verify", lambda ui, b, o: ui.passkey_verify(
            b.get("token"), b.get("challengeId"), b.get("credential"), o)),
        "/challenge/passkey/setup": ("challenge_passkey_setup", lambda ui, b, o: ui.passkey_setup(b.get("token"), o)),
        "/challenge/passkey/register": ("challenge_passkey_register", lambda ui, b, o: ui.passkey_register(
            b.get("token"), b.get("challengeId"), b.get("credential"), o)),
    }
    PAGE_HEADERS = {
        "Content-Security-Policy": CHALLENGE_CSP,
        # The token (or the link's secret) is in this page's URL: never leak it in a Referer.
        "Referrer-Policy": "no-referrer",
    }

    def _challenge(self, method: str, path: str, query: dict) -> None:
        store, ui = self.server.store, self.server.ui
        if method == "GET" and path in ("/challenge.js", "/challenge.css"):
            kind = "text/javascript; charset=utf-8" if path.endswith(".js") else "text/css; charset=utf-8"
            self._send(200, (STATIC_DIR / path.lstrip("/")).read_bytes(), kind)
        elif method == "GET" and path == "/challenge":
            store.count("challenge_page")
            # Where the page is served decides whether passkeys can work in it.
            view = ui.open((query.get("token") or [""])[0], origin=f"http://{self.headers.get('Host', '')}")
            status = 400 if view.state in ("expired", "invalid") else 200
            self._send(status, self.server.render_challenge(view), "text/html; charset=utf-8", self.PAGE_HEADERS)
        elif method == "GET" and path == "/challenge/link":
            # The magic link, opened from the mail in any tab: it completes the action.
            store.count("challenge_link")
            opened = ui.link_open((query.get("secret") or [""])[0])
            self._send(200 if opened else 400, self.server.render_link(opened), "text/html; charset=utf-8",
                       self.PAGE_HEADERS)
        elif method == "POST" and path in self.CHALLENGE_CALLS:
            # JSON only: a cross-site HTML form cannot send it, so no CSRF by form post.
            if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
                self._read_body()
                raise BadRequest(415, "Send the request as application/json.")
            body = self._read_json(empty={})
            if not isinstance(body, dict):
                raise BadRequest(400, "The request body must be a JSON object.")
            counter, run = self.CHALLENGE_CALLS[path]
            store.count(counter)
            try:
                result = run(ui, body, self.headers.get("Origin"))
            except ChallengeError as exc:
                self._json(exc.status, exc.body())
                return
            self._json(200, result)
        else:
            self._read_body()
            self._json(404, {"error": "Not found."})

    # ---- the pinned Web SDK --------------------------------------------------

    def _sdk(self, method: str, path: str) -> None:
        version = path[len(SDK_PREFIX):-len(SDK_SUFFIX)] if path.endswith(SDK_SUFFIX) else None
        package = self.server.project_dir / "node_modules" / "@authsignal" / "browser"
        try:
            installed = json.loads((package / "package.json").read_text(encoding="utf-8")).get("version")
            script = (package / "dist" / "index.min.js").read_bytes() if version == installed else None
        except (OSError, ValueError):
            script = None
        if method != "GET" or script is None:
            self._read_body()
            self._json(404, {"error": "Not found: this emulator serves only the installed @authsignal/browser version."})
            return
        self._send(
            200,
            script,
            "application/javascript",
            {
                # Loaded cross-origin with SRI and crossorigin="anonymous".
                "Access-Control-Allow-Origin": "*",
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )


def serve(server: EmulatorServer) -> None:
    """Serve until interrupted; wake any fault-sleeping threads on the way out."""
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.stopping.set()
        server.server_close()

