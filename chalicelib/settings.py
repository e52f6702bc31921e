"""Settings from the stage's environment variables, read lazily.

Chalice's test client sets a stage's variables only while a call runs, and a
Lambda should fail with a message that names what is missing, so nothing here
is read at import time.
"""
import ipaddress
import os
import re
from typing import NamedTuple  # not dataclasses: importing it (inspect, ast, dis) slows cold starts
from functools import lru_cache
from urllib.parse import urlsplit

# Authsignal's five regions (its SDK READMEs); a tenant lives in exactly one.
AUTHSIGNAL_REGIONS = {
    "US (Oregon)": "https://api.authsignal.com/v1",
    "CA (Montreal)": "https://ca.api.authsignal.com/v1",
    "AU (Sydney)": "https://au.api.authsignal.com/v1",
    "EU (Dublin)": "https://eu.api.authsignal.com/v1",
    "UK (London)": "https://uk.api.authsignal.com/v1",
}
# Each Authsignal call must end well inside Cognito's 5 s trigger limit (and inside a
# trigger, within its network budget: chalicelib.budget). Connect includes TLS.
AUTHSIGNAL_CONNECT_TIMEOUT_SECONDS = 0.5
AUTHSIGNAL_TIMEOUT_SECONDS = 1.5
# A secret from SSM is read once per container, on its cold start.
SSM_CONNECT_TIMEOUT_SECONDS = 0.5
SSM_TIMEOUT_SECONDS = 1.0
DEFAULT_ACTION = "cognitoAuth"
# /auth/start answers no sooner than this (see signin.start): above the new-user
# path's usual duration, so the time of the answer does not tell who has an account.
DEFAULT_START_MIN_SECONDS = 1.0


# Values copied from an example instead of replaced: `REPLACE-with-your-tenant-id`, `...`,
# `<your key>`, `changeme`, `TODO`, `xxxx`.
_PLACEHOLDER = re.compile(r"^(.*\breplace\b.*|.*\breplace[-_ ]with\b.*|\.{3,}|<.*>|change[-_ ]?me|todo|tbd|x{3,}|your[-_ ].*)$",
                          re.IGNORECASE)
# Settings whose value is a space-separated list (SPEC 5).
LIST_SETTINGS = {"AUTHSIGNAL_UI_ORIGIN"}


class SettingsError(RuntimeError):
    """A setting is missing or unsafe; the message says which and what to do."""


class Settings(NamedTuple):
    user_pool_id: str
    client_id: str
    region: str
    cognito_endpoint_url: str | None
    authsignal_api_url: str
    authsignal_tenant_id: str
    authsignal_action: str
    authsignal_ui_origins: tuple  # the origins the page may frame (SPEC 5: a list)
    authsignal_sdk_url: str
    start_min_seconds: float = DEFAULT_START_MIN_SECONDS
    # The demo site's cleanup of never-verified sign-ups (chalicelib/cleanup.py); off by default.
    cleanup_unverified_users: bool = False

    def ui_origin_of(self, url):
        """The origin of a challenge URL if the page may frame it, else None."""
        origin = origin_of(url)
        return origin if origin in self.authsignal_ui_origins else None


def placeholder_problem(name, value, where="the stage's environment_variables in .chalice/config.json"):
    """Why `value` cannot be the real `name` (a placeholder, or blank inside), or None.
    A list setting (space-separated) is checked item by item."""
    value = value.strip()
    if name in LIST_SETTINGS:
        wrong = any(_PLACEHOLDER.match(part) for part in value.split())
    else:
        wrong = bool(_PLACEHOLDER.match(value)) or any(c.isspace() for c in value)
    if wrong:
        return (f"Setting {name} is still a placeholder ({value!r}): put the real value in {where}"
                + (" (Authsignal portal > Settings > API keys)." if name.startswith("AUTHSIGNAL") else "."))
    return None


def _require(name):
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(
            f"Setting {name} is missing: add it to the stage's environment_variables "
            "in .chalice/config.json."
        )
    problem = placeholder_problem(name, value)
    if problem:
        raise SettingsError(problem)
    return value


def _seconds(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 10:
        raise SettingsError(f"Setting {name} must be a number of seconds from 0 to 10, not {value!r}.")
    return seconds


def _switch(name):
    """Off unless the stage sets exactly 'true'; anything but true/false/empty is a mistake."""
    value = os.environ.get(name, "").strip().lower()
    if value not in ("", "true", "false"):
        raise SettingsError(f"Setting {name} must be true or false, not {value!r}.")
    return value == "true"


def origin_of(url):
    """`scheme://host[:port]` of an http(s) URL, lower-case, default port left out."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError, AttributeError):
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _ui_origins(value, local):
    """AUTHSIGNAL_UI_ORIGIN: space-separated origins (the tenant's custom domains, or
    https://mfa.authsignal.com); https only, except loopback in the offline dev stack."""
    origins = []
    for item in value.split():
        parts = urlsplit(item)
        origin = origin_of(item)
        if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise SettingsError(
                "AUTHSIGNAL_UI_ORIGIN must list origins (scheme and host, no path), separated "
                f"by spaces, like https://mfa.authsignal.com; {item!r} is not one."
            )
        if not origin.startswith("https://") and not (local and is_loopback(origin)):
            raise SettingsError(
                f"AUTHSIGNAL_UI_ORIGIN: {origin} must use https (only the offline dev stack "
                "may name a loopback http origin)."
            )
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def is_loopback(url):
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def running_in_lambda():
    # Set by the Lambda runtime; the dev stack and `chalice local` never set it.
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def app_client_id():
    """This app's Cognito client id: all that PreSignUp needs."""
    return _require("COGNITO_CLIENT_ID")


def _region():
    region = os.environ.get("COGNITO_REGION") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise SettingsError("Setting COGNITO_REGION is missing (or AWS_REGION).")
    return region


def _refuse_loopback_in_lambda(name, url):
    if is_loopback(url) and running_in_lambda():
        raise SettingsError(f"{name} points at loopback ({url}) in a deployed Lambda: that is "
                            "the offline dev stack's setting; remove it from this stage.")


def _dev_endpoint(name, url):
    """A setting only the offline dev stack sets (an emulator's loopback URL): refused elsewhere."""
    if not is_loopback(url):
        raise SettingsError(f"{name} is only for the offline dev stack (a loopback URL); remove it.")
    _refuse_loopback_in_lambda(name, url)
    return url


def load(event=None):
    """Read and check every non-secret setting from the environment.

    A trigger passes its Cognito event, which always names the pool and its region: those
    come from the event, so Create and Verify work before the stage records them."""
    event = event or {}
    region = event.get("region") or _region()
    api_url = _require("AUTHSIGNAL_API_URL").rstrip("/")
    local = is_loopback(api_url) and not running_in_lambda()
    settings = Settings(
        user_pool_id=event.get("userPoolId") or _require("COGNITO_USER_POOL_ID"),
        # Not the event's callerContext: that names the caller, not this app's client.
        client_id=os.environ.get("COGNITO_CLIENT_ID", "").strip() if event else _require("COGNITO_CLIENT_ID"),
        region=region,
        cognito_endpoint_url=os.environ.get("COGNITO_ENDPOINT_URL") or None,
        authsignal_api_url=api_url,
        authsignal_tenant_id=_require("AUTHSIGNAL_TENANT_ID"),
        authsignal_action=os.environ.get("AUTHSIGNAL_ACTION") or DEFAULT_ACTION,
        authsignal_ui_origins=(),  # below: after the endpoints, whose message matters more
        authsignal_sdk_url=_require("AUTHSIGNAL_SDK_URL"),
        start_min_seconds=_seconds("AUTH_START_MIN_SECONDS", DEFAULT_START_MIN_SECONDS),
        cleanup_unverified_users=_switch("CLEANUP_UNVERIFIED_USERS"),
    )
    _check_endpoints(settings)
    return settings._replace(authsignal_ui_origins=_ui_origins(_require("AUTHSIGNAL_UI_ORIGIN"), local))


def _check_endpoints(settings):
    url = settings.authsignal_api_url
    _refuse_loopback_in_lambda("AUTHSIGNAL_API_URL", url)
    if not is_loopback(url) and url not in AUTHSIGNAL_REGIONS.values():
        raise SettingsError(
            f"AUTHSIGNAL_API_URL must be one of {', '.join(AUTHSIGNAL_REGIONS.values())} "
            "(the tenant's region, shown in the Authsignal portal), not " + url
        )
    if settings.cognito_endpoint_url:
        _dev_endpoint("COGNITO_ENDPOINT_URL", settings.cognito_endpoint_url)


class SecretUnavailable(RuntimeError):
    """SSM did not answer (an outage, not a mistake): the caller answers 503."""


# SSM's answers that mean the stage or the role is wrong, and what to check for each.
_SSM_FIXES = {
    "ParameterNotFound": "no parameter has that name in this account and region: check the stage's {setting}",
    "AccessDeniedException": ("the credentials may not read it: the function's role (or, for `chalice local`, "
                              "your profile) needs ssm:GetParameter on it and kms:Decrypt on its key"),
    "UnrecognizedClientException": "the credentials are not valid in this account (an expired session?)",
    "InvalidSignatureException": "the credentials' secret key does not match their access key",
    "ExpiredTokenException": "the session credentials have expired: renew them (e.g. `aws sso login`)",
}


@lru_cache(maxsize=None)
def _ssm_parameter(name, region, setting):
    # Through the same small client as Cognito (not boto3: its client alone is most of a
    # cold start); its endpoint as botocore resolves it (AWS_ENDPOINT_URL_SSM, FIPS, partitions).
    # GetParameter only reads: safe to retry (chalicelib.aws_retry).
    from chalicelib import aws_json

    try:
        answer = aws_json.call(aws_json.endpoint("ssm", region), "AmazonSSM.GetParameter",
                               {"Name": name, "WithDecryption": True},
                               SSM_CONNECT_TIMEOUT_SECONDS, SSM_TIMEOUT_SECONDS, sign=(region, "ssm"), safe=True)
    except aws_json.AwsNoCredentials as error:
        raise SettingsError(f"SSM parameter {name} ({setting}) could not be read: {error}") from None
    except aws_json.AwsUnavailable as error:
        raise SecretUnavailable(f"SSM did not answer for parameter {name} ({error})") from None
    except aws_json.AwsError as error:
        if error.status >= 500 or error.code in ("ThrottlingException", "InternalServerError"):
            raise SecretUnavailable(f"SSM failed for parameter {name} ({error.code})") from None
        fix = _SSM_FIXES.get(error.code, "check its name in the stage's {setting} and the function's role")
        raise SettingsError(f"SSM parameter {name} could not be read ({error.code}): "
                            + fix.format(setting=setting) + ".") from None
    return answer["Parameter"]["Value"]


def secret(name, region):
    """A secret from the env var `name`, or from SSM under the name in `name`_PARAM."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    parameter = os.environ.get(name + "_PARAM", "").strip()
    if not parameter:
        raise SettingsError(
            f"Setting {name} is missing: set {name}_PARAM to its SSM Parameter Store "
            f"name (SecureString), or {name} for the offline dev stack."
        )
    return _ssm_parameter(parameter, region, name + "_PARAM")


class TokenIssuer(NamedTuple):
    """Whose access tokens the authorizer accepts: the pool (`issuer`, and its keys at
    `jwks_url`) and this app's client."""

    issuer: str
    jwks_url: str
    client_id: str


def token_issuer():
    """Only what verifying an access token needs (the authorizer reads no secret and no
    Authsignal setting). Deployed: `https://cognito-idp.<region>.amazonaws.com/<poolId>`;
    the offline dev stack: `<COGNITO_ENDPOINT_URL>/<poolId>`, as its emulator issues them."""
    pool_id = _require("COGNITO_USER_POOL_ID")
    client_id = _require("COGNITO_CLIENT_ID")
    region, _, rest = pool_id.partition("_")
    if not region or not rest:
        raise SettingsError(f"Setting COGNITO_USER_POOL_ID must look like us-east-1_AbC123, not {pool_id!r}.")
    endpoint = (os.environ.get("COGNITO_ENDPOINT_URL") or "").strip().rstrip("/")
    if endpoint:
        issuer = f"{_dev_endpoint('COGNITO_ENDPOINT_URL', endpoint)}/{pool_id}"
    else:
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"
    return TokenIssuer(issuer=issuer, jwks_url=issuer + "/.well-known/jwks.json", client_id=client_id)


# The limits of /auth/start (chalicelib.limits): setting name → (rule name, default "COUNT/SECONDS").
# Defaults for a public demo: a person who mistypes or loses a code has room (5 rounds in a
# quarter of an hour, 20 a day); a script cannot mail one stranger more than 20 times a day, nor
# one client start more than 30 rounds (about 2 a minute) or create more than 10 users an hour.
LIMIT_SETTINGS = {
    "LIMIT_START_PER_ADDRESS": ("address", "5/900"),
    "LIMIT_START_PER_ADDRESS_DAY": ("address-day", "20/86400"),
    "LIMIT_START_PER_CLIENT": ("client", "30/900"),
    "LIMIT_SIGN_UPS_PER_CLIENT": ("sign-ups-client", "10/3600"),
    "LIMIT_SIGN_UPS_TOTAL": ("sign-ups-total", "500/3600"),
}
MAX_LIMIT_WINDOW_SECONDS = 7 * 86400


class LimitSettings(NamedTuple):
    table: str
    region: str
    dynamodb_endpoint_url: str | None
    rules: object  # chalicelib.limits.Rules


def _rule(name, rule_name, default):
    from chalicelib.limits import Rule

    value = os.environ.get(name, "").strip() or default
    count, _, seconds = value.partition("/")
    try:
        rule = Rule(rule_name, int(count), int(seconds))
    except ValueError:
        rule = None
    if rule is None or not (1 <= rule.count <= 10**9 and 1 <= rule.seconds <= MAX_LIMIT_WINDOW_SECONDS):
        raise SettingsError(f"Setting {name} must be COUNT/SECONDS (at most COUNT requests per window of "
                            f"SECONDS, up to {MAX_LIMIT_WINDOW_SECONDS}), like {default}; not {value!r}.")
    return rule


def limits():
    """The /auth/start limits and their table; read only by the API's /auth/start (the
    triggers never need them)."""
    from chalicelib.limits import Rules

    rules = Rules(*(_rule(name, rule_name, default) for name, (rule_name, default) in LIMIT_SETTINGS.items()))
    table = _require("LIMITS_TABLE")
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL", "").strip() or None
    if endpoint:
        _dev_endpoint("DYNAMODB_ENDPOINT_URL", endpoint)
    return LimitSettings(table=table, region=_region(), dynamodb_endpoint_url=endpoint, rules=rules)
