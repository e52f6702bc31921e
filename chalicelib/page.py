"""The sign-in page and its assets, read from `static/` next to app.py.

In the deployment zip, `static/` arrives through the `vendor/static` link.
"""
import os
import re
from functools import lru_cache

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
