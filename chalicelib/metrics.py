"""CloudWatch metrics as Embedded Metric Format (EMF) lines on stdout: no client, no API call.

Lambda hands stdout to CloudWatch Logs, which turns each EMF line into data points; the dev
stack prints the same lines and `make metrics` sums them. Dimensions are bounded (stage,
function, outcome, method), never a user: every metric is also recorded under the stage
alone, so an alarm can read the total of all outcomes.
"""
import contextvars
import json
import os
import sys
import time

NAMESPACE = "CognitoAuthsignal"
OTHER = "OTHER"
# What validate may name (reference/authsignal-api.md); anything else is counted as OTHER.
METHODS = frozenset({"EMAIL_OTP", "EMAIL_MAGIC_LINK", "SMS", "WHATSAPP", "AUTHENTICATOR_APP", "PASSKEY",
                     "SECURITY_KEY", "PUSH", "VERIFF", "IPROOV", "IDVERSE", "RECOVERY_CODE"})

# The function being served (api_handler, a trigger's name, the cleanup): set per invocation.
function = contextvars.ContextVar("function", default="unknown")


def stage():
    return os.environ.get("APP_STAGE") or "unknown"


def record(name, value=1, unit="Count", *, clock=time.time, out=None, **dimensions):
    """Print one EMF line: `name` = `value` under the stage and `dimensions`, and under the stage alone."""
    dims = {"Stage": stage(), **{key: str(dimension) for key, dimension in dimensions.items()}}
    sets = [list(dims)] + ([["Stage"]] if len(dims) > 1 else [])
    line = {
        "_aws": {"Timestamp": int(clock() * 1000),
                 "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": sets,
                                        "Metrics": [{"Name": name, "Unit": unit}]}]},
        **dims,
        name: value,
    }
    # One write per line: print() writes the newline apart, and the dev stack runs triggers in threads.
    stream = out or sys.stdout
    stream.write(json.dumps(line, separators=(",", ":")) + "\n")
    stream.flush()


def method_name(value):
    return value if value in METHODS else OTHER


# ---- what a route's answer means, for AuthStart / AuthFinish --------------------------------

ROUTE_METRICS = {"/auth/start": "AuthStart", "/auth/finish": "AuthFinish"}
_ERROR_OUTCOMES = {"blocked": "blocked", "not_configured": "not_configured", "unavailable": "unavailable",
                   "throttled": "rate_limited", "rate_limited": "rate_limited", "not_authorized": "expired"}


def route_outcome(*, route, status, body):
    """The outcome of /auth/start or /auth/finish from its answer (status, parsed JSON body):
    a new challenge from /auth/finish means the answer was wrong and attempts remain."""
    body = body if isinstance(body, dict) else {}
    if status == 200:
        challenge = "wrong_answer" if route == "/auth/finish" else "challenge_issued"
        return {"CHALLENGE": challenge, "SIGNED_IN": "signed_in"}.get(body.get("status"), "error")
    code = (body.get("error") or {}).get("code") if isinstance(body.get("error"), dict) else None
    if code in _ERROR_OUTCOMES:
        return _ERROR_OUTCOMES[code]
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "invalid_input"
    return "unavailable" if status in (502, 503, 504) else "error"
