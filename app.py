"""Passwordless sign-in for a Cognito user pool, with Authsignal's pre-built UI as the challenge.

Thin on purpose: the routes relay to `chalicelib`, the triggers live in `triggers/`.
Nothing heavy (boto3, the Authsignal SDK) is imported until a call needs it.
"""
import contextlib
import time

from chalice import Chalice, Response

from chalicelib import authorizer, budget, http, log_format, metrics, observe, page, settings, signin
from chalicelib.cognito_gateway import UserPoolClient
from triggers import bp as triggers

app = Chalice(app_name="cognito-authsignal", configure_logs=False)  # JSON lines instead (log_format)
log_format.install(app.app_name)
app.register_blueprint(triggers)

_pool = None


def _misconfigured(error):
    # The detail (setting names, endpoints) is for the operator's log, not for callers.
    app.log.error("Misconfigured: %s", error)
    return http.misconfigured()


@contextlib.contextmanager
def configured():
    """Settings and secrets read inside: a mistake (a missing setting, no AWS credentials, SSM's
    AccessDenied) is 500 not_configured with the fix in the log; an SSM outage is 503."""
    try:
        yield
    except settings.SettingsError as error:
        raise _misconfigured(error) from None
    except settings.SecretUnavailable as error:
        app.log.warning("%s", error)
        raise http.ApiError(503, "unavailable", "Sign-in is unavailable right now. Try again in a minute.") from None


def get_config():
    with configured():
        return settings.load()


def get_pool():
    global _pool
    config = get_config()
    if _pool is None or _pool.config != config:
        with configured():  # e.g. the client secret's setting, read from SSM
            _pool = UserPoolClient(config)
    return _pool


def get_gate(email):
    """This request's limits (chalicelib.limits), by the address and by API Gateway's sourceIp
    (set from the TCP connection; X-Forwarded-For is the caller's to write)."""
    from chalicelib import limits  # here: the page and the other routes never pay its import

    with configured():
        config = settings.limits()
        secret = settings.secret("COGNITO_CLIENT_SECRET", config.region)
    source_ip = (app.current_request.context.get("identity") or {}).get("sourceIp") or ""
    return limits.gate(config=config, secret=secret, email=email, source_ip=source_ip, clock=time.time)


@app.middleware("http")
def guard(request, get_response):
    began = time.monotonic()
    metrics.function.set("api_handler")
    log_format.request_id.set(request.context.get("requestId") or getattr(app.lambda_context, "aws_request_id", None))
    try:
        http.guard_request(request)
        with budget.deadline(budget.API_NETWORK_SECONDS):  # every AWS and Authsignal call, retries included
            response = get_response(request)
    except http.ApiError as error:
        response = http.error_response(error.status, error.code, error.message, error.headers)
    response = http.with_security_headers(http.normalize(response))
    observe.route_answered(route=request.context.get("resourcePath"), status=response.status_code,
                           body=response.body, seconds=time.monotonic() - began)
    return response


@app.route("/")
def index():
    path = http.request_path(app.current_request)
    if not path.endswith("/"):  # "/api" deployed: relative URLs need "/api/"
        return Response(body="", status_code=301, headers={"Location": path + "/"})
    problem = page.local_problem()  # e.g. plain `chalice local`: say what to run, not a bare 500
    if problem:
        app.log.error("Not ready on this machine: %s", problem)
        return Response(body=page.problem(problem), status_code=503,
                        headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": page.PROBLEM_CSP})
    config = get_config()
    return Response(
        body=page.index(config.authsignal_sdk_url),
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": http.page_csp(
                config.authsignal_ui_origins, config.authsignal_sdk_url, config.authsignal_api_url
            ),
        },
    )


@app.route("/static/{name}")
def static(name):
    found = page.asset(name)
    if found is None:
        return http.error_response(404, "not_found", f"There is no page asset called '{name}'.")
    body, content_type = found
    return Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "public, max-age=300"})


@app.route("/config")
def public_config():
    config = get_config()
    return {"tenantId": config.authsignal_tenant_id, "baseUrl": config.authsignal_api_url}


@app.route("/auth/start", methods=["POST"])
def auth_start():
    body = http.json_object(app.current_request)
    email = signin.normalize_email(http.string_field(body, "email", 320))
    pool = get_pool()
    return signin.start(pool, email, pool.config.start_min_seconds, gate=get_gate(email))


@app.route("/auth/finish", methods=["POST"])
def auth_finish():
    body = http.json_object(app.current_request)
    email = signin.normalize_email(http.string_field(body, "email", 320))
    session = http.string_field(body, "session", signin.MAX_SESSION_LENGTH)
    token = http.string_field(body, "token", signin.MAX_TOKEN_LENGTH)
    answer, cookie = signin.finish(get_pool(), email, session, token)
    return _with_cookie(answer, cookie)


@app.route("/auth/refresh", methods=["POST"])
def auth_refresh():
    http.json_object(app.current_request)
    cookie = http.read_refresh_cookie(app.current_request)
    answer, rotated = signin.refresh(get_pool(), cookie)
    return _with_cookie(answer, rotated)


@app.route("/auth/sign-out", methods=["POST"])
def auth_sign_out():
    request = app.current_request
    http.json_object(request)
    cookies = http.read_refresh_cookies(request)
    if len(cookies) > 1:
        clear = http.clear_all_refresh_cookies(request)
    else:
        clear = http.refresh_cookie(request, "", max_age=0)
    if cookies:
        try:
            signin.sign_out(get_pool(), cookies)
        except http.ApiError:
            pass  # misconfigured (logged by get_config): the cookie is cleared all the same
    return Response(body="", status_code=204, headers={"Set-Cookie": clear})


@app.authorizer(ttl_seconds=authorizer.CACHE_TTL_SECONDS)
def cognito_access_token(auth_request):
    """Verifies a Cognito access token locally (the pool's JWKS, fetched once per container):
    no Cognito call per request. Protect a route with `authorizer=cognito_access_token`."""
    return authorizer.authorize(auth_request)


@app.route("/api/me", authorizer=cognito_access_token)
def me():
    request = app.current_request
    if (request.query_params or {}).get("check") == "cognito":  # must see a sign-out at once
        return signin.me(get_pool(), http.bearer_token(request))
    return signin.me_from_token(request.context["authorizer"])


@app.route("/api/passkey-token", methods=["POST"])
def passkey_token():
    http.require_own_origin(app.current_request)
    http.json_object(app.current_request)
    with configured():  # the Authsignal key, from SSM on first use
        return signin.passkey_token(get_pool(), http.bearer_token(app.current_request), now=time.time())


def _with_cookie(answer, cookie):
    headers = {"Set-Cookie": http.refresh_cookie(app.current_request, cookie)} if cookie else {}
    return Response(body=answer, headers=headers)


@app.schedule("rate(1 hour)", name="delete_unverified_users")
def delete_unverified_users(event):
    """Public demo hygiene: drop accounts whose email was never verified within 24 hours."""
    from chalicelib import cleanup

    metrics.function.set("delete_unverified_users")
    deleted = cleanup.run(app.log)
    metrics.record("CleanupDeletions", deleted)
    return {"deleted": deleted}
