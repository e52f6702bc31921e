"""A trigger's network budget: all its calls together end within `TRIGGER_NETWORK_SECONDS`.

Cognito waits 5 s for a trigger, cold start included, then invokes it again (3 attempts).
Each call keeps its own (connect, read) timeouts; inside a trigger they are also cut to what
is left of the budget, so a trigger's worst case is its cold start plus this budget however
many calls it makes (`make bench` prints both per trigger).
"""
import functools
import threading
import time

TRIGGER_NETWORK_SECONDS = 3.0
# Below this a call cannot succeed; it still goes out and times out at once.
_FLOOR_SECONDS = 0.001

_local = threading.local()


def network_budget(handler):
    """Run a trigger handler under the budget (per thread: the dev stack runs triggers in threads)."""

    @functools.wraps(handler)
    def run(event, context):
        _local.until = time.monotonic() + TRIGGER_NETWORK_SECONDS
        try:
            return handler(event, context)
        finally:
            _local.until = None

    return run


def timeouts(connect, read):
    """(connect, read) for the next call: as given outside a trigger; inside, cut so that
    both together fit in what is left, shared in their own proportion."""
    until = getattr(_local, "until", None)
    if until is None:
        return connect, read
    left = max(until - time.monotonic(), _FLOOR_SECONDS)
    if connect + read <= left:
        return connect, read
    _local.exhausted = True  # this call gets less than its own timeouts
    return max(left * connect / (connect + read), _FLOOR_SECONDS), max(left * read / (connect + read), _FLOOR_SECONDS)


def exhausted():
    """Whether a call of this thread's last budgeted run got less time than its own timeouts."""
    return getattr(_local, "exhausted", False)


def start_timings():
    """Record (host, seconds) of each call this thread makes from now, and whether one was cut
    by the budget, for a trigger's metrics."""
    _local.timings = []
    _local.exhausted = False


def took(host, seconds):
    if getattr(_local, "timings", None) is not None:
        _local.timings.append((host, seconds))


def stop_timings():
    """What was recorded since start_timings(); recording stops (the API function never starts it)."""
    recorded, _local.timings = getattr(_local, "timings", None) or [], None
    return recorded
