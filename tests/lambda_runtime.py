"""Runs one deployed function as the Lambda Python runtime does; standard library only.

    python -I -S tests/lambda_runtime.py TASK_ROOT RUNTIME_ROOT HANDLER

`-I -S`: no site-packages, no user site, no PYTHON* variables, not even this file's folder
on the path. The path is then the unzipped package (Lambda's /var/task), the runtime's own
packages (its /var/runtime: boto3 and its dependencies) and the standard library, as in a
function's sandbox. The handler (`app.app`, `triggers.pre_sign_up`, ...) is imported once,
like a cold start, then called for each event read from stdin (one JSON line each); each
answer is one JSON line on stdout. At the end of stdin the last line names every module that
was loaded from anywhere else.
"""
import importlib
import json
import os
import sys
import sysconfig
import time
import traceback
import uuid


class Context:
    """The parts of the runtime's context object that code reads."""

    def __init__(self, function_name, timeout_seconds):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = "1024"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]" + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def foreign_modules(allowed_roots):
    """Modules loaded from outside the package, the runtime's packages and the standard library
    (the interpreter's own site-packages lies inside the latter: it counts as outside)."""
    foreign = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name == "__main__" or not path:
            continue  # built-in and frozen modules have no file
        path = os.path.realpath(path)
        if "site-packages" in path.split(os.sep) or not any(path.startswith(root + os.sep) for root in allowed_roots):
            foreign[name] = path
    return foreign


def main():
    task_root, runtime_root, handler_name = (os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2]),
                                             sys.argv[3])
    stdlib = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
    sys.path[:] = [task_root, runtime_root] + [p for p in sys.path if os.path.realpath(p).startswith(tuple(stdlib))
                                               and "site-packages" not in p]
    # The answers go on the real stdout; whatever the function prints goes to stderr (its "log").
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    module_name, _, attribute = handler_name.rpartition(".")
    handler, import_error = None, None
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception:  # noqa: BLE001 - reported like the runtime's Runtime.ImportModuleError
        import_error = traceback.format_exc()
    for line in sys.stdin:
        if import_error:
            answer = {"error": import_error}
        else:
            try:
                answer = {"result": handler(json.loads(line), Context(handler_name, 10))}
            except Exception:  # noqa: BLE001 - Lambda reports whatever escaped
                answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    answers.write(json.dumps({"foreign": foreign_modules([task_root, runtime_root, *stdlib])}) + "\n")
    answers.close()


if __name__ == "__main__":
    main()
