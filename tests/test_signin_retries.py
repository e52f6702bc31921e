"""A sign-in rides out Cognito's throttles, 5xx and reset connections, inside its budget.

The Cognito emulator's faults, counted by its /_dev/stats; times on the test's own clock,
asserted as "within the budget plus slack", not as a benchmark."""
import contextlib
import time

import pytest

from chalicelib import aws_retry, budget
from tests.test_api import assert_error, body, post

SLACK_SECONDS = 2.0
# The longest a throttled call can back off in all: attempts 1 and 2, random(0, 1) * 1 s * 2**i.
MAX_THROTTLE_BACKOFF = aws_retry.THROTTLING_SCALE_SECONDS * (1 + 2)


@contextlib.contextmanager
def faults(devstack, operation, fault, count):
    """Inject `count` faults; yields a list that holds, afterwards, the attempts Cognito saw."""
    before = devstack.stats("cognito")["calls"].get(operation, 0)
    devstack.fault("cognito", operation, fault, count)
    attempts = []
    try:
        yield attempts
    finally:
        devstack.fault("cognito", operation, fault, 0)
        attempts.append(devstack.stats("cognito")["calls"].get(operation, 0) - before)


@pytest.fixture
def returning(client, devstack, email):
    """An email that already has an account (its first start signed it up)."""
    assert post(client, "/auth/start", {"email": email}).status_code == 200
    return email


def timed(call):
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("fault", ["TooManyRequestsException", "InternalErrorException", "reset"])
def test_start_succeeds_after_failed_attempts(client, devstack, returning, fault, count):
    with faults(devstack, "InitiateAuth", fault, count) as attempts:
        response = post(client, "/auth/start", {"email": returning})
    assert response.status_code == 200, response.body
    assert body(response)["status"] == "CHALLENGE"
    assert attempts == [count + 1]


@pytest.mark.parametrize("fault,status", [("TooManyRequestsException", 429), ("InternalErrorException", 503),
                                          ("reset", 503)])
def test_start_gives_up_after_three_attempts_well_inside_its_budget(client, devstack, returning, fault, status):
    with faults(devstack, "InitiateAuth", fault, 5) as attempts:
        response, seconds = timed(lambda: post(client, "/auth/start", {"email": returning}))
    assert_error(response, status)
    assert attempts == [aws_retry.MAX_ATTEMPTS]
    assert seconds < min(budget.API_NETWORK_SECONDS, MAX_THROTTLE_BACKOFF) + SLACK_SECONDS


def test_finish_rides_out_throttles(client, devstack, returning):
    started = body(post(client, "/auth/start", {"email": returning}))
    token = devstack.token_for(started["challengeUrl"], returning)
    with faults(devstack, "RespondToAuthChallenge", "TooManyRequestsException", 2) as attempts:
        response = post(client, "/auth/finish", {"email": returning, "session": started["session"], "token": token})
    assert body(response)["status"] == "SIGNED_IN", response.body
    assert attempts == [3]


@pytest.mark.parametrize("fault", ["InternalErrorException", "reset"])
def test_finish_is_not_repeated_after_cognito_may_have_used_the_session(client, devstack, returning, fault):
    # RespondToAuthChallenge uses up its Session: after a 5xx or a reset the answer may have
    # been taken, and a repeat would only be "session can only be used once".
    started = body(post(client, "/auth/start", {"email": returning}))
    token = devstack.token_for(started["challengeUrl"], returning)
    with faults(devstack, "RespondToAuthChallenge", fault, 1) as attempts:
        response = post(client, "/auth/finish", {"email": returning, "session": started["session"], "token": token})
    assert_error(response, 503, "unavailable")
    assert attempts == [1]


def new_user_finish(client, devstack, email):
    started = body(post(client, "/auth/start", {"email": email}))
    token = devstack.token_for(started["challengeUrl"], email)
    return lambda: post(client, "/auth/finish", {"email": email, "session": started["session"], "token": token})


def test_the_verify_triggers_admin_call_is_retried_inside_the_trigger(client, devstack, email):
    finish = new_user_finish(client, devstack, email)
    with faults(devstack, "AdminUpdateUserAttributes", "TooManyRequestsException", 1) as attempts:
        response = finish()
    assert body(response)["status"] == "SIGNED_IN", response.body
    assert attempts == [2]


def test_the_verify_trigger_gives_up_inside_its_network_budget(client, devstack, email):
    finish = new_user_finish(client, devstack, email)
    with faults(devstack, "AdminUpdateUserAttributes", "TooManyRequestsException", 5) as attempts:
        response, seconds = timed(finish)
    assert_error(response, 503, "unavailable")  # the trigger failed: Cognito refused the sign-in
    assert 1 <= attempts[0] <= aws_retry.MAX_ATTEMPTS  # as many as fit in the trigger's 3 s
    assert seconds < budget.TRIGGER_NETWORK_SECONDS + SLACK_SECONDS
