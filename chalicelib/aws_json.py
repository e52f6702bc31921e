"""AWS JSON 1.1 (and 1.0, DynamoDB's) over the standard library: one POST per attempt, SigV4 where AWS needs it.

Why not boto3: creating a client loads botocore's service model and endpoint data, about
ten times the CPU of `import chalice`, inside every cold start a person waits on (see
docs/design.md, "Cold starts"). The wire protocol is small: `POST /` with
`X-Amz-Target: <prefix>.<Operation>`, a JSON body, and errors as
`{"__type": ..., "message": ...}`. Behaviour matches the boto3 client it replaces (botocore
1.44, standard retry mode): errors parsed as botocore parses them, each socket operation under
a connect or read timeout, retries as botocore makes them but inside the caller's budget
(chalicelib.aws_retry), credentials and endpoints found as botocore finds them
(chalicelib.aws_credentials, chalicelib.aws_endpoints), one kept-alive connection per host and
thread (chalicelib.outbound).
"""
import json

from chalicelib import outbound

CONTENT_TYPE = "application/x-amz-json-1.1"
# DynamoDB speaks JSON 1.0: the same wire format under another content type.
CONTENT_TYPE_1_0 = "application/x-amz-json-1.0"


class AwsError(Exception):
    """The service answered with an error; `code` is its exception name (botocore's Error.Code)."""

    def __init__(self, code, message, status=400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class AwsUnavailable(Exception):
    """No answer: refused, reset or timed out."""


class AwsNoCredentials(AwsUnavailable):
    """No credentials to sign with (nothing was sent); the message says what to do."""


def endpoint(service, region):
    """The service's endpoint as botocore resolves it (environment, FIPS, partition)."""
    from chalicelib import aws_endpoints

    return aws_endpoints.endpoint(service, region)


def call(url, target, params, connect_timeout, read_timeout, sign=None, safe=False, content_type=CONTENT_TYPE,
         credentials=None, **effects):
    """POST one operation, retried as botocore's standard mode would; returns the parsed JSON answer.

    `target` is the whole X-Amz-Target value; `sign` is `(region, service)` for an
    operation that needs SigV4. `safe` says whether the operation may be repeated after AWS
    may have acted on it (see docs/design.md, "AWS calls"); if not, only a throttle or a
    connection that never opened is retried. Raises AwsError for an error answer,
    AwsUnavailable when there is none, AwsNoCredentials when it cannot sign. `content_type` is
    CONTENT_TYPE_1_0 for a JSON 1.0 service (DynamoDB). `credentials` replace the chain's (the
    dev stack's emulators accept any key, and a real one never needs to reach them). Inside a budget
    (chalicelib.budget) the timeouts, the retries and their backoff all fit in what is left.
    `effects` (sleep, random, left, quota) are for tests."""
    from urllib.parse import urlsplit

    from chalicelib import aws_retry

    body = json.dumps(params).encode()
    headers = {"Host": urlsplit(url).netloc, "Content-Type": content_type, "X-Amz-Target": target}
    if sign and credentials is None:
        from chalicelib import aws_credentials

        try:
            credentials = aws_credentials.current()
        except aws_credentials.NoCredentials as error:
            raise AwsNoCredentials(str(error)) from None

    def attempt():
        signed = {**headers, **sigv4_headers(body, headers, *sign, credentials=credentials)} if sign else headers
        try:
            status, answer_headers, data = outbound.post(url, signed, body, connect_timeout, read_timeout)
        except outbound.Unavailable as error:
            raise aws_retry.Failure(AwsUnavailable(str(error)), unavailable=True, sent=error.sent) from None
        if status >= 300:
            error = _error(status, data)
            raise aws_retry.Failure(error, code=error.code, status=status,
                                    retry_after_ms=answer_headers.get("x-amz-retry-after"))
        return data

    data, _ = aws_retry.run(attempt, safe, **effects)
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
        return AwsError(str(status), http.client.responses.get(status, ""), status)
    body = _json(data)
    body = body if isinstance(body, dict) else {"message": body} if isinstance(body, str) else {}
    code = str(body.get("__type") or status)
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]  # "com.amazonaws...#NameException:..."
    return AwsError(code, body.get("message", body.get("Message", "")), status)


def sigv4_headers(body, headers, region, service, now=None, credentials=None):
    """Signature Version 4 headers for a POST to `/` (tests check it against botocore's signer).
    `credentials` default to chalicelib.aws_credentials.current()."""
    import datetime
    import hashlib
    import hmac

    if credentials is None:
        from chalicelib import aws_credentials

        credentials = aws_credentials.current()
    access_key, secret_key, token = credentials
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
