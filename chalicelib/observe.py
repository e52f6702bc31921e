"""What each invocation reports: one JSON log line with its outcome and durations, and the
metrics of that outcome (chalicelib.metrics). The routes report through app.py's middleware,
the triggers through `@observed`; nothing here names a user."""
import functools
import json
import logging
import os
import time
from urllib.parse import urlsplit

from chalicelib import budget, log_format, metrics

log = logging.getLogger(__name__)


def route_answered(*, route, status, body, seconds):
    """After a route answered: the log line, and AuthStart/AuthFinish by outcome."""
    metrics.record("Responses", StatusClass=f"{status // 100}xx")
    name = metrics.ROUTE_METRICS.get(route)
    outcome = None
    if name:
        try:
            parsed = json.loads(body) if isinstance(body, (str, bytes)) else body
        except ValueError:
            parsed = None
        outcome = metrics.route_outcome(route=route, status=status, body=parsed)
        metrics.record(name, Outcome=outcome)
    log.info("%s answered %s", route, status,
             extra={"route": route, "status": status, "durationMs": round(seconds * 1000, 1),
                    **({"outcome": outcome} if outcome else {})})


def _service(netloc):
    """Which service a call went to, from the settings' endpoints (the dev stack's are loopback ports)."""
    def host(name):
        return urlsplit(os.environ.get(name) or "").netloc
    if netloc == host("AUTHSIGNAL_API_URL") or netloc.endswith("authsignal.com"):
        return "Authsignal"
    if netloc == host("COGNITO_ENDPOINT_URL") or netloc.startswith("cognito-idp."):
        return "Cognito"
    return "Other"  # SSM, read once per container


# The exceptions a trigger raises to refuse a sign-in (chalicelib.authsignal_gateway).
REFUSALS = {"AuthsignalBlocked": "blocked", "AuthsignalMisconfigured": "not_configured",
            "AuthsignalUnavailable": "unavailable"}


def observed(name):
    """A trigger's invocation: its duration, the time its Authsignal and Cognito calls took,
    whether it ran out of network budget, and an error that escaped it."""
    def wrap(handler):
        @functools.wraps(handler)
        def run(event, context):
            metrics.function.set(name)
            log_format.request_id.set(getattr(context, "aws_request_id", None))
            budget.start_timings()
            began = time.monotonic()
            outcome = "error"
            try:
                result = handler(event, context)
                outcome = "answered"
                return result
            except Exception as error:
                # Refusing on purpose (Cognito then answers the API) is an outcome, not an error.
                outcome = REFUSALS.get(type(error).__name__, "error")
                raise
            finally:
                seconds = {"Authsignal": 0.0, "Cognito": 0.0}
                for netloc, took in budget.stop_timings():
                    service = _service(netloc)
                    if service in seconds:
                        seconds[service] += took
                duration = (time.monotonic() - began) * 1000
                metrics.record("TriggerDuration", round(duration, 1), "Milliseconds", Function=name)
                for service, took in seconds.items():
                    if took:
                        metrics.record(f"{service}Duration", round(took * 1000, 1), "Milliseconds", Function=name)
                if budget.exhausted():
                    metrics.record("BudgetExhausted", Function=name)
                if outcome == "error":
                    metrics.record("TriggerError", Function=name)
                log.info("%s %s", name, outcome, extra={
                    "outcome": outcome, "durationMs": round(duration, 1),
                    "authsignalMs": round(seconds["Authsignal"] * 1000, 1),
                    "cognitoMs": round(seconds["Cognito"] * 1000, 1)})
        return run
    return wrap
