"""HTTP requests on the standard library, for the gateways (Cognito, SSM, Authsignal).

One kept-alive connection per host and thread; a connect and a read timeout per call, cut to
the trigger's or request's network budget (chalicelib.budget). No retries here: the AWS client
retries as botocore does (chalicelib.aws_retry); Authsignal's calls are not retried.
"""
import http.client
import threading
import time
from urllib.parse import urlsplit

from chalicelib import budget


class Unavailable(Exception):
    """No answer: refused, reset or timed out. `sent` is False when no connection was made,
    so the server cannot have seen the request (what makes any call safe to retry)."""

    def __init__(self, reason, sent=True):
        super().__init__(reason)
        self.sent = sent


_local = threading.local()


def _connection(scheme, host, connect_timeout):
    """This thread's open connection to `host`, or a new one. A kept-alive connection the
    server has closed in the meantime reads as ready (EOF): drop it, as urllib3 does."""
    pool = _local.__dict__.setdefault("connections", {})
    conn = pool.get((scheme, host))
    if conn is not None and conn.sock is not None:
        import select

        if select.select([conn.sock], [], [], 0)[0]:
            conn.close()
    if conn is None:
        factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = pool[(scheme, host)] = factory(host, timeout=connect_timeout)
    return conn


def post(url, headers, body, connect_timeout, read_timeout, method="POST"):
    """Send `body` (bytes, or None for a GET) to `url`; returns (status, response headers, response body)."""
    connect_timeout, read_timeout = budget.timeouts(connect_timeout, read_timeout)
    parts = urlsplit(url)
    began = time.monotonic()
    try:
        return _send(parts, method, headers, body, connect_timeout, read_timeout)
    finally:
        budget.took(parts.netloc, time.monotonic() - began)


def _send(parts, method, headers, body, connect_timeout, read_timeout):
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _connection(parts.scheme, parts.netloc, connect_timeout)
    if conn.sock is None:
        try:
            conn.timeout = connect_timeout  # TCP connect and TLS handshake
            conn.connect()
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise Unavailable(type(error).__name__, sent=False) from None
    try:
        conn.sock.settimeout(read_timeout)
        conn.request(method, path, body, {"Host": parts.netloc, **headers})
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:  # socket timeouts are OSErrors
        conn.close()
        raise Unavailable(type(error).__name__) from None
    return response.status, response.headers, data
