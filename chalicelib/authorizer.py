"""The Chalice authorizer's answers, deployed and under `chalice local`, for chalicelib.access_tokens.

A refused token never reaches a route: no Allow policy ever carries a refusal for the route to
remember to check. What the caller reads is the same in both places:

- deployed, a refusal is a Deny policy whose context holds `code` and `message`; the API's
  ACCESS_DENIED gateway response (triggers/cloudformation.json, `python -m triggers connect`)
  answers it as a 401 in this API's error shape, `{"error": {"code", "message"}}`. A failure
  (the JWKS unreachable, a missing setting) raises: AUTHORIZER_FAILURE, answered as a 503.
- `chalice local` and `chalice.test.Client` run the authorizer in the local gateway, which
  answers a Deny with its own 403 and lets an exception escape as a 500; there the same answer
  is raised as the local gateway's own error type, which it sends as it is.
"""
import json
import logging
import sys
import time

from chalice import AuthResponse

from chalicelib import access_tokens, http, metrics, settings

log = logging.getLogger(__name__)

# How long API Gateway keeps an answer per token: saves an invocation per request, and lets a
# token be used up to this long past its `exp` (a locally verified token is good until `exp`
# anyway, revoked or not): the exposure after sign-out is the token's lifetime plus this.
CACHE_TTL_SECONDS = 300
UNAVAILABLE = "Checking your sign-in is unavailable right now. Try again in a minute."


def authorize(auth_request, *, clock=time.time):
    metrics.function.set("cognito_access_token")
    try:
        issuer = settings.token_issuer()
    except settings.SettingsError as error:
        log.error("Misconfigured: %s", error)
        metrics.record("AccessTokens", Outcome="not_configured")
        return _fail(500, "not_configured", http.NOT_CONFIGURED)
    try:
        verdict = access_tokens.verify(authorization=auth_request.token, issuer=issuer.issuer,
                                       client_id=issuer.client_id, now=clock(),
                                       keys=access_tokens.key_set(issuer.jwks_url, clock))
    except access_tokens.KeysUnavailable as error:
        log.error("The user pool's keys could not be read: %s", error)
        metrics.record("AccessTokens", Outcome="unavailable")
        return _fail(503, "unavailable", UNAVAILABLE)
    if verdict.refusal:
        log.info("Access token refused: %s", verdict.refusal.detail)
        metrics.record("AccessTokens", Outcome="refused")
        return _deny(auth_request, verdict.refusal)
    metrics.record("AccessTokens", Outcome="allowed")
    token = verdict.token
    # Every route behind this authorizer: API Gateway reuses this answer, per token, for any of them.
    return AuthResponse(routes=["*"], principal_id=token.sub, context={
        "sub": token.sub, "username": token.username, "clientId": token.client_id, "scope": token.scope,
        "authTime": token.auth_time or 0, "expiresAt": token.expires_at, "verifiedBy": "local"})


def _local_gateway():
    # Loaded only by `chalice local` and chalice.test (never in a deployed Lambda, nor packaged).
    return sys.modules.get("chalice.local")


def _local_error(status, code, message):
    local = _local_gateway()
    response = http.with_security_headers(http.error_response(status, code, message))
    error_type = type("AuthorizerAnswer", (local.LocalGatewayException,), {"CODE": status})
    return error_type(dict(response.headers), json.dumps(response.body).encode())


def _deny(auth_request, refusal):
    if _local_gateway():
        raise _local_error(401, refusal.code, refusal.message)
    arn = auth_request.method_arn.split("/")
    return {
        "principalId": "refused",
        "policyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ["/".join(arn[:2] + ["*", "*"])]}]},
        "context": {"code": refusal.code, "message": refusal.message},
    }


class AuthorizerFailure(Exception):
    """Deployed: API Gateway answers AUTHORIZER_FAILURE (never cached) for this."""


def _fail(status, code, message):
    if _local_gateway():
        raise _local_error(status, code, message)
    raise AuthorizerFailure(code)


def gateway_responses():
    """API Gateway's own answers around the authorizer (part of http.gateway_responses()): a
    Deny (ACCESS_DENIED) is the refusal in the Deny's context, as a 401; no Authorization
    header at all (UNAUTHORIZED) never reaches the authorizer; a failure is a 503."""
    error = http.error_template
    return {
        "ACCESS_DENIED": http.gateway_response(401, error("$context.authorizer.code", "$context.authorizer.message")),
        "UNAUTHORIZED": http.gateway_response(401, error(access_tokens.MISSING.code, access_tokens.MISSING.message)),
        "AUTHORIZER_FAILURE": http.gateway_response(503, error("unavailable", UNAVAILABLE)),
        "AUTHORIZER_CONFIGURATION_ERROR": http.gateway_response(503, error("unavailable", UNAVAILABLE)),
    }
