"""One JSON object per log line, from every function: level, message, function, request id,
and the outcome and durations a line carries (`log.info(..., extra={"outcome": ...})`).

Why not AWS Lambda Powertools' Logger and Metrics: importing them costs about twice
`import chalice` (measured: 40-57 ms against 24 ms), inside every cold start a person waits
on, and their formats are these few lines. Messages never hold a token, a code, a secret or
an email (tests/test_security_logs.py reads every line the suites produce).
"""
import contextvars
import datetime
import json
import logging
import sys

from chalicelib import metrics

LOGGERS = ("chalicelib", "triggers")  # with the app's own (app.log), named in install()
# Keys a line may carry besides the message; anything else passed in `extra` is dropped.
FIELDS = ("outcome", "route", "status", "durationMs", "authsignalMs", "cognitoMs", "method", "count")

request_id = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "function": metrics.function.get(),
            "requestId": request_id.get(),
        }
        line.update({key: getattr(record, key) for key in FIELDS if hasattr(record, key)})
        if record.exc_info:
            # Type and place only: an exception's message may quote its input. An import
            # error's names a module, which an operator needs and no user typed.
            kind, error, trace = record.exc_info
            while trace is not None and trace.tb_next is not None:
                trace = trace.tb_next
            where = f" at {trace.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{trace.tb_lineno}" if trace else ""
            detail = f": {error}" if isinstance(error, ImportError) else ""
            line["exception"] = f"{kind.__name__}{detail}{where}"
        return json.dumps(line, ensure_ascii=False, default=str)


class _Stdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (Lambda's, chalice local's, pytest's capture)."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def install(app_logger_name):
    """Every logger of the app writes JSON lines at INFO and above, once per process.

    In Lambda the runtime's own handler on the root logger gets the JSON format (the line
    then carries Lambda's request id too); elsewhere one handler on stdout is added."""
    formatter = JsonFormatter()
    root = logging.getLogger()
    lambda_handlers = [h for h in root.handlers if type(h).__name__ == "LambdaLoggerHandler"]
    for handler in lambda_handlers:
        handler.setFormatter(formatter)
    for name in (*LOGGERS, app_logger_name):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not lambda_handlers and not any(isinstance(h, _Stdout) for h in logger.handlers):
            handler = _Stdout()
            handler.setFormatter(formatter)
            logger.addHandler(handler)
            logger.propagate = True  # caplog and Lambda's root handler still see the records
