"""HTTP helpers: the error shape, JSON bodies, the refresh cookie, security headers."""
import ipaddress
import json
import logging
from urllib.parse import urlsplit

from chalice import Response
from chalice.app import ChaliceUnhandledError

MAX_BODY_BYTES = 16 * 1024
REFRESH_COOKIE = "cas_refresh"
REFRESH_COOKIE_MAX_AGE = 30 * 24 * 3600  # Cognito's default refresh token validity
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SIGN_IN_AGAIN = "Your session has ended. Sign in again."

log = logging.getLogger(__name__)

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class ApiError(ChaliceUnhandledError):
    """An answer for the client; Chalice lets this through to the middleware."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


# A misconfiguration (missing setting, Authsignal 4xx, a UI origin the page may not frame)
# is the operator's to fix: the caller gets this calm text, the detail goes to the log only.
NOT_CONFIGURED = "Sign-in is not set up correctly on this site yet. We have logged the problem; try again later."


def misconfigured():
    return ApiError(500, "not_configured", NOT_CONFIGURED)


def error_response(status, code, message, headers=None):
    return Response(
        body={"error": {"code": code, "message": message}},
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


# Chalice answers some requests itself ({"Code", "Message"}); give them our shape.
_CHALICE_ERRORS = {
    415: ("unsupported_media_type", "Send the request body as application/json."),
    405: ("method_not_allowed", "This route does not accept that method."),
    404: ("not_found", "There is nothing at this address."),
    400: ("bad_request", "The request could not be read."),
    500: ("internal_error", "Something went wrong on our side. Try again."),
}


def normalize(response):
    body = response.body
    if isinstance(body, dict) and "Code" in body and "error" not in body:
        code, message = _CHALICE_ERRORS.get(
            response.status_code, ("error", "The request failed.")
        )
        return error_response(response.status_code, code, message)
    return response


def guard_request(request):
    """Refuse what no state-changing route may accept, before any view runs."""
    if request.method in SAFE_METHODS:
        return
    body = request.raw_body or b""
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"The request body must be at most {MAX_BODY_BYTES} bytes.")
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request.headers.get("host"),
                                              request.headers.get("x-forwarded-proto")):
        raise ApiError(403, "foreign_origin", "Requests from other sites are not accepted.")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the request body as application/json.")


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_tuple(scheme, netloc):
    """(scheme, host, port) with the scheme's default port filled in; None if unreadable."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS[scheme]
    except (ValueError, KeyError):
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return scheme, parts.hostname.lower(), port


def same_origin(origin, host, forwarded_proto=None):
    """Scheme, host and port of `Origin` against this request's own. Behind API Gateway
    the request arrives over https and `X-Forwarded-Proto` says so; `chalice local` is http."""
    if not host:
        return False
    scheme = (forwarded_proto or "http").split(",")[0].strip().lower()
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or parts.path or parts.query or parts.fragment:
        return False
    theirs = _origin_tuple(parts.scheme, parts.netloc)
    return theirs is not None and theirs == _origin_tuple(scheme, host)


def require_own_origin(request):
    """For a route that must come from our own page's script: an `Origin` header is required
    (browsers send it with every POST from a script); a foreign one never gets here (guard_request)."""
    origin = request.headers.get("origin")
    if origin is None or not same_origin(origin, request.headers.get("host"), request.headers.get("x-forwarded-proto")):
        raise ApiError(403, "origin_required", "This request must come from this site's sign-in page.")


def json_object(request):
    """The request's JSON object (an empty body counts as an empty object)."""
    raw = request.raw_body or b""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def string_field(body, name, max_length):
    value = body.get(name)
    if value is None or value == "":
        raise ApiError(400, "missing_field", f"The field '{name}' is required.")
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"The field '{name}' must be a string.")
    if len(value) > max_length:
        raise ApiError(400, "invalid_field", f"The field '{name}' must be at most {max_length} characters.")
    try:
        value.encode("utf-8")  # JSON can carry lone surrogates ("\ud800"); UTF-8 cannot
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_field", f"The field '{name}' is not valid Unicode text.") from None
    return value


def request_path(request):
    """The path the client asked for, API Gateway's stage prefix included."""
    return (request.context or {}).get("path") or "/"


def base_path(request):
    """What API Gateway puts before our routes (e.g. the stage, '/api'); '' locally."""
    context = request.context or {}
    path, resource = context.get("path") or "", context.get("resourcePath") or ""
    if resource and path.endswith(resource):
        return path[: len(path) - len(resource)].rstrip("/")
    return ""


def refresh_cookie(request, value, max_age=REFRESH_COOKIE_MAX_AGE):
    return (
        f"{REFRESH_COOKIE}={value}; Path={base_path(request)}/auth; Max-Age={max_age}; "
        "HttpOnly; Secure; SameSite=Strict"
    )


def read_refresh_cookies(request):
    """Every non-empty refresh cookie the request carries, in order."""
    values = []
    for part in (request.headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == REFRESH_COOKIE and value.strip():
            values.append(value.strip())
    return values


def read_refresh_cookie(request):
    """The one refresh cookie, or None. Two or more mean someone else set one (a sibling
    subdomain can): which is the user's is unknowable, so the request counts as signed out
    and every one of them is cleared."""
    values = read_refresh_cookies(request)
    if len(values) > 1:
        log.warning("Request carried %d refresh cookies: treated as signed out, all cleared", len(values))
        raise ApiError(401, "not_signed_in", SIGN_IN_AGAIN, headers={"Set-Cookie": clear_all_refresh_cookies(request)})
    return values[0] if values else None


def _cookie_paths(request):
    """Every cookie path the browser would send to this request's path with."""
    path = request_path(request).split("?")[0] or "/"
    paths, current = ["/"], ""
    for segment in [s for s in path.split("/") if s]:
        current += "/" + segment
        paths += [current, current + "/"]
    return list(dict.fromkeys(paths))


def _cookie_domains(request):
    """None (host-only) and every parent domain the browser lets this host set cookies for."""
    host = (request.headers.get("host") or "").rpartition(":")[0] or request.headers.get("host") or ""
    host = host.strip("[]").lower()
    try:
        ipaddress.ip_address(host)
        return [None]
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    return [None] + [".".join(labels[i:]) for i in range(len(labels) - 1)]


def clear_all_refresh_cookies(request):
    """Set-Cookie values that expire a refresh cookie of any path and domain that reaches here
    (the Cookie header does not say which ones were set, so every possibility is cleared)."""
    return [
        f"{REFRESH_COOKIE}=; Path={path}; " + (f"Domain={domain}; " if domain else "")
        + "Max-Age=0; HttpOnly; Secure; SameSite=Strict"
        for domain in _cookie_domains(request) for path in _cookie_paths(request)
    ]


def bearer_token(request):
    from chalicelib import access_tokens  # light: PyJWT only when a token is verified

    token = access_tokens.bearer(request.headers.get("authorization"))
    if isinstance(token, access_tokens.Refusal):
        raise ApiError(401, token.code, token.message)
    return token


# The one inline style the page allows: the `<style id="__authsignal-popup-style">` that
# @authsignal/browser 1.16.0 injects for its popup (default width and height, as app.js
# launches it). Its text is fixed for those options, so its hash is too; another SDK
# version or popup size changes it (tests/test_browser.py checks it against the real SDK).
WEB_SDK_POPUP_STYLE_HASH = "'sha256-5Az4NQb6dubGZHm0w3ZAqADXELlINI1b9WNySRWe9W4='"


def page_csp(authsignal_ui_origins, sdk_url, authsignal_api_url):
    # The SDK's exact URL, not its origin: a CDN origin serves every npm package.
    sdk = urlsplit(sdk_url)
    sdk_source = f"{sdk.scheme}://{sdk.netloc}{sdk.path}"
    # The passkey calls go to Authsignal's client API, and nowhere else on that host.
    api = urlsplit(authsignal_api_url)
    client_api = f"{api.scheme}://{api.netloc}{api.path.rstrip('/')}/client/"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {sdk_source}",
            f"style-src 'self' {WEB_SDK_POPUP_STYLE_HASH}",
            "img-src 'self' data:",
            f"connect-src 'self' {client_api}",
            # Exactly the tenant's UI origins: track's URL is refused on any other.
            f"frame-src {' '.join(authsignal_ui_origins)}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def with_security_headers(response):
    for name, value in BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    return response


def error_template(code, message):
    return '{"error": {"code": "%s", "message": "%s"}}' % (code, message)


def gateway_response(status, body):
    """One of API Gateway's own answers in this API's shape (x-amazon-apigateway-gateway-responses).
    Static header values are single-quoted, with no quote inside: the CSP is `sandbox` (no
    script, no form, no plugin) rather than the app's `default-src 'none'`. Without `status`
    the answer keeps API Gateway's own code."""
    headers = {**BASE_HEADERS, "Cache-Control": "no-store", "Content-Security-Policy": "sandbox"}
    return {**({"statusCode": status} if status else {}),
            "responseParameters": {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()},
            "responseTemplates": {"application/json": body}}


def gateway_responses():
    """Every answer API Gateway gives itself, in this API's error shape with its security
    headers: its throttle (429), an unknown route or a preflight (404), any other 4xx or 5xx,
    and the authorizer's (chalicelib.authorizer). The template's RestAPI holds exactly these,
    and `python -m triggers connect` puts them on a deployed API."""
    from chalicelib import authorizer

    return {
        **authorizer.gateway_responses(),
        "THROTTLED": gateway_response(429, error_template(
            "throttled", "Too many requests right now. Wait a minute and try again.")),
        "MISSING_AUTHENTICATION_TOKEN": gateway_response(404, error_template(
            "not_found", "There is nothing at this address.")),
        "DEFAULT_4XX": gateway_response(
            None, '{"error": {"code": "bad_request", "message": $context.error.messageString}}'),
        "DEFAULT_5XX": gateway_response(None, error_template(
            "unavailable", "The service is unavailable right now. Try again in a minute.")),
    }
