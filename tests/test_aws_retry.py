"""Retries as botocore's standard mode makes them, inside the caller's budget.

botocore's own retry classes are the oracle for which answers are retried and how long to wait;
the Cognito emulator's faults for how many attempts boto3 (standard mode) and our client make.
"""
import contextlib

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries import standard

from chalicelib import aws_json, aws_retry
from chalicelib.cognito_gateway import TARGET
from tests.conftest import free_port
from tests.test_aws_json import serving



def _operation_model(name="InitiateAuth"):
    import botocore.session

    return botocore.session.Session().get_service_model("cognito-idp").operation_model(name)


def botocore_context(code, status, attempt=1, headers=None):
    """botocore's view of one failed attempt (an error answer, or no answer when status is None)."""
    if status is None:
        from botocore.exceptions import EndpointConnectionError

        return standard.RetryContext(attempt_number=attempt, operation_model=_operation_model(),
                                     caught_exception=EndpointConnectionError(endpoint_url="http://x"))
    response = AWSResponse("http://x", status, headers or {}, None)
    return standard.RetryContext(attempt_number=attempt, operation_model=_operation_model(),
                                 parsed_response={"Error": {"Code": code, "Message": ""}}, http_response=response)


ANSWERS = [
    ("TooManyRequestsException", 400), ("ThrottlingException", 400), ("LimitExceededException", 400),
    ("Throttling", 400), ("SlowDown", 503), ("RequestTimeoutException", 400), ("PriorRequestNotComplete", 400),
    ("InternalErrorException", 500), ("InternalServerError", 500), ("502", 502), ("503", 503), ("504", 504),
    ("429", 429), ("NotAuthorizedException", 400), ("UserNotFoundException", 400),
    ("UserLambdaValidationException", 400), ("UnexpectedLambdaException", 400), ("501", 501), ("400", 400),
    (None, None),  # no answer: refused, reset, timed out
]


@pytest.mark.parametrize("code,status", ANSWERS)
def test_the_same_answers_are_retried_as_botocore_retries(code, status):
    theirs = standard.StandardRetryConditions(max_attempts=3).is_retryable(botocore_context(code, status))
    ours = aws_retry.kind(code, status, unavailable=status is None) is not None
    assert ours == theirs


@pytest.mark.parametrize("code,status", [a for a in ANSWERS if a[1] is not None])
@pytest.mark.parametrize("attempt", [1, 2, 3])
@pytest.mark.parametrize("retry_after", [None, "2500", "60000", "nonsense"])
def test_backoff_is_botocores(code, status, attempt, retry_after):
    headers = {"x-amz-retry-after": retry_after} if retry_after else {}
    context = botocore_context(code, status, attempt, headers)
    backoff = standard.ExponentialBackoff(
        random=lambda: 0.7, service_name="cognito-identity-provider",
        throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter()))
    kind = aws_retry.kind(code, status) or aws_retry.TRANSIENT
    assert aws_retry.backoff(kind, attempt, lambda: 0.7, retry_after) == pytest.approx(backoff.delay_amount(context))


class Sleeps(list):
    """The sleep effect: records each backoff instead of waiting it out."""

    def __call__(self, seconds):
        self.append(seconds)


def call(url, safe=True, **effects):
    effects = {"sleep": Sleeps(), "random": lambda: 0.5, "quota": aws_retry.Quota(), **effects}
    return aws_json.call(url, TARGET + "InitiateAuth", {}, 1, 1, safe=safe, **effects)


THROTTLED = (400, b'{"__type": "TooManyRequestsException", "message": "Rate exceeded"}')
INTERNAL = (500, b'{"__type": "InternalErrorException", "message": "An internal error occurred."}')
OK = (200, b'{"Session": "s"}')


@pytest.mark.parametrize("failure,first_delay", [(THROTTLED, 0.5), (INTERNAL, 0.025)])
def test_two_failures_then_success_costs_three_attempts_and_two_backoffs(failure, first_delay):
    sleeps = Sleeps()
    with serving(failure, failure, OK) as (server, url):
        assert call(url, sleep=sleeps) == {"Session": "s"}
        assert len(server.requests) == 3
    assert sleeps == pytest.approx([first_delay, first_delay * 2])  # random 0.5 x scale x 2**i


def test_three_attempts_at_most_then_the_last_error():
    with serving(THROTTLED, THROTTLED, THROTTLED, OK) as (server, url):
        with pytest.raises(aws_json.AwsError, match="TooManyRequestsException"):
            call(url)
        assert len(server.requests) == 3


def test_a_retry_that_cannot_fit_in_the_budget_is_not_made():
    # 0.9 s of backoff and a useful attempt do not fit in the 1 s left: the throttle is the answer.
    with serving(THROTTLED, OK) as (server, url):
        with pytest.raises(aws_json.AwsError, match="TooManyRequestsException"):
            call(url, random=lambda: 0.9, left=lambda: 1.0)
        assert len(server.requests) == 1
    with serving(THROTTLED, OK) as (server, url):
        assert call(url, random=lambda: 0.5, left=lambda: 1.0) == {"Session": "s"}  # 0.5 + 0.25 fits


def test_a_call_not_safe_to_repeat_is_retried_only_when_aws_cannot_have_acted():
    with serving(INTERNAL, OK) as (server, url):
        with pytest.raises(aws_json.AwsError, match="InternalErrorException"):
            call(url, safe=False)
        assert len(server.requests) == 1  # the session may be used up: not repeated
    with serving(THROTTLED, OK) as (server, url):
        assert call(url, safe=False) == {"Session": "s"}  # refused before it ran
        assert len(server.requests) == 2
    with serving(("hang", b"")) as (server, url):
        with pytest.raises(aws_json.AwsUnavailable):
            aws_json.call(url, TARGET + "RespondToAuthChallenge", {}, 1, 0.2, safe=False, sleep=Sleeps())
        assert len(server.requests) == 1  # sent, no answer: it may have run
    sleeps = Sleeps()
    with pytest.raises(aws_json.AwsUnavailable):  # refused: never sent, so retried even so
        call(f"http://127.0.0.1:{free_port()}", safe=False, sleep=sleeps)
    assert len(sleeps) == 2


def test_a_read_timeout_is_retried_when_the_call_is_safe_to_repeat():
    with serving(("hang", b""), OK) as (server, url):
        assert aws_json.call(url, TARGET + "GetUser", {}, 1, 0.2, safe=True, sleep=Sleeps(),
                             quota=aws_retry.Quota()) == {"Session": "s"}
        assert len(server.requests) == 2


def test_the_retry_quota_stops_retries_in_a_long_outage():
    quota = aws_retry.Quota()
    quota.available = 19  # one more transient retry (14), then nothing
    with serving(INTERNAL, INTERNAL, INTERNAL) as (server, url):
        with pytest.raises(aws_json.AwsError):
            call(url, quota=quota)
        assert len(server.requests) == 2
    assert quota.available == 5
    with serving(OK) as (_, url):
        call(url, quota=quota)
    assert quota.available == 6  # a success without retries gives back 1, as botocore's


# --- the same faults through boto3 (standard mode) and our client, against the Cognito emulator

FAULTS = ["TooManyRequestsException", "LimitExceededException", "InternalErrorException",
          "ServiceUnavailableException", "reset", "NotAuthorizedException"]


@contextlib.contextmanager
def fault(devstack, operation, kind, count):
    devstack.fault("cognito", operation, kind, count)
    before = devstack.stats("cognito")["calls"].get(operation, 0)
    attempts = []
    try:
        yield attempts
    finally:
        attempts.append(devstack.stats("cognito")["calls"].get(operation, 0) - before)
        devstack.fault("cognito", operation, kind, 0)


def boto3_get_user(devstack):
    client = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url,
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"mode": "standard"}))
    try:
        client.get_user(AccessToken="not-a-token")
    except (ClientError, Exception) as error:  # noqa: BLE001 - any outcome: only the attempts count
        return type(error).__name__
    return "ok"


def our_get_user(devstack):
    try:
        aws_json.call(devstack.cognito_url, TARGET + "GetUser", {"AccessToken": "not-a-token"}, 2, 8,
                      safe=True, quota=aws_retry.Quota(), random=lambda: 0.1)
    except (aws_json.AwsError, aws_json.AwsUnavailable) as error:
        return type(error).__name__
    return "ok"


@pytest.mark.parametrize("count", [1, 2, 4])
@pytest.mark.parametrize("kind", FAULTS)
def test_our_client_makes_as_many_attempts_as_boto3(devstack, kind, count):
    with fault(devstack, "GetUser", kind, count) as theirs:
        boto3_get_user(devstack)
    with fault(devstack, "GetUser", kind, count) as ours:
        our_get_user(devstack)
    assert ours == theirs
    retryable = kind != "NotAuthorizedException"
    assert ours[0] == (min(count + 1, 3) if retryable else 1)


def test_the_emulator_refuses_an_unknown_fault(devstack):
    bad = requests.post(devstack.cognito_url + "/_dev/faults", json={"operation": "GetUser", "fault": "boom"},
                        timeout=5)
    assert bad.status_code == 400 and "reset" in bad.json()["error"]
