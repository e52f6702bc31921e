"""AWS JSON 1.1 over the standard library: one POST per call, SigV4 where AWS needs it.

Why not boto3: creating a client loads botocore's service model and endpoint data, about
ten times the CPU of `import chalice`, inside every cold start a person waits on (see
docs/design.md, "Cold starts"). The wire protocol is small: `POST /` with
`X-Amz-Target: <prefix>.<Operation>`, a JSON body, and errors as
`{"__type": ..., "message": ...}`. Behaviour matches the boto3 client it replaces (botocore
1.44, retries off): errors parsed as botocore parses them, each socket operation under a
connect or read timeout, no retries, one kept-alive connection per host and thread
(chalicelib.outbound).
"""
import json
import os

from chalicelib import outbound

CONTENT_TYPE = "application/x-amz-json-1.1"


class AwsError(Exception):
    """The service answered with an error; `code` is its exception name (botocore's Error.Code)."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AwsUnavailable(Exception):
    """No answer: refused, reset, timed out, or no credentials to sign with."""


def endpoint(service, region):
    """The service's regional HTTPS endpoint (what botocore resolves for these services)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region}.{suffix}"


def call(url, target, params, connect_timeout, read_timeout, sign=None):
    """POST one operation; returns the parsed JSON answer.

    `target` is the whole X-Amz-Target value; `sign` is `(region, service)` for an
    operation that needs SigV4, with credentials from the environment (as Lambda sets them).
    Raises AwsError for an error answer, AwsUnavailable when there is none. Inside a
    trigger the timeouts are also cut to what is left of its network budget."""
    from urllib.parse import urlsplit

    body = json.dumps(params).encode()
    headers = {"Host": urlsplit(url).netloc, "Content-Type": CONTENT_TYPE, "X-Amz-Target": target}
    if sign:
        headers.update(sigv4_headers(body, headers, *sign))
    try:
        status, _, data = outbound.post(url, headers, body, connect_timeout, read_timeout)
    except outbound.Unavailable as error:
        raise AwsUnavailable(str(error)) from None
    if status >= 300:
        raise _error(status, data)
    parsed = _json(data)
    return parsed if isinstance(parsed, dict) else {}  # botocore keeps only the output shape's members


def _json(data):
    """botocore's reading: empty is {}, text that is not JSON is kept as text."""
    if not data:
        return {}
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error(status, data):
    """An error answer as botocore parses it (`BaseJSONParser._do_error_parse`)."""
    import http.client

    stripped = data.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        return AwsError(str(status), http.client.responses.get(status, ""))
    body = _json(data)
    body = body if isinstance(body, dict) else {"message": body} if isinstance(body, str) else {}
    code = str(body.get("__type") or status)
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]  # "com.amazonaws...#NameException:..."
    return AwsError(code, body.get("message", body.get("Message", "")))


def sigv4_headers(body, headers, region, service, now=None):
    """Signature Version 4 headers for a POST to `/` (tests check it against botocore's signer)."""
    import datetime
    import hashlib
    import hmac

    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (access_key and secret_key):
        raise AwsUnavailable("NoCredentialsError")
    token = os.environ.get("AWS_SESSION_TOKEN")
    amz_date = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    added = {"X-Amz-Date": amz_date, **({"X-Amz-Security-Token": token} if token else {})}
    signed = {name.lower(): " ".join(str(value).split()) for name, value in {**headers, **added}.items()}
    names = ";".join(sorted(signed))
    canonical = "\n".join(["POST", "/", "", *(f"{n}:{signed[n]}" for n in sorted(signed)), "", names,
                           hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                              f"SignedHeaders={names}, Signature={signature}")
    return added
