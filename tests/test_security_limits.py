"""The limits of /auth/start end to end: a dev stack of its own with small limits, over real HTTP
(chalice local gives the app the TCP peer as sourceIp, as API Gateway does), its DynamoDB
(moto's server) behind a proxy this module controls, to take the store down or throttle it.

Each test sends from its own loopback addresses (127.0.0.x), so each is a client of its own.
Windows are not waited out: a counter's item is written or removed in the store, as the
clock or TTL would."""
import http.client
import http.server
import json
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import limits
from tests.conftest import ROOT, running_devstack
from tests.security_helpers import User, store_proxy

pytestmark = pytest.mark.devstack

PER_ADDRESS, PER_CLIENT, SIGN_UPS_PER_CLIENT = 3, 8, 4
FLOOR_SECONDS = 0.25  # the local stage's AUTH_START_MIN_SECONDS
TABLE = "cognito-authsignal-local-limits"


StoreProxy = store_proxy()


@pytest.fixture(scope="module")
def stack():
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StoreProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    project_dir = os.path.join(ROOT, ".devstack", f"project-limits-{os.getpid()}")
    settings = {"DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_port}",
                "LIMIT_START_PER_ADDRESS": f"{PER_ADDRESS}/900", "LIMIT_START_PER_ADDRESS_DAY": "50/86400",
                "LIMIT_START_PER_CLIENT": f"{PER_CLIENT}/900",
                "LIMIT_SIGN_UPS_PER_CLIENT": f"{SIGN_UPS_PER_CLIENT}/3600", "LIMIT_SIGN_UPS_TOTAL": "10000/3600"}
    args = [a for name, value in settings.items() for a in ("--set", f"{name}={value}")]
    with running_devstack(*args, project_dir=project_dir) as dev:
        StoreProxy.target, StoreProxy.mode = dev.dynamodb_url, "forward"
        yield dev
    proxy.shutdown()
    shutil.rmtree(project_dir, ignore_errors=True)


@pytest.fixture
def store_mode():
    yield lambda mode: setattr(StoreProxy, "mode", mode)
    StoreProxy.mode = "forward"


_next_client = iter(range(2, 250))


def new_client():
    """A loopback address no other test sends from: a client of its own."""
    return f"127.0.0.{next(_next_client)}"


def start(stack, email, source, headers=None):
    """POST /auth/start from `source` (the TCP peer). Returns (status, headers, body, seconds)."""
    host, port = stack.app_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20, source_address=(source, 0))
    began = time.monotonic()
    try:
        connection.request("POST", "/auth/start", body=json.dumps({"email": email}),
                           headers={"Content-Type": "application/json", "Origin": stack.app_url, **(headers or {})})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), json.loads(answer.read()), time.monotonic() - began
    finally:
        connection.close()


def fresh_email(tag):
    return f"limits-{tag}-{uuid.uuid4().hex[:10]}@example.com"


def dynamodb(stack):
    import boto3

    return boto3.client("dynamodb", endpoint_url=stack.dynamodb_url, region_name="us-east-1",
                        aws_access_key_id="devstack", aws_secret_access_key="devstack")


def address_items(stack, email, rule="address"):
    """The keys of `email`'s counters for `rule` (the test holds the local stage's secret)."""
    key = limits.address_key(limits.keys_secret(stack.local_env()["COGNITO_CLIENT_SECRET"]), email)
    found = dynamodb(stack).scan(TableName=TABLE)["Items"]
    return [item for item in found if item["k"]["S"].startswith(f"{rule}#{key}#")]


def cognito_has(stack, email):
    import boto3

    cognito = boto3.client("cognito-idp", endpoint_url=stack.cognito_url, region_name="us-east-1",
                           aws_access_key_id="devstack", aws_secret_access_key="devstack")
    try:
        cognito.admin_get_user(UserPoolId=stack.local_env()["COGNITO_USER_POOL_ID"], Username=email)
        return True
    except cognito.exceptions.UserNotFoundException:
        return False


def record(record_property, over_limit):
    """For `make security`: requests sent past a limit, and how many of them were answered 200.
    Recorded before the assertions, so a failing test still counts what got through."""
    record_property("limit_hostile_requests", len(over_limit))
    record_property("limit_let_through", sum(1 for answer in over_limit if answer[0] == 200))


def assert_limited(status, headers, body, seconds):
    assert status == 429, (status, body)
    assert set(body) == {"error"} and body["error"]["code"] == "rate_limited", body
    assert "Try again in" in body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 86400
    assert seconds >= FLOOR_SECONDS - 0.01, f"a refusal answered in {seconds:.3f} s, under the floor"
    assert headers.get("X-Content-Type-Options") == "nosniff"  # the app's security headers, as on any answer


def shape(body):
    return {key: sorted(value) if isinstance(value, dict) else type(value).__name__ for key, value in body.items()}


def test_the_fourth_round_for_an_address_is_refused_alike_for_a_new_and_an_existing_one(stack, record_property):
    existing, new, other = fresh_email("existing"), fresh_email("new"), fresh_email("other")
    # Each round from a client of its own: only the address's limit is in play.
    for _ in range(PER_ADDRESS):
        status, _, body, _ = start(stack, existing, new_client())
        assert status == 200 and body["status"] == "CHALLENGE", body
    assert cognito_has(stack, existing)
    refused_existing = start(stack, existing, new_client())

    # A new address whose count is full (as after three rounds that Cognito failed): the same
    # answer, before Cognito is asked (no user is made).
    key = limits.address_key(limits.keys_secret(stack.local_env()["COGNITO_CLIENT_SECRET"]), new)
    window_start, window_end = limits.window(time.time(), 900)
    dynamodb(stack).put_item(TableName=TABLE, Item={"k": {"S": f"address#{key}#{window_start}"},
                                                    "n": {"N": str(PER_ADDRESS)}, "expires": {"N": str(window_end)}})
    refused_new = start(stack, new, new_client())
    record(record_property, [refused_existing, refused_new])
    assert_limited(*refused_existing)
    assert_limited(*refused_new)
    assert not cognito_has(stack, new)
    assert shape(refused_new[2]) == shape(refused_existing[2])
    assert refused_new[2]["error"]["message"].split(" Try again")[0] == \
        refused_existing[2]["error"]["message"].split(" Try again")[0]

    status, _, body, _ = start(stack, other, new_client())  # another address: unaffected
    assert status == 200, body

    # The window ends: TTL removes its item (DynamoDB deletes it some time after `expires`).
    for item in address_items(stack, existing):
        dynamodb(stack).delete_item(TableName=TABLE, Key={"k": item["k"]})
    status, _, body, _ = start(stack, existing, new_client())
    assert status == 200, body


def test_one_client_past_its_limit_is_refused_while_another_signs_in(stack, record_property):
    # Addresses that have accounts (made from elsewhere): this client's rounds make no sign-ups,
    # so only its own /auth/start limit is in play (sign-ups have theirs: the next test).
    victims = [fresh_email("victim") for _ in range(PER_CLIENT + 3)]
    for victim in victims:
        assert start(stack, victim, new_client())[0] == 200
    hostile = new_client()
    answers = [start(stack, victim, hostile) for victim in victims[:PER_CLIENT]]
    assert [a[0] for a in answers] == [200] * PER_CLIENT
    over = [start(stack, victim, hostile) for victim in victims[PER_CLIENT:]]
    # A forged X-Forwarded-For does not move the caller to another client's count.
    forged = start(stack, victims[0], hostile, headers={"X-Forwarded-For": "198.51.100.7"})
    record(record_property, over + [forged])
    for answer in over:
        assert_limited(*answer)
    assert_limited(*forged)

    # Meanwhile another client signs in, all the way.
    other = new_client()
    email = fresh_email("person")
    status, _, challenge, _ = start(stack, email, other)
    assert status == 200, challenge
    user = User(stack, email)
    token = user.prove(challenge["challengeUrl"])
    finished = user.finish(challenge["session"], token)
    assert finished.status_code == 200 and finished.json()["status"] == "SIGNED_IN", finished.text[:300]


def test_sign_ups_per_client_stop_the_flood_before_cognito_grows(stack, record_property):
    flood = new_client()
    existing = fresh_email("existing")
    assert start(stack, existing, new_client())[0] == 200
    made = [fresh_email("signup") for _ in range(SIGN_UPS_PER_CLIENT + 1)]
    answers = [start(stack, email, flood) for email in made]
    # Over its sign-up limit the client gets the same answer for an address that has an account.
    for_existing = start(stack, existing, flood)
    record(record_property, [answers[-1], for_existing])
    assert [a[0] for a in answers] == [200] * SIGN_UPS_PER_CLIENT + [429]
    assert_limited(*answers[-1])
    assert not cognito_has(stack, made[-1])
    assert_limited(*for_existing)
    assert shape(for_existing[2]) == shape(answers[-1][2])


def test_fifty_parallel_rounds_for_one_address_admit_exactly_the_limit(stack, record_property):
    email, barrier = fresh_email("parallel"), threading.Barrier(50, timeout=30)
    sources = [f"127.0.1.{i}" for i in range(1, 51)]  # 50 clients: only the address's limit is in play

    def one(source):
        barrier.wait()
        return start(stack, email, source)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(one, sources))
    statuses = [a[0] for a in answers]
    record_property("limit_hostile_requests", 50 - PER_ADDRESS)
    record_property("limit_let_through", max(0, statuses.count(200) - PER_ADDRESS))
    assert statuses.count(200) == PER_ADDRESS and statuses.count(429) == 50 - PER_ADDRESS, statuses
    for answer in answers:
        if answer[0] == 429:
            assert_limited(*answer)
    assert int(address_items(stack, email)[0]["n"]["N"]) == PER_ADDRESS  # refused rounds are not counted


def app_lines(stack, since):
    return [line for line in stack.log[since:] if line.startswith("[app]")]


@pytest.mark.parametrize("fault", ["down", "throttle"])
def test_store_faults_let_returning_users_in_and_refuse_sign_ups(stack, store_mode, fault):
    existing, new = fresh_email("existing"), fresh_email("new")
    assert start(stack, existing, new_client())[0] == 200
    since = len(stack.log)
    store_mode(fault)
    status, _, body, _ = start(stack, existing, new_client())
    assert status == 200 and body["status"] == "CHALLENGE", body  # open for a returning user
    status, headers, body, _ = start(stack, new, new_client())
    assert status == 503 and body["error"]["code"] == "unavailable" and headers["Retry-After"], body  # closed
    assert not cognito_has(stack, new)
    time.sleep(0.3)  # the relay thread's last lines
    lines = [line for line in app_lines(stack, since) if "Limits store unavailable" in line]
    records = [json.loads(line.removeprefix("[app] ")) for line in lines if line.startswith("[app] {")]
    assert len(records) == 3, lines  # one per occurrence: the two starts let through, the sign-up refused
    assert sum("fails closed" in r["message"] for r in records) == 1, records
    assert not any("@" in line for line in lines), lines
    store_mode("forward")
    # Back: the new address signs up now, and the counts went on from where they were.
    assert start(stack, new, new_client())[0] == 200
    assert int(address_items(stack, existing)[0]["n"]["N"]) == 1
