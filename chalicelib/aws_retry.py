"""Retries as botocore's standard mode makes them (botocore/retries/standard.py), inside a budget.

- At most `MAX_ATTEMPTS` (3) attempts in all.
- Retryable: throttling error codes (below) and a 429 without one; transient codes, HTTP 500,
  502, 503, 504; connection errors (refused, reset, timed out). Neither Cognito's nor SSM's
  model marks any further error as retryable.
- Backoff before attempt i+1: random(0, 1) * min(scale * 2**(i-1), 20 s), scale 1 s after a
  throttle and 50 ms otherwise; raised to `x-amz-retry-after` (ms) if the answer has it, up
  to 5 s more.
- A retry quota per process (500; 5 per throttled retry, 14 per other; a success gives back
  what its retry took, or 1): a long outage stops costing retries.
Two things botocore does not do: a retry is skipped when its backoff and a useful attempt do not
fit in what is left of the budget (chalicelib.budget), and a call that is not safe to repeat
(`safe=False`) is retried only when the service cannot have acted on it: a throttle (refused
before it runs) or a connection that never opened.
"""
import random as _random
import threading
import time

from chalicelib import budget

MAX_ATTEMPTS = 3
MAX_BACKOFF_SECONDS = 20
THROTTLING_SCALE_SECONDS = 1.0
TRANSIENT_SCALE_SECONDS = 0.05
RETRY_AFTER_MAX_ADDITIONAL_SECONDS = 5
# A retry is worth making only if this much of the budget is left after its backoff.
MIN_ATTEMPT_SECONDS = 0.25

TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})

THROTTLING = "throttling"
TRANSIENT = "transient"


def kind(code=None, status=None, unavailable=False):
    """THROTTLING, TRANSIENT or None (not retryable): `code`/`status` of an error answer, or
    `unavailable` for no answer at all."""
    if unavailable:
        return TRANSIENT
    if code in THROTTLING_CODES or (status == 429 and code == str(status)):
        return THROTTLING  # a 429 with no error code of its own: botocore's status check
    if code in TRANSIENT_CODES or status in TRANSIENT_STATUSES:
        return TRANSIENT
    return None


def backoff(error_kind, attempt, random=_random.random, retry_after_ms=None):
    """Seconds to wait after failed attempt `attempt` (1-based)."""
    scale = THROTTLING_SCALE_SECONDS if error_kind == THROTTLING else TRANSIENT_SCALE_SECONDS
    delay = random() * min(scale * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    try:
        after = int(retry_after_ms) / 1000.0 if retry_after_ms is not None else None
    except (TypeError, ValueError, OverflowError):
        after = None
    if after is not None and after >= 0:
        delay = max(delay, min(after, delay + RETRY_AFTER_MAX_ADDITIONAL_SECONDS))
    return delay


class Quota:
    """botocore's RetryQuota with its costs (retries/quota.py, standard.RetryQuotaChecker)."""

    CAPACITY, RETRY_COST, THROTTLING_COST, NO_RETRY_INCREMENT = 500, 14, 5, 1

    def __init__(self):
        self.available = self.CAPACITY
        self._lock = threading.Lock()

    def acquire(self, error_kind):
        cost = self.THROTTLING_COST if error_kind == THROTTLING else self.RETRY_COST
        with self._lock:
            if cost > self.available:
                return 0
            self.available -= cost
            return cost

    def release(self, amount):
        with self._lock:
            self.available = min(self.CAPACITY, self.available + amount)


QUOTA = Quota()


class Failure(Exception):
    """What `attempt` raises for a failed attempt, for `run` to judge."""

    def __init__(self, error, code=None, status=None, unavailable=False, sent=True, retry_after_ms=None):
        super().__init__(str(error))
        self.error = error
        self.kind = kind(code, status, unavailable)
        # Not safe to repeat unless the service cannot have acted: a throttle, or no connection.
        self.not_acted_on = self.kind == THROTTLING or (unavailable and not sent)
        self.retry_after_ms = retry_after_ms


def run(attempt, safe, *, quota=QUOTA, left=budget.left, sleep=time.sleep, random=_random.random,
        max_attempts=MAX_ATTEMPTS):
    """Call `attempt()` until it returns or fails for good; re-raise its last error.

    `attempt` raises Failure; `safe` says whether the call may be repeated after the service
    may have acted on it. Returns (result, attempts made)."""
    number, acquired = 1, 0
    while True:
        try:
            result = attempt()
        except Failure as failure:
            if not _should_retry(failure, safe, number, max_attempts):
                raise failure.error from None
            delay = backoff(failure.kind, number, random, failure.retry_after_ms)
            remaining = left()
            if remaining is not None and remaining - delay < MIN_ATTEMPT_SECONDS:
                raise failure.error from None  # the retry cannot fit in the budget
            acquired = quota.acquire(failure.kind)
            if not acquired:
                raise failure.error from None
            sleep(delay)
            number += 1
            continue
        quota.release(acquired or Quota.NO_RETRY_INCREMENT)
        return result, number


def _should_retry(failure, safe, number, max_attempts):
    return number < max_attempts and failure.kind is not None and (safe or failure.not_acted_on)
