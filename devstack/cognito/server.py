"""HTTP front: the AWS JSON 1.1 protocol, the JWKS and the dev endpoints."""

import json
import socket
import struct
import threading
import time
import traceback
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qs

from .errors import CognitoError, status_for
from .lambdas import DEFAULT_TIMEOUT, TRIGGER_FUNCTIONS, log
from .pool import MAX_SESSION_LENGTH, MIN_SESSION_LENGTH, REVOKE_ERRORS, UserPool
from .tokens import TokenSigner

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY = 1024 * 1024
FAULT_TIMEOUT_SECONDS = 10
DEFAULT_TRIGGER_TIMEOUT = DEFAULT_TIMEOUT
# /_dev/settings switches -> the pool's Settings attribute.
FLAGS = {"preventUserExistenceErrors": "prevent_user_existence_errors", "strictUsername": "strict_username",
         "initiateAuthClientMetadata": "initiate_auth_client_metadata"}


def _operations(pool: UserPool) -> Dict[str, Tuple[Callable[[Dict[str, Any]], Dict[str, Any]], bool]]:
    """Operation -> (implementation, needs SigV4)."""
    return {
        "SignUp": (pool.sign_up, False),
        "InitiateAuth": (pool.initiate_auth, False),
        "RespondToAuthChallenge": (pool.respond_to_auth_challenge, False),
        "GetUser": (pool.get_user, False),
        "GlobalSignOut": (pool.global_sign_out, False),
        "RevokeToken": (pool.revoke_token, False),
        "AdminGetUser": (pool.admin_get_user, True),
        "AdminUpdateUserAttributes": (pool.admin_update_user_attributes, True),
        "AdminDeleteUser": (pool.admin_delete_user, True),
        "ListUsers": (pool.list_users, True),
        "DescribeUserPool": (pool.describe_user_pool, True),
        "DescribeUserPoolClient": (pool.describe_user_pool_client, True),
        # What a signed-in user may do with their own access token (devstack/cognito/accounts.py).
        "UpdateUserAttributes": (pool.update_user_attributes, False),
        "DeleteUser": (pool.delete_user, False),
        "GetUserAttributeVerificationCode": (pool.get_user_attribute_verification_code, False),
        "VerifyUserAttribute": (pool.verify_user_attribute, False),
        # Other clients of the pool, groups, admin-created users.
        "CreateUserPoolClient": (pool.create_user_pool_client, True),
        "UpdateUserPoolClient": (pool.update_user_pool_client, True),
        "CreateGroup": (pool.create_group, True),
        "GetGroup": (pool.get_group, True),
        "AdminAddUserToGroup": (pool.admin_add_user_to_group, True),
        "AdminRemoveUserFromGroup": (pool.admin_remove_user_from_group, True),
        "ListUsersInGroup": (pool.list_users_in_group, True),
        "AdminListGroupsForUser": (pool.admin_list_groups_for_user, True),
        "AdminCreateUser": (pool.admin_create_user, True),
    }


class Emulator:
    """Everything the request handler needs: the pool, call counters, injected faults."""

    def __init__(self, pool: UserPool):
        self.pool = pool
        self.operations = _operations(pool)
        self._lock = threading.Lock()
        self._calls: Counter = Counter()
        self._seconds: Counter = Counter()  # handling time per operation (triggers included)
        self._faults: Dict[str, Dict[str, Any]] = {}
        self._jwks_fetches = 0  # GETs of the JWKS: not Cognito API calls, counted apart

    def count_jwks_fetch(self) -> None:
        with self._lock:
            self._jwks_fetches += 1

    def rotate_keys(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """`{"keepOld": true}` (the default): new keys sign new tokens, the old ones stay
        published so that tokens signed before verify until they expire; false retires them."""
        keep_old = body.get("keepOld", True)
        if not isinstance(keep_old, bool):
            raise ValueError("keepOld must be true or false")
        return self.pool.signer.rotate(keep_old=keep_old)

    def sign_token(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """`{"claims": {...}}`: those claims signed with the pool's current key for their
        `token_use` ("id" or "access"), for tests of what a verifier must refuse (expired,
        not yet valid, another client or pool, ...) that only the pool's own key can make."""
        claims = body.get("claims")
        if not isinstance(claims, dict) or claims.get("token_use") not in TokenSigner.USES:
            raise ValueError('send {"claims": {...}} with token_use "id" or "access"')
        return {"token": self.pool.signer.sign(claims)}

    def count_call(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1

    def add_time(self, operation: str, seconds: float) -> None:
        with self._lock:
            self._seconds[operation] += seconds

    def take_fault(self, operation: str) -> Optional[str]:
        with self._lock:
            fault = self._faults.get(operation)
            if not fault:
                return None
            fault["count"] -= 1
            if fault["count"] <= 0:
                del self._faults[operation]
            return fault["fault"]

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            calls, seconds = dict(self._calls), dict(self._seconds)
        return {"calls": calls, "invocations": self.pool.triggers.counts(), "jwksFetches": self._jwks_fetches,
                "seconds": {"calls": seconds, "invocations": self.pool.triggers.seconds()}}

    def reset(self, state: bool) -> None:
        with self._lock:
            self._calls.clear()
            self._seconds.clear()
            self._jwks_fetches = 0
            self._faults.clear()
        self.pool.triggers.reset_counts()
        if state:
            self.pool.reset_state()
            self.pool.triggers.timeout = DEFAULT_TRIGGER_TIMEOUT

    def add_trigger_fault(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """`{"trigger": "CreateAuthChallenge", "fault": "delay", "seconds": 6, "count": 1}`:
        the next `count` invocations of that trigger sleep first (each retry is one)."""
        trigger, seconds, count = body.get("trigger"), body.get("seconds", 6), body.get("count", 1)
        if trigger not in TRIGGER_FUNCTIONS:
            raise ValueError("trigger must be one of %s" % sorted(TRIGGER_FUNCTIONS))
        if body.get("fault") != "delay":
            raise ValueError('a trigger fault must be "delay"')
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 60:
            raise ValueError("seconds must be a number from 0 to 60")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        self.pool.triggers.delay(trigger, float(seconds), count)
        return {"trigger": trigger, "fault": "delay", "seconds": seconds, "count": count}

    def add_fault(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if "trigger" in body:
            return self.add_trigger_fault(body)
        operation, fault, count = body.get("operation"), body.get("fault"), body.get("count", 1)
        if not isinstance(operation, str) or operation not in self.operations:
            raise ValueError("operation must be one of %s" % sorted(self.operations))
        if not isinstance(fault, str) or not (fault in ("timeout", "reset") or fault.endswith("Exception")):
            raise ValueError('fault must be an exception name such as "TooManyRequestsException" '
                             '(InternalErrorException answers 500), "timeout" or "reset" (the '
                             'connection is reset after the request is read, with no answer)')
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        with self._lock:
            if count == 0:
                self._faults.pop(operation, None)
            else:
                self._faults[operation] = {"fault": fault, "count": count}
            return {"faults": {k: dict(v) for k, v in self._faults.items()}}

    def change_settings(self, body: Dict[str, Any]) -> Dict[str, Any]:
        settings = self.pool.settings
        numbers = {
            "sessionValiditySeconds": "session_validity",
            "accessTokenValiditySeconds": "access_token_validity",
            "refreshTokenValiditySeconds": "refresh_token_validity",
        }
        for key, value in body.items():
            if key in numbers:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError("%s must be a non-negative number" % key)
                setattr(settings, numbers[key],
                        value if key == "sessionValiditySeconds" else int(value))
            elif key == "triggerTimeoutSeconds":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ValueError("triggerTimeoutSeconds must be a positive number")
                self.pool.triggers.timeout = float(value)
            elif key in FLAGS:
                if not isinstance(value, bool):
                    raise ValueError("%s must be true or false" % key)
                setattr(settings, FLAGS[key], value)
            elif key == "sessionLength":
                if isinstance(value, bool) or not isinstance(value, int) or not (
                        MIN_SESSION_LENGTH <= value <= MAX_SESSION_LENGTH):
                    raise ValueError("sessionLength must be an integer from %d to %d (botocore's limits)"
                                     % (MIN_SESSION_LENGTH, MAX_SESSION_LENGTH))
                settings.session_length = value
            elif key == "revokeUnknownTokenError":
                if value is not None and value not in REVOKE_ERRORS:
                    raise ValueError("revokeUnknownTokenError must be null or one of %s" % list(REVOKE_ERRORS))
                settings.revoke_unknown_token_error = value
            elif key == "attributesRequireVerificationBeforeUpdate":
                if not isinstance(value, list) or not set(value) <= {"email", "phone_number"}:
                    raise ValueError("attributesRequireVerificationBeforeUpdate must be a list of "
                                     "email / phone_number (UserAttributeUpdateSettings)")
                self.pool.require_verification_before_update = list(value)
            else:
                raise ValueError("unknown setting %s" % key)
        return {
            "sessionValiditySeconds": settings.session_validity,
            "accessTokenValiditySeconds": settings.access_token_validity,
            "refreshTokenValiditySeconds": settings.refresh_token_validity,
            "triggerTimeoutSeconds": self.pool.triggers.timeout,
            "preventUserExistenceErrors": settings.prevent_user_existence_errors,
            "attributesRequireVerificationBeforeUpdate": list(self.pool.require_verification_before_update),
            "strictUsername": settings.strict_username,
            "revokeUnknownTokenError": settings.revoke_unknown_token_error,
            "sessionLength": settings.session_length,
            "initiateAuthClientMetadata": settings.initiate_auth_client_metadata,
        }

    def seed_user(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """A user as other paths leave them (admin-created, federated, another app's
        unconfirmed sign-up), optionally back-dated: what the cleanup must not touch."""
        email, status = body.get("email"), body.get("status")
        statuses = ("UNCONFIRMED", "CONFIRMED", "FORCE_CHANGE_PASSWORD", "EXTERNAL_PROVIDER", "RESET_REQUIRED")
        if not isinstance(email, str) or not email or status not in statuses:
            raise ValueError("send {\"email\", \"status\": one of %s, \"emailVerified\", "
                             "\"ageSeconds\"}" % (statuses,))
        age = body.get("ageSeconds", 0)
        if isinstance(age, bool) or not isinstance(age, (int, float)) or age < 0:
            raise ValueError("ageSeconds must be a non-negative number")
        try:
            user = self.pool.add_user(email, status, body.get("emailVerified") is True,
                                      created=time.time() - age)
        except CognitoError as exc:
            raise ValueError(exc.message)
        return {"Username": user.sub, "UserStatus": user.status}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # Headers and body go out as two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms a call on Linux loopback).
    disable_nagle_algorithm = True
    server_version = "CognitoEmulator"
    emulator: Emulator  # set on the subclass made by make_server

    # --------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per request is written by _log instead

    def _log(self, what: str, status: int, started: float, detail: str = "") -> None:
        log("%s %d%s %dms" % (what, status, " " + detail if detail else "",
                              (time.monotonic() - started) * 1000))

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> Optional[bytes]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _json_body(self) -> Optional[Dict[str, Any]]:
        raw = self._read_body()
        if raw is None:
            return None
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # --------------------------------------------------------------- GET

    def do_GET(self) -> None:
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        pool = self.emulator.pool
        jwks_path = "/%s/.well-known/jwks.json" % pool.config.pool_id
        oidc_path = "/%s/.well-known/openid-configuration" % pool.config.pool_id
        if path == jwks_path:
            self.emulator.count_jwks_fetch()
            status, body = 200, pool.signer.jwks()
        elif path == oidc_path:
            issuer = pool.signer.issuer
            status, body = 200, {"issuer": issuer, "jwks_uri": issuer + "/.well-known/jwks.json",
                                 "id_token_signing_alg_values_supported": ["RS256"]}
        elif path == "/_dev/health":
            status, body = 200, {"status": "ok"}
        elif path == "/_dev/stats":
            status, body = 200, self.emulator.stats()
        elif path == "/_dev/attribute-codes":
            query = parse_qs(self.path.partition("?")[2])
            status, body = 200, pool.attribute_codes((query.get("username") or [""])[0])
        else:
            status, body = 404, {"error": "not found"}
        self._send(status, body)
        self._log("GET " + (path if status != 404 else "(unknown path)"), status, started)

    # --------------------------------------------------------------- POST

    def do_POST(self) -> None:
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_dev/"):
            self._dev(path, started)
        elif path == "/":
            self._aws(started)
        else:
            self._read_body()
            self._send(404, {"error": "not found"})
            self._log("POST (unknown path)", 404, started)

    def _dev(self, path: str, started: float) -> None:
        body = self._json_body()
        if body is None:
            self._send(400, {"error": "the body must be a JSON object"})
            self._log("POST " + path, 400, started)
            return
        try:
            if path == "/_dev/reset":
                self.emulator.reset(state=body.get("state") is True)
                status, answer = 200, {"reset": True, "state": body.get("state") is True}
            elif path == "/_dev/faults":
                status, answer = 200, self.emulator.add_fault(body)
            elif path == "/_dev/settings":
                status, answer = 200, self.emulator.change_settings(body)
            elif path == "/_dev/users":
                status, answer = 200, self.emulator.seed_user(body)
            elif path == "/_dev/rotate-keys":
                status, answer = 200, self.emulator.rotate_keys(body)
            elif path == "/_dev/sign-token":
                status, answer = 200, self.emulator.sign_token(body)
            else:
                status, answer = 404, {"error": "not found"}
        except ValueError as exc:
            status, answer = 400, {"error": str(exc)}
        self._send(status, answer)
        self._log("POST " + path, status, started)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0), as a load balancer or a crash would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _aws_error(self, code: str, message: str, status: Optional[int] = None) -> None:
        self._send(status or status_for(code), {"__type": code, "message": message}, CONTENT_TYPE)

    def _aws(self, started: float) -> None:
        target = self.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
        raw = self._read_body()
        if raw is None:
            self._aws_error("SerializationException", "Request body is too large or unreadable.")
            self._log(operation or "(no operation)", 400, started, "SerializationException")
            return
        entry = self.emulator.operations.get(operation)
        if entry is None:
            self._aws_error("UnknownOperationException", "Unknown operation %s" % (target or "''"))
            self._log("(unknown operation)", 400, started, "UnknownOperationException")
            return
        self.emulator.count_call(operation)
        implementation, needs_auth = entry
        status, code = 200, ""
        try:
            fault = self.emulator.take_fault(operation)
            if fault == "timeout":
                time.sleep(FAULT_TIMEOUT_SECONDS)
            elif fault == "reset":
                self._reset()
                self._log(operation, 0, started, "reset")
                return
            elif fault:
                raise CognitoError(fault, "Injected fault: %s" % fault, status_for(fault))
            if needs_auth and not self.headers.get("Authorization", "").startswith("AWS4-"):
                raise CognitoError("MissingAuthenticationTokenException",
                                   "Missing Authentication Token")
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                raise CognitoError("SerializationException", "Request body is not valid JSON.")
            if not isinstance(request, dict):
                raise CognitoError("SerializationException", "Request body must be an object.")
            result = implementation(request)
            self._send(200, result, CONTENT_TYPE)
        except CognitoError as err:
            status, code = err.status, err.code
            self._aws_error(err.code, err.message, err.status)
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer like AWS
            status, code = 500, "InternalErrorException"
            # Frames but not the message: it could quote request data.
            log("internal error in %s: %s\n%s" % (
                operation, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__))))
            self._aws_error(code, "An internal error occurred.", 500)
        self.emulator.add_time(operation, time.monotonic() - started)
        self._log(operation, status, started, code)


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    """Bind first (so ``--port 0`` has a real port) and attach the emulator later."""
    handler = type("BoundHandler", (Handler,), {})
    return _Server((host, port), handler)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog (5) resets connections when many sign-ins arrive at once.
    request_queue_size = 128


def attach(server: ThreadingHTTPServer, emulator: Emulator) -> None:
    server.RequestHandlerClass.emulator = emulator
