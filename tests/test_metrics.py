"""Metrics and structured logs: each outcome of the routes and triggers emits exactly its metric
(EMF lines read from a real dev stack, faults injected in the emulators), the format is what
CloudWatch reads, and the alarms and dashboard are one definition for both deployment paths."""
import json
import logging
import os
import time
import uuid

import pytest
import requests

from chalicelib import budget, log_format, metrics, observe
from devstack.metrics import datapoints, summarize
from tests.test_aws_json import serving


def emf_lines(text):
    return [line for line in text.splitlines() if line.startswith('{"_aws"')]


# ---- the format ------------------------------------------------------------------------------

def test_a_metric_is_one_emf_line_under_its_dimensions_and_the_stage_alone(capsys, monkeypatch):
    monkeypatch.setenv("APP_STAGE", "prod")
    metrics.record("AuthStart", Outcome="blocked", clock=lambda: 1765000000.25)
    [line] = emf_lines(capsys.readouterr().out)
    emf = json.loads(line)
    assert emf["_aws"] == {"Timestamp": 1765000000250, "CloudWatchMetrics": [{
        "Namespace": "CognitoAuthsignal", "Dimensions": [["Stage", "Outcome"], ["Stage"]],
        "Metrics": [{"Name": "AuthStart", "Unit": "Count"}]}]}
    assert (emf["Stage"], emf["Outcome"], emf["AuthStart"]) == ("prod", "blocked", 1)
    assert sorted(dims for _, dims, _, _ in datapoints([line])) == [
        (("Stage", "prod"),), (("Stage", "prod"), ("Outcome", "blocked"))]


def test_durations_carry_their_unit_and_sum_by_function(capsys, monkeypatch):
    monkeypatch.setenv("APP_STAGE", "local")
    for value in (10.0, 30.0):
        metrics.record("TriggerDuration", value, "Milliseconds", Function="create_auth_challenge")
    table = summarize(emf_lines(capsys.readouterr().out))
    row = table[("TriggerDuration", (("Stage", "local"), ("Function", "create_auth_challenge")))]
    assert row == {"samples": 2, "sum": 40.0, "max": 30.0, "unit": "Milliseconds"}


@pytest.mark.parametrize("route,status,body,outcome", [
    ("/auth/start", 200, {"status": "CHALLENGE"}, "challenge_issued"),
    ("/auth/finish", 200, {"status": "CHALLENGE"}, "wrong_answer"),
    ("/auth/finish", 200, {"status": "SIGNED_IN"}, "signed_in"),
    ("/auth/finish", 401, {"error": {"code": "not_authorized"}}, "expired"),
    ("/auth/start", 403, {"error": {"code": "blocked"}}, "blocked"),
    ("/auth/start", 429, {"error": {"code": "throttled"}}, "rate_limited"),
    ("/auth/start", 429, {"error": {"code": "rate_limited"}}, "rate_limited"),
    ("/auth/start", 503, {"error": {"code": "unavailable"}}, "unavailable"),
    ("/auth/start", 500, {"error": {"code": "not_configured"}}, "not_configured"),
    ("/auth/start", 400, {"error": {"code": "invalid_email"}}, "invalid_input"),
    ("/auth/finish", 413, {"error": {"code": "too_large"}}, "invalid_input"),
    ("/auth/start", 500, {"error": {"code": "internal_error"}}, "error"),
    ("/auth/start", 200, "not json", "error"),
])
def test_route_outcomes(route, status, body, outcome):
    assert metrics.route_outcome(route=route, status=status, body=body) == outcome


def test_a_method_outside_authsignals_list_is_counted_as_other():
    assert metrics.method_name("PASSKEY") == "PASSKEY"
    assert metrics.method_name("someone@example.com") == "OTHER"  # never a free-form value as a dimension
    assert metrics.method_name(None) == "OTHER"


def test_log_lines_are_json_with_function_request_and_outcome(capsys):
    import app  # noqa: F401  (installs the JSON format)

    metrics.function.set("api_handler")
    log_format.request_id.set("req-1")
    logging.getLogger("chalicelib.signin").info("answered", extra={"outcome": "signed_in", "durationMs": 12.5,
                                                                   "email": "someone@example.com"})
    try:
        raise ValueError("someone@example.com is not allowed")
    except ValueError:
        logging.getLogger("triggers").exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"timestamp"')]
    first, second = lines[-2:]
    assert {k: first[k] for k in ("level", "message", "logger", "function", "requestId", "outcome", "durationMs")} == {
        "level": "INFO", "message": "answered", "logger": "chalicelib.signin", "function": "api_handler",
        "requestId": "req-1", "outcome": "signed_in", "durationMs": 12.5}
    assert "email" not in first  # only the known fields pass
    assert second["level"] == "ERROR" and second["exception"].startswith("ValueError at test_metrics.py:")
    assert "example.com" not in json.dumps(second)  # the exception's message is not logged


# ---- the triggers' own figures -----------------------------------------------------------------

def test_a_trigger_reports_its_duration_its_calls_and_a_budget_it_ran_out_of(capsys, monkeypatch):
    monkeypatch.setenv("APP_STAGE", "local")
    monkeypatch.setattr(budget, "TRIGGER_NETWORK_SECONDS", 0.3)
    from chalicelib import aws_json
    from tests.test_aws_json import TARGET

    with serving(("hang", b"")) as (_, url):
        monkeypatch.setenv("AUTHSIGNAL_API_URL", url + "/v1")  # the hanging server stands for Authsignal

        @observe.observed("create_auth_challenge")
        @budget.network_budget
        def handler(event, context):
            with pytest.raises(aws_json.AwsUnavailable):
                aws_json.call(url, TARGET, {}, 0.5, 1.5)  # cut to the 0.3 s left
            return event

        handler({}, None)
    table = summarize(emf_lines(capsys.readouterr().out))
    where = (("Stage", "local"), ("Function", "create_auth_challenge"))
    assert table[("BudgetExhausted", where)]["sum"] == 1
    assert 100 <= table[("AuthsignalDuration", where)]["sum"] <= table[("TriggerDuration", where)]["sum"]
    assert ("TriggerError", where) not in table


def test_a_trigger_that_raises_is_counted_and_a_fresh_run_is_not_exhausted(capsys, monkeypatch):
    monkeypatch.setenv("APP_STAGE", "local")

    @observe.observed("define_auth_challenge")
    def broken(event, context):
        raise KeyError("session")

    with pytest.raises(KeyError):
        broken({}, None)
    table = summarize(emf_lines(capsys.readouterr().out))
    where = (("Stage", "local"), ("Function", "define_auth_challenge"))
    assert table[("TriggerError", where)]["sum"] == 1
    assert ("BudgetExhausted", where) not in table and ("AuthsignalDuration", where) not in table


def test_a_trigger_timeout_reported_by_cognito_is_counted(capsys, monkeypatch):
    from chalicelib.cognito_gateway import CognitoError
    from chalicelib.signin import _map_error

    monkeypatch.setenv("APP_STAGE", "local")
    error = _map_error(CognitoError("UnexpectedLambdaException", "CreateAuthChallenge invocation failed due to "
                                    "error Socket timeout while invoking Lambda function."), "Start again.")
    assert error.status == 503
    assert ("TriggerTimeout", (("Stage", "local"),)) in summarize(emf_lines(capsys.readouterr().out))


# ---- every outcome, end to end through the dev stack ---------------------------------------------

class StackMetrics:
    """The EMF lines one dev stack's services printed (its metrics file), from a point on."""

    def __init__(self, stack):
        self.path = os.path.join(stack.project_dir, "metrics.jsonl")
        self.offset = os.path.getsize(self.path)

    def table(self, until=None, timeout=5.0):
        """The sums since the start; waits for `until(table)` (the services relay their lines asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.path) as handle:
                handle.seek(self.offset)
                table = {(name, tuple(k for k in dims if k[0] != "Stage")): row
                         for (name, dims), row in summarize(handle).items()}
            if until is None or until(table) or time.monotonic() > deadline:
                return table
            time.sleep(0.05)


def by(table, name):
    """{dimension value: sum} of one metric with one dimension besides the stage."""
    return {dims[0][1]: row["sum"] for (metric, dims), row in table.items() if metric == name and len(dims) == 1}


def count(table, name, **dims):
    row = table.get((name, tuple(dims.items())))
    return row["sum"] if row else 0


def post(stack, path, body):
    return requests.post(stack.app_url + path, json=body, timeout=30, headers={"Origin": stack.app_url})


def test_a_sign_in_and_its_mistakes_emit_their_metrics(devstack):
    email = f"metrics-{uuid.uuid4().hex[:10]}@example.com"
    seen = StackMetrics(devstack)
    started = post(devstack, "/auth/start", {"email": email}).json()
    wrong = post(devstack, "/auth/finish", {"email": email, "session": started["session"],
                                            "token": "eyJ0eXAiOiJKV1QifQ.e30.wrong-token-signature"}).json()
    assert wrong["status"] == "CHALLENGE"
    token = devstack.token_for(wrong["challengeUrl"], email)
    assert post(devstack, "/auth/finish", {"email": email, "session": wrong["session"], "token": token}).json()[
        "status"] == "SIGNED_IN"
    replayed = post(devstack, "/auth/finish", {"email": email, "session": wrong["session"], "token": token})
    assert replayed.status_code == 401
    assert post(devstack, "/auth/start", {"email": "not an email"}).status_code == 400

    table = seen.table(until=lambda t: count(t, "AuthStart", Outcome="invalid_input"))
    assert by(table, "AuthStart") == {"challenge_issued": 1, "invalid_input": 1}
    assert by(table, "AuthFinish") == {"wrong_answer": 1, "signed_in": 1, "expired": 1}
    assert by(table, "Responses") == {"2xx": 3, "4xx": 2}
    assert by(table, "MethodProven") == {"EMAIL_OTP": 1}
    assert count(table, "SignUps") == 1
    for function in ("pre_sign_up", "define_auth_challenge", "create_auth_challenge",
                     "verify_auth_challenge_response"):
        assert table[("TriggerDuration", (("Function", function),))]["samples"] >= 1, function
    assert table[("AuthsignalDuration", (("Function", "create_auth_challenge"),))]["samples"] == 2  # two rounds
    assert table[("AuthsignalDuration", (("Function", "verify_auth_challenge_response"),))]["samples"] == 2
    assert table[("CognitoDuration", (("Function", "verify_auth_challenge_response"),))]["samples"] == 1  # verified
    assert not any(name in ("TriggerError", "BudgetExhausted", "AuthsignalMisconfigured") for name, _ in table)


def test_refusals_and_outages_emit_their_outcomes(devstack):
    seen = StackMetrics(devstack)
    blocked = f"blocked-{uuid.uuid4().hex[:10]}@example.com"
    tenant = requests.get(f"{devstack.authsignal_url}/_dev/tenant", timeout=5).json()
    requests.post(f"{devstack.authsignal_url}/_dev/tenant", timeout=5,
                  json={"rules": {**tenant["rules"], blocked: "BLOCK"}}).raise_for_status()
    try:
        assert post(devstack, "/auth/start", {"email": blocked}).status_code == 403
    finally:
        requests.post(f"{devstack.authsignal_url}/_dev/tenant", json={"rules": tenant["rules"]}, timeout=5)
    email = f"faults-{uuid.uuid4().hex[:10]}@example.com"
    devstack.fault("cognito", "InitiateAuth", "TooManyRequestsException", count=5)
    assert post(devstack, "/auth/start", {"email": email}).status_code == 429
    devstack.fault("cognito", "InitiateAuth", "TooManyRequestsException", count=0)
    devstack.fault("cognito", "InitiateAuth", "InternalErrorException", count=5)
    assert post(devstack, "/auth/start", {"email": email}).status_code == 503
    devstack.fault("cognito", "InitiateAuth", "InternalErrorException", count=0)
    devstack.fault("authsignal", "track", "401")  # a wrong key or region
    assert post(devstack, "/auth/start", {"email": email}).status_code == 500

    table = seen.table(until=lambda t: count(t, "AuthStart", Outcome="not_configured"))
    assert by(table, "AuthStart") == {"blocked": 1, "rate_limited": 1, "unavailable": 1, "not_configured": 1}
    assert by(table, "AuthsignalMisconfigured") == {"create_auth_challenge": 1}
    # Create refused on purpose (blocked, misconfigured): outcomes, not errors that page someone.
    assert count(table, "TriggerError", Function="create_auth_challenge") == 0
    assert by(table, "Responses") == {"4xx": 2, "5xx": 2}


def test_the_cleanup_counts_what_it_deleted(client, local_env, capsys):
    scheduled = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                resources=[])
    answer = client.lambda_.invoke("delete_unverified_users", scheduled)
    table = summarize(emf_lines(capsys.readouterr().out))
    assert table[("CleanupDeletions", (("Stage", "local"),))]["sum"] == answer.payload["deleted"]


def test_make_metrics_sums_the_last_run(devstack, capsys):
    from devstack.metrics import main

    assert main([os.path.join(devstack.project_dir, "metrics.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "AuthStart" in out and "TriggerDuration" in out and "Function=create_auth_challenge" in out


def test_the_template_carries_the_alarms_as_defined():
    from triggers import alarms

    with open(alarms.TEMPLATE) as handle:
        template = json.load(handle)
    assert template == alarms.template_with_alarms(template), "run: python -m triggers.alarms --write-template"
    assert {key for key, resource in template["Resources"].items()
            if resource.get("Type") == "AWS::CloudWatch::Alarm"} == set(alarms.TEMPLATE_KEYS.values())


def test_the_authorizer_counts_each_verdict(capsys, monkeypatch):
    from chalice.app import AuthRequest

    from chalicelib import authorizer

    monkeypatch.setenv("APP_STAGE", "local")
    monkeypatch.setenv("COGNITO_USER_POOL_ID", "us-east-1_Pool0001")
    monkeypatch.setenv("COGNITO_CLIENT_ID", "client0001")
    request = AuthRequest("TOKEN", "Bearer a.b.c", "arn:aws:execute-api:us-east-1:1:a/api/GET/api/me")
    try:
        authorizer.authorize(request)  # a malformed token: refused before any key is fetched
    except Exception as answer:  # noqa: BLE001 - under chalice.test the refusal is the local gateway's error
        assert getattr(answer, "CODE", None) == 401
    table = summarize(emf_lines(capsys.readouterr().out))
    assert table[("AccessTokens", (("Stage", "local"), ("Outcome", "refused")))]["sum"] == 1
    assert metrics.function.get() == "cognito_access_token"
