"""Runs the app's trigger functions the way Lambda would for Cognito.

The functions come from the Chalice app's ``pure_lambda_functions``; each handler string
(``module.function``) is imported like the Lambda runtime does, and called with a JSON copy
of the event, a Lambda-like context and a time limit.
"""

import importlib
import json
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from typing import Any, Callable, Dict

from .errors import CognitoError

# Cognito trigger -> the Chalice function name (``name=``) that implements it.
TRIGGER_FUNCTIONS = {
    "PreSignUp": "pre_sign_up",
    "DefineAuthChallenge": "define_auth_challenge",
    "CreateAuthChallenge": "create_auth_challenge",
    "VerifyAuthChallengeResponse": "verify_auth_challenge_response",
}

UNRECOGNIZABLE = "Unrecognizable lambda output"
# Cognito waits this long for each invocation, and invokes a silent trigger again, up to
# MAX_ATTEMPTS in all (reference/cognito-custom-auth.md).
DEFAULT_TIMEOUT = 5.0
MAX_ATTEMPTS = 3
SOCKET_TIMEOUT = "%s invocation failed due to error Socket timeout while invoking Lambda function."


class LambdaContext:
    """The attributes of the Python Lambda runtime's context that code commonly reads."""

    def __init__(self, function_name: str, region: str, timeout: float):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:%s:000000000000:function:%s" % (
            region, function_name)
        self.memory_limit_in_mb = "256"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + function_name
        self.log_stream_name = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def resolve_handler(handler_string: str) -> Callable[..., Any]:
    module_name, _, attribute = handler_string.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


class TriggerRunner:
    def __init__(self, handlers: Dict[str, Callable[..., Any]], app_name: str, stage: str,
                 region: str):
        # handlers: Chalice function name -> callable(event, context)
        self._handlers = handlers
        self._app_name = app_name
        self._stage = stage
        self._region = region
        self.timeout = DEFAULT_TIMEOUT
        self._delays: Dict[str, list] = {}  # trigger -> [seconds, attempts left] (dev fault)
        self._counts: Counter = Counter()
        self._seconds: Counter = Counter()  # wall time per function
        self._counts_lock = threading.Lock()

    @classmethod
    def from_project(cls, project_dir: str, stage: str, app_name: str,
                     region: str) -> "TriggerRunner":
        """Import ``app`` from the project (os.environ must already hold the stage's
        variables) and bind each trigger to its handler string."""
        if project_dir not in sys.path:
            sys.path.insert(0, project_dir)
        app_module = importlib.import_module("app")
        chalice_app = getattr(app_module, "app")
        functions = {f.name: f for f in getattr(chalice_app, "pure_lambda_functions", [])}
        handlers = {}
        for name in TRIGGER_FUNCTIONS.values():
            if name in functions:
                handlers[name] = resolve_handler(functions[name].handler_string)
        return cls(handlers, app_name, stage, region)

    def configured(self, trigger: str) -> bool:
        return TRIGGER_FUNCTIONS[trigger] in self._handlers

    def function_name(self, trigger: str) -> str:
        return "%s-%s-%s" % (self._app_name, self._stage, TRIGGER_FUNCTIONS[trigger])

    def function_arn(self, trigger: str) -> str:
        return "arn:aws:lambda:%s:000000000000:function:%s" % (
            self._region, self.function_name(trigger))

    def counts(self) -> Dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def seconds(self) -> Dict[str, float]:
        with self._counts_lock:
            return dict(self._seconds)

    def reset_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()
            self._seconds.clear()
            self._delays.clear()

    def delay(self, trigger: str, seconds: float, attempts: int) -> None:
        """Dev fault: the next `attempts` invocations of `trigger` first sleep `seconds`
        (a slow cold start, a hung call), then run the handler as Lambda would."""
        with self._counts_lock:
            if attempts:
                self._delays[trigger] = [seconds, attempts]
            else:
                self._delays.pop(trigger, None)

    def _take_delay(self, trigger: str) -> float:
        with self._counts_lock:
            armed = self._delays.get(trigger)
            if not armed:
                return 0.0
            armed[1] -= 1
            if armed[1] <= 0:
                del self._delays[trigger]
            return armed[0]

    def invoke(self, trigger: str, event: Dict[str, Any]) -> Dict[str, Any]:
        """Call the trigger and return the event it hands back, or raise the error
        Cognito would answer with. Callers must not hold the pool's lock: triggers call
        back into this emulator.

        An invocation that has not answered within the limit is abandoned (it keeps
        running, as a Lambda would until its own timeout) and the trigger is invoked
        again with the same event, up to MAX_ATTEMPTS in all."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            done, outcome = self._attempt(trigger, event)
            if done:
                break
            log("trigger %s did not answer within %.2f s (attempt %d of %d)" % (
                TRIGGER_FUNCTIONS[trigger], self.timeout, attempt, MAX_ATTEMPTS))
        else:
            raise CognitoError("UnexpectedLambdaException", SOCKET_TIMEOUT % trigger)
        return self._result(trigger, outcome)

    def _attempt(self, trigger: str, event: Dict[str, Any]):
        name = TRIGGER_FUNCTIONS[trigger]
        handler = self._handlers[name]
        with self._counts_lock:
            self._counts[name] += 1  # every attempt is an invocation
        timeout = self.timeout
        delay = self._take_delay(trigger)
        payload = json.loads(json.dumps(event))
        context = LambdaContext(self.function_name(trigger), self._region, timeout)
        outcome: Dict[str, Any] = {}

        def run() -> None:
            try:
                if delay:
                    time.sleep(delay)
                outcome["result"] = handler(payload, context)
            except BaseException as exc:  # noqa: BLE001 - Lambda reports whatever escaped
                outcome["error"] = exc

        # A daemon thread: a trigger stuck past its limit cannot be killed, but it must
        # not keep the process alive either.
        worker = threading.Thread(target=run, name="trigger-" + name, daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(timeout)
        with self._counts_lock:
            self._seconds[name] += time.monotonic() - started
        return not worker.is_alive(), outcome

    def _result(self, trigger: str, outcome: Dict[str, Any]) -> Dict[str, Any]:
        name = TRIGGER_FUNCTIONS[trigger]
        if "error" in outcome:
            exc = outcome["error"]
            log("trigger %s raised %s%s" % (name, type(exc).__name__, _where(exc)))
            raise CognitoError(
                "UserLambdaValidationException",
                "%s failed with error %s." % (trigger, _error_message(exc)))
        try:
            # Lambda serialises the return value; anything JSON can't carry is an error.
            result = json.loads(json.dumps(outcome.get("result")))
        except (TypeError, ValueError):
            raise CognitoError("InvalidLambdaResponseException", UNRECOGNIZABLE)
        if not isinstance(result, dict) or not isinstance(result.get("response"), dict):
            raise CognitoError("InvalidLambdaResponseException", UNRECOGNIZABLE)
        return result


def _error_message(exc: BaseException) -> str:
    # Lambda's errorMessage is str(exception); an empty one still names the type.
    return str(exc) or type(exc).__name__


def _where(exc: BaseException) -> str:
    # File and line only: the message itself may carry an email or a code.
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return " at %s:%s" % (last.filename.rsplit("/", 1)[-1], last.lineno)


def log(line: str) -> None:
    sys.stderr.write("cognito: %s\n" % line)
    sys.stderr.flush()

