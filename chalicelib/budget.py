"""Network budgets: all the calls of one trigger, or of one API request, end within a deadline.

Cognito waits 5 s for a trigger, cold start included, then invokes it again (3 attempts).
Each call keeps its own (connect, read) timeouts; inside a budget they are also cut to what
is left of it, so a trigger's worst case is its cold start plus this budget however many calls
(and retries: chalicelib.aws_retry) it makes (`make bench` prints both per trigger).

An API request has a budget too (`API_NETWORK_SECONDS`): API Gateway gives up at 29 s, and
/auth/start makes up to four Cognito calls of up to 10 s each, plus their retries.
"""
import contextlib
import functools
import threading
import time

TRIGGER_NETWORK_SECONDS = 3.0
# Half of API Gateway's 29 s: what the route's calls, their retries and their backoff may take
# together. The other half covers a cold start and the /auth/start floor with room to spare.
API_NETWORK_SECONDS = 14.0
# Below this a call cannot succeed; it still goes out and times out at once.
_FLOOR_SECONDS = 0.001

_local = threading.local()


@contextlib.contextmanager
def deadline(seconds, clock=time.monotonic):
    """Every call inside ends within `seconds` (or the enclosing budget, if that ends sooner)."""
    outer = getattr(_local, "until", None)
    _local.until = clock() + seconds if outer is None else min(outer, clock() + seconds)
    try:
        yield
    finally:
        _local.until = outer


def network_budget(handler):
    """Run a trigger handler under the budget (per thread: the dev stack runs triggers in threads)."""

    @functools.wraps(handler)
    def run(event, context):
        with deadline(TRIGGER_NETWORK_SECONDS):
            return handler(event, context)

    return run


def left(clock=time.monotonic):
    """Seconds left of this thread's budget, or None outside one."""
    until = getattr(_local, "until", None)
    return None if until is None else until - clock()


def timeouts(connect, read):
    """(connect, read) for the next call: as given outside a budget; inside, cut so that
    both together fit in what is left, shared in their own proportion."""
    remaining = left()
    if remaining is None:
        return connect, read
    remaining = max(remaining, _FLOOR_SECONDS)
    if connect + read <= remaining:
        return connect, read
    _local.exhausted = True  # this call gets less than its own timeouts
    return (max(remaining * connect / (connect + read), _FLOOR_SECONDS),
            max(remaining * read / (connect + read), _FLOOR_SECONDS))


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
