"""A trigger's network budget: calls inside a trigger share it, calls outside keep their timeouts."""
import pytest

from chalicelib import aws_json, budget
from tests.test_aws_json import TARGET, serving


def test_outside_a_trigger_timeouts_are_as_given():
    assert budget.timeouts(2, 8) == (2, 8)


def test_a_fresh_budget_leaves_a_calls_timeouts_alone():
    seen = budget.network_budget(lambda event, context: budget.timeouts(0.5, 1.5))(None, None)
    assert seen == (0.5, 1.5)
    assert budget.timeouts(0.5, 1.5) == (0.5, 1.5)  # the handler's budget ended with it


def test_a_hung_call_ends_within_the_budget_and_leaves_the_next_call_the_rest(monkeypatch):
    monkeypatch.setattr(budget, "TRIGGER_NETWORK_SECONDS", 0.4)

    def handler(event, context):
        assert budget.timeouts(0.5, 1.5) == pytest.approx((0.1, 0.3), abs=0.01)  # 0.4 s shared 1 : 3
        with serving(("hang", b"")) as (_, url):
            # Our read timeout, not the server: it would hold the answer for 10 s.
            with pytest.raises(aws_json.AwsUnavailable, match="TimeoutError"):
                aws_json.call(url, TARGET, {}, 0.5, 10)
        return budget.timeouts(0.5, 1.5)

    connect, read = budget.network_budget(handler)(None, None)
    # The hung call waited at least its read share (10/10.5 of the 0.4 s): little is left.
    assert connect + read <= 0.4 * (1 - 10 / 10.5) + 2 * budget._FLOOR_SECONDS
