"""Limits on /auth/start per address, per client and on sign-ups, counted in a DynamoDB table.

Why: on a public demo anyone can script /auth/start; each round makes Authsignal mail a code
to whatever address was typed (email bombing of a stranger) and each new address is a Cognito
user (a sign-up flood). The stage-wide API Gateway throttle is shared by everyone, so it
cannot stop one client without stopping all.

Fixed windows: one item per (rule, key, window start), its count raised by one `UpdateItem`
(`ADD n :one` under `attribute_not_exists(n) OR n < :max`): atomic, so 50 parallel requests
for one address admit exactly the limit. A refused request is not counted. DynamoDB's TTL
deletes an item after its window (`expires`). Keys are HMACs (never the address or the IP).

The store down: /auth/start is let through (a returning user still signs in; the per-address
harm is bounded by Authsignal's own limits and by WAF in front) but a sign-up is refused
(a new Cognito user cannot be taken back). Each such request logs one line, without the address.
"""
import logging
import math
from typing import NamedTuple  # not dataclasses: importing it (inspect, ast, dis) slows cold starts

log = logging.getLogger(__name__)

# One call to the store should answer in milliseconds; these keep a sick store from
# holding /auth/start (the request's network budget cuts them further: chalicelib.budget).
# The read timeout leaves room for a burst: a single-process store (the dev stack's moto) took
# over a second to reach the last of 200 calls when 50 people started at once on a busy
# machine, and a sign-up whose count times out is refused (fail closed).
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 2.0
# Items live this long after their window ends: TTL deletion is lazy (up to days), and an
# item must not vanish before its window is over.
TTL_GRACE_SECONDS = 60
TARGET = "DynamoDB_20120810."
DEV_CREDENTIALS = ("devstack", "devstack", None)
MESSAGE = ("Too many sign-in attempts from here or for this address. Try again in {wait}. "
           "If you did not ask for sign-in codes, you can ignore them.")
SIGN_UP_UNAVAILABLE = "New accounts cannot be created right now. Try again in a few minutes."


class Rule(NamedTuple):
    """At most `count` per `seconds`, under `name` (the setting it comes from names it too)."""
    name: str
    count: int
    seconds: int


class Rules(NamedTuple):
    per_address: Rule
    per_address_day: Rule
    per_client: Rule
    sign_ups_per_client: Rule
    sign_ups_total: Rule


class Verdict(NamedTuple):
    allowed: bool
    retry_after: int = 0  # whole seconds, for Retry-After
    rule: str | None = None  # which rule refused, for the log and metrics
    store_unavailable: bool = False


class StoreUnavailable(Exception):
    """The table did not answer, or answered with something other than a verdict."""


class Store:
    """The limits table through the project's AWS client (JSON 1.0, SigV4, timeouts, retries)."""

    def __init__(self, *, table, region, endpoint_url=None):
        self.table, self.region, self.endpoint_url = table, region, endpoint_url

    def _call(self, operation, params, safe):
        from chalicelib import aws_json

        try:
            return aws_json.call(self.endpoint_url or aws_json.endpoint("dynamodb", self.region),
                                 TARGET + operation, {"TableName": self.table, **params},
                                 CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, sign=(self.region, "dynamodb"),
                                 safe=safe, content_type=aws_json.CONTENT_TYPE_1_0,
                                 # The dev stack's DynamoDB (a loopback endpoint only: settings.limits)
                                 # takes any key: no real one is sent to it, none is needed to run it.
                                 credentials=DEV_CREDENTIALS if self.endpoint_url else None)
        except aws_json.AwsError as error:
            if error.code == "ConditionalCheckFailedException":
                raise
            raise StoreUnavailable(f"DynamoDB {operation} failed: {error.code}") from None
        except aws_json.AwsUnavailable as error:  # AwsNoCredentials too: nothing was sent
            raise StoreUnavailable(f"DynamoDB {operation} did not answer: {error}") from None

    def increment(self, *, key, limit, expires):
        """Count one more under `key` unless it already holds `limit`; True when counted."""
        from chalicelib import aws_json

        try:
            # Not safe to repeat: a lost answer after DynamoDB counted would count twice
            # (aws_retry repeats it only after a throttle or a connection that never opened).
            self._call("UpdateItem", {
                "Key": {"k": {"S": key}},
                "UpdateExpression": "ADD n :one SET expires = if_not_exists(expires, :expires)",
                "ConditionExpression": "attribute_not_exists(n) OR n < :max",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": str(limit)},
                                              ":expires": {"N": str(expires)}},
            }, safe=False)
        except aws_json.AwsError:  # ConditionalCheckFailedException: at the limit
            return False
        return True

    def count(self, *, key):
        """The count under `key` (0 when there is none)."""
        answer = self._call("GetItem", {"Key": {"k": {"S": key}}, "ProjectionExpression": "n"}, safe=True)
        try:
            return int(answer.get("Item", {}).get("n", {}).get("N", "0"))
        except (TypeError, ValueError, AttributeError):
            raise StoreUnavailable("DynamoDB GetItem answered an unreadable count") from None


def keys_secret(secret):
    """The HMAC key for limit keys, derived from a secret the app already has (the Cognito
    client secret): one secret fewer to manage, and a key that is useless elsewhere."""
    import hashlib
    import hmac

    return hmac.new(secret.encode(), b"cognito-authsignal limit keys v1", hashlib.sha256).digest()


def _mac(key, kind, value):
    import hashlib
    import hmac

    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def address_key(key, email):
    """The address as the limiter sees it: lower case (the pool compares emails so), a `+tag`
    dropped (most providers deliver name+x@ to name@: a bomber must not get a fresh count per tag)."""
    local, _, domain = email.lower().rpartition("@")
    return _mac(key, "address", f"{local.split('+', 1)[0] or local}@{domain}")


def client_key(key, source_ip):
    """API Gateway's `sourceIp` (from the TCP connection, never a header the caller chose); an
    IPv6 client by its /64, the block one subscriber usually holds."""
    import ipaddress

    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return _mac(key, "client", source_ip or "unknown")
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1
    if address.version == 6:
        return _mac(key, "client", str(ipaddress.ip_network(f"{address}/64", strict=False)))
    return _mac(key, "client", str(address))


def window(now, seconds):
    """(start, end) of the fixed window of `seconds` that holds `now` (epoch seconds)."""
    start = int(now // seconds) * seconds
    return start, start + seconds


def _refused(rule, now):
    return Verdict(False, retry_after=max(1, math.ceil(window(now, rule.seconds)[1] - now)), rule=rule.name)


def _take(store, rule, subject, now):
    start, end = window(now, rule.seconds)
    if store.increment(key=f"{rule.name}#{subject}#{start}", limit=rule.count, expires=end + TTL_GRACE_SECONDS):
        return Verdict(True)
    return _refused(rule, now)


def check_start(*, store, rules, address, client, now):
    """Count one /auth/start for `client` and `address` (keys from client_key/address_key).

    The client first: a flood from one client then stops before it spends anyone's address
    count. A client over its sign-up limit is refused for every address alike (only read
    here), so the limiter never tells a new address from an existing one. Fails open."""
    try:
        for rule, subject in ((rules.per_client, client), (rules.per_address, address),
                              (rules.per_address_day, address)):
            verdict = _take(store, rule, subject, now)
            if not verdict.allowed:
                return verdict
        rule = rules.sign_ups_per_client
        if store.count(key=f"{rule.name}#{client}#{window(now, rule.seconds)[0]}") >= rule.count:
            return _refused(rule, now)
    except StoreUnavailable as error:
        log.warning("Limits store unavailable (%s): this /auth/start is let through unlimited; "
                    "a sign-up it needs is refused", error)
        return Verdict(True, store_unavailable=True)
    return Verdict(True)


def check_sign_up(*, store, rules, client, now, store_down=False):
    """Count one new Cognito user for `client` and in total. Fails closed; `store_down` (this
    request's start check found the store unavailable) refuses without waiting on it again."""
    try:
        if store_down:
            raise StoreUnavailable("it did not answer this request's start check")
        for rule, subject in ((rules.sign_ups_per_client, client), (rules.sign_ups_total, "all")):
            verdict = _take(store, rule, subject, now)
            if not verdict.allowed:
                return verdict
    except StoreUnavailable as error:
        log.warning("Limits store unavailable (%s): a sign-up was refused (fails closed)", error)
        return Verdict(False, retry_after=60, rule="store_unavailable", store_unavailable=True)
    return Verdict(True)


class Gate:
    """One /auth/start's limits: what signin.start asks before Cognito and before a sign-up."""

    def __init__(self, *, store, rules, address, client, clock):
        self.store, self.rules, self.address, self.client = store, rules, address, client
        self.clock = clock  # epoch seconds, e.g. time.time
        self.store_down = False  # the start check found the store unavailable

    def start(self):
        verdict = check_start(store=self.store, rules=self.rules, address=self.address, client=self.client,
                              now=self.clock())
        self.store_down = verdict.store_unavailable
        return verdict

    def sign_up(self):
        return check_sign_up(store=self.store, rules=self.rules, client=self.client, now=self.clock(),
                             store_down=self.store_down)


_stores = {}


def gate(*, config, secret, email, source_ip, clock):
    """The Gate for one /auth/start: `config` from settings.limits(), `secret` the Cognito client
    secret (the keys' root), `email` normalised, `source_ip` API Gateway's. One Store per table
    and endpoint per process (its connection is kept alive: chalicelib.outbound)."""
    where = (config.table, config.region, config.dynamodb_endpoint_url)
    if where not in _stores:
        _stores[where] = Store(table=config.table, region=config.region, endpoint_url=config.dynamodb_endpoint_url)
    key = keys_secret(secret)
    return Gate(store=_stores[where], rules=config.rules, address=address_key(key, email),
                client=client_key(key, source_ip), clock=clock)


def wait_text(seconds):
    """'1 minute', '15 minutes', '3 hours': what a person reads in the 429's message."""
    if seconds < 60:
        return "a minute"
    if seconds < 5400:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = math.ceil(seconds / 3600)
    return f"{hours} hours"


def refusal(verdict):
    """The API's answer for a refused verdict: (status, code, message, headers)."""
    if verdict.store_unavailable:
        return 503, "unavailable", SIGN_UP_UNAVAILABLE, {"Retry-After": str(verdict.retry_after)}
    return 429, "rate_limited", MESSAGE.format(wait=wait_text(verdict.retry_after)), \
        {"Retry-After": str(verdict.retry_after)}
