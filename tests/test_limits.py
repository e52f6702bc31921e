"""chalicelib.limits against a real DynamoDB endpoint (moto's server over HTTP, as the dev stack
runs it), with the clock passed in: windows pass in the test, not in minutes of sleep."""
import http.server
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import limits, settings
from tests.conftest import free_port
from tests.security_helpers import store_proxy

TABLE = "limits-test"
NOW = 1_800_057_600.0  # midnight UTC: a window boundary for 900, 3600 and 86400 s windows


@pytest.fixture(scope="module")
def dynamodb_url():
    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from triggers.limits_table import ensure_table

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    assert ensure_table(client, TABLE)  # made...
    assert ensure_table(client, TABLE) == []  # ...once: a second run changes nothing
    yield url
    server.stop()


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


def rules(address=3, address_day=5, client=6, sign_ups_client=2, sign_ups_total=4):
    return limits.Rules(limits.Rule("address", address, 900), limits.Rule("address-day", address_day, 86400),
                        limits.Rule("client", client, 900), limits.Rule("sign-ups-client", sign_ups_client, 3600),
                        limits.Rule("sign-ups-total", sign_ups_total, 3600))


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def fresh():
    return uuid.uuid4().hex


def gate(url, rules_, address, client, clock, table=TABLE):
    store = limits.Store(table=table, region="us-east-1", endpoint_url=url)
    return limits.Gate(store=store, rules=rules_, address=address, client=client, clock=clock)


def test_the_fourth_round_for_one_address_is_refused_until_its_window_ends(dynamodb_url):
    clock, address = Clock(NOW + 100), fresh()
    verdicts = [gate(dynamodb_url, rules(), address, fresh(), clock).start() for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].rule == "address" and verdicts[-1].retry_after == 800  # the window ends at NOW + 900
    assert gate(dynamodb_url, rules(), fresh(), fresh(), clock).start().allowed  # another address: unaffected
    clock.now = NOW + 900  # the next window
    assert gate(dynamodb_url, rules(), address, fresh(), clock).start().allowed


def test_the_daily_limit_holds_across_windows(dynamodb_url):
    clock, address = Clock(), fresh()
    allowed = 0
    for window in range(4):
        clock.now = NOW + window * 900
        allowed += sum(gate(dynamodb_url, rules(), address, fresh(), clock).start().allowed for _ in range(3))
    assert allowed == 5
    clock.now = NOW + 4 * 900  # a fresh quarter of an hour, the same day
    refused = gate(dynamodb_url, rules(), address, fresh(), clock).start()
    assert refused.rule == "address-day" and refused.retry_after == 86400 - 4 * 900


def test_one_client_is_refused_past_its_limit_while_another_goes_on(dynamodb_url):
    clock, client = Clock(NOW + 1), fresh()
    verdicts = [gate(dynamodb_url, rules(), fresh(), client, clock).start() for _ in range(7)]
    assert [v.allowed for v in verdicts].count(True) == 6 and verdicts[-1].rule == "client"
    assert gate(dynamodb_url, rules(), fresh(), fresh(), clock).start().allowed


def test_fifty_parallel_rounds_for_one_address_admit_exactly_the_limit(dynamodb_url):
    clock, address, barrier = Clock(NOW + 5), fresh(), threading.Barrier(50)

    def one(_):
        one_gate = gate(dynamodb_url, rules(address=7, address_day=100), address, fresh(), clock)
        barrier.wait()
        return one_gate.start().allowed

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    assert results.count(True) == 7


def test_sign_ups_per_client_then_every_address_from_it_is_refused_alike(dynamodb_url):
    clock, client = Clock(NOW + 2), fresh()
    assert [gate(dynamodb_url, rules(), fresh(), client, clock).sign_up().allowed for _ in range(3)] == \
        [True, True, False]
    # Over its sign-up limit, the client is refused before Cognito for any address, new or
    # not: the answer cannot tell them apart.
    refused = gate(dynamodb_url, rules(), fresh(), client, clock).start()
    assert not refused.allowed and refused.rule == "sign-ups-client" and refused.retry_after == 3598
    assert gate(dynamodb_url, rules(), fresh(), fresh(), clock).start().allowed


def test_sign_ups_in_total(dynamodb_url):
    clock, table_rules = Clock(NOW + 3), rules(sign_ups_total=3)
    # A fresh total: another table would share nothing, so count from what is there now.
    store = limits.Store(table=TABLE, region="us-east-1", endpoint_url=dynamodb_url)
    start, _ = limits.window(clock(), 3600)
    already = store.count(key=f"sign-ups-total#all#{start}")
    verdicts = [gate(dynamodb_url, table_rules, fresh(), fresh(), clock).sign_up() for _ in range(4)]
    assert [v.allowed for v in verdicts].count(True) == max(0, 3 - already)
    assert verdicts[-1].rule == "sign-ups-total"


# ------------------------------------------------------------------ faults


def test_a_hung_store_is_waited_on_once_per_request(monkeypatch):
    """A store that accepts but never answers: the start check waits out its timeouts, the
    sign-up check of the same request does not wait again."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setattr(limits, "READ_TIMEOUT_SECONDS", 0.3)
    try:
        one = gate(f"http://127.0.0.1:{listener.getsockname()[1]}", rules(), fresh(), fresh(), Clock())
        began = time.monotonic()
        assert one.start().store_unavailable
        waited = time.monotonic() - began
        began = time.monotonic()
        assert not one.sign_up().allowed
        assert waited >= 0.3 and time.monotonic() - began < 0.05
    finally:
        listener.close()


def test_store_down_lets_returning_users_through_and_refuses_sign_ups(caplog):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    one = gate(closed, rules(), fresh(), fresh(), Clock())
    with caplog.at_level(logging.WARNING, logger="chalicelib.limits"):
        started, signed_up = one.start(), one.sign_up()
    assert started.allowed and started.store_unavailable
    assert not signed_up.allowed and signed_up.store_unavailable
    status, code, message, headers = limits.refusal(signed_up)
    assert (status, code) == (503, "unavailable") and headers["Retry-After"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "let through" in lines[0] and "fails closed" in lines[1], lines
    assert not any("@" in line for line in lines)


Throttling = store_proxy()


@pytest.fixture
def throttling(dynamodb_url):
    Throttling.target, Throttling.seen = dynamodb_url, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_throttle_is_retried_and_counted_once(throttling, dynamodb_url, monkeypatch):
    monkeypatch.setattr("chalicelib.aws_retry.THROTTLING_SCALE_SECONDS", 0.01)  # backoff in ms, not seconds
    Throttling.throttles = 1
    clock, address = Clock(NOW + 7), fresh()
    assert gate(throttling, rules(), address, fresh(), clock).start().allowed
    assert ("application/x-amz-json-1.0", "DynamoDB_20120810.UpdateItem") in Throttling.seen
    # Nothing lost, nothing counted twice: two more rounds are admitted, the fourth is not.
    assert [gate(dynamodb_url, rules(), address, fresh(), clock).start().allowed for _ in range(3)] == \
        [True, True, False]


def test_a_store_that_stays_throttled_fails_open_for_start_and_closed_for_sign_up(throttling, monkeypatch):
    monkeypatch.setattr("chalicelib.aws_retry.THROTTLING_SCALE_SECONDS", 0.01)
    Throttling.throttles = 100
    one = gate(throttling, rules(), fresh(), fresh(), Clock())
    assert one.start() == limits.Verdict(True, store_unavailable=True)
    assert not one.sign_up().allowed


# ------------------------------------------------------------------ keys and settings


def test_keys_never_hold_the_address_or_the_ip_and_fold_what_reaches_one_mailbox():
    key = limits.keys_secret("client-secret")
    one = limits.address_key(key, "Victim@Example.com")
    assert "victim" not in one.lower() and len(one) == 32
    assert one == limits.address_key(key, "victim+1@example.com") == limits.address_key(key, "VICTIM+x@example.com")
    assert one != limits.address_key(key, "victim2@example.com")
    assert one != limits.address_key(limits.keys_secret("another"), "victim@example.com")
    assert "203.0.113" not in limits.client_key(key, "203.0.113.9")
    assert limits.client_key(key, "2001:db8:1:2::1") == limits.client_key(key, "2001:db8:1:2:ffff::9")  # one /64
    assert limits.client_key(key, "2001:db8:1:2::1") != limits.client_key(key, "2001:db8:1:3::1")
    assert limits.client_key(key, "::ffff:203.0.113.9") == limits.client_key(key, "203.0.113.9")


@pytest.mark.parametrize("seconds,text", [(1, "a minute"), (61, "2 minutes"), (900, "15 minutes"),
                                          (86400, "24 hours")])
def test_the_message_says_how_long_to_wait(seconds, text):
    status, code, message, headers = limits.refusal(limits.Verdict(False, seconds, "address"))
    assert (status, code, headers) == (429, "rate_limited", {"Retry-After": str(seconds)}) and text in message


@pytest.fixture
def limit_env(monkeypatch):
    for name in settings.LIMIT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("LIMITS_TABLE", "t")
    monkeypatch.setenv("COGNITO_REGION", "eu-west-1")
    return monkeypatch


def test_limit_settings_have_safe_defaults(limit_env):
    config = settings.limits()
    assert config.rules == limits.Rules(limits.Rule("address", 5, 900), limits.Rule("address-day", 20, 86400),
                                        limits.Rule("client", 30, 900), limits.Rule("sign-ups-client", 10, 3600),
                                        limits.Rule("sign-ups-total", 500, 3600))
    assert (config.table, config.region, config.dynamodb_endpoint_url) == ("t", "eu-west-1", None)


@pytest.mark.parametrize("value", ["5", "0/900", "5/0", "x/900", "5/999999999", "-1/60", "5/15m"])
def test_a_wrong_limit_is_refused_with_its_name(limit_env, value):
    limit_env.setenv("LIMIT_START_PER_CLIENT", value)
    with pytest.raises(settings.SettingsError, match="LIMIT_START_PER_CLIENT must be COUNT/SECONDS"):
        settings.limits()


def test_the_table_and_a_loopback_only_endpoint(limit_env):
    limit_env.delenv("LIMITS_TABLE")
    with pytest.raises(settings.SettingsError, match="LIMITS_TABLE is missing"):
        settings.limits()
    limit_env.setenv("LIMITS_TABLE", "t")
    limit_env.setenv("DYNAMODB_ENDPOINT_URL", "https://dynamodb.example.com")
    with pytest.raises(settings.SettingsError, match="only for the offline dev stack"):
        settings.limits()
    limit_env.setenv("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:8003")
    assert settings.limits().dynamodb_endpoint_url == "http://127.0.0.1:8003"
    limit_env.setenv("AWS_LAMBDA_FUNCTION_NAME", "cognito-authsignal-prod")
    with pytest.raises(settings.SettingsError, match="in a deployed Lambda"):
        settings.limits()
