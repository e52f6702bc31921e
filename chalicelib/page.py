"""The sign-in page and its assets, read from `static/` next to app.py; outside Lambda,
a page that says what keeps sign-in from working on this machine.

In the deployment zip, `static/` arrives through the `vendor/static` link.
"""
import os
import re
from functools import lru_cache
from urllib.parse import urlsplit

from chalicelib import settings

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
# The Web SDK is pinned: the URL names this version and the browser checks this hash.
WEB_SDK_VERSION = "1.16.0"
WEB_SDK_INTEGRITY = "sha384-VtCaiKZMKGBN/ySL73iQpmipquK15DjtbpG38MMyjYDrzROj2LJAjlrHKUx3d7DY"

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+")
RUN_DEV_STACK = ("run `make dev` (it starts the Authsignal and Cognito emulators and this app with the "
                 "local stage) and open the address it prints.")
# Loopback answers or refuses at once; this only bounds a firewall that drops instead.
PROBE_TIMEOUT_SECONDS = 0.5
PROBLEM_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@lru_cache(maxsize=None)
def _read(name):
    with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as handle:
        return handle.read()


def index(sdk_url):
    return (
        _read("index.html")
        .replace("{{WEB_SDK_URL}}", sdk_url)
        .replace("{{WEB_SDK_INTEGRITY}}", WEB_SDK_INTEGRITY)
    )


def asset(name):
    """(text, content type) of a page asset, or None when there is no such asset."""
    content_type = CONTENT_TYPES.get(os.path.splitext(name)[1].lower())
    if not ASSET_NAME.fullmatch(name) or content_type is None or name == "index.html":
        return None
    try:
        return _read(name), content_type
    except (FileNotFoundError, IsADirectoryError):
        return None


def _answers(url):
    import socket  # only outside Lambda, to probe the dev stack: the cold start never pays for it

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def local_problem():
    """Outside Lambda (`chalice local`, the test client) only: why sign-in cannot work on this
    machine, in a sentence for the developer, or None. Plain `chalice local` runs the dev stage,
    which lacks settings, and the local stage needs the emulators of `make dev` running."""
    if settings.running_in_lambda():
        return None  # a deployed stage's detail is for its log only (app.get_config)
    try:
        config = settings.load()
    except settings.SettingsError as error:
        # Setting names and non-secret values only: load() never reads the secrets.
        return f"{error} To try the page offline instead, {RUN_DEV_STACK}"
    endpoints = {"AUTHSIGNAL_API_URL": config.authsignal_api_url, "COGNITO_ENDPOINT_URL": config.cognito_endpoint_url}
    for name, url in endpoints.items():
        if url and settings.is_loopback(url) and not _answers(url):
            return f"The offline dev stack is not running: nothing answers at {url} ({name}). To start it, {RUN_DEV_STACK}"
    return None


def problem(text):
    """A plain page that says what `local_problem` found (styled by app.css, no script)."""
    import html  # with its entity table: only this page needs it, never a Lambda's cold start

    return (
        '<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "  <title>Sign-in is not running here</title>\n"
        '  <link rel="stylesheet" href="static/app.css">\n</head>\n<body>\n'
        '  <main class="page"><section class="card">\n'
        "    <h1>Sign-in is not running here</h1>\n"
        f'    <p class="notice">{html.escape(text)}</p>\n'
        "  </section></main>\n</body>\n</html>\n"
    )
