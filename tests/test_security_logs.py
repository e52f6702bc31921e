"""Log hygiene: every line the dev stack printed (the app under chalice local, the Cognito
emulator running the triggers, the Authsignal emulator), the output of extra emulators the
suites started, and every log record of in-process code (the app under chalice.test) hold
no token, OTP code, secret, session, refresh token or full email address that the security
suites saw. Runs after them (file order); it also signs in itself, so it checks something
when run alone.

One exception, by design: the Authsignal emulator's dev mailbox prints each "email" it
sends (`[authsignal] [mailbox] to=... code=...`): that is the dev stack's stand-in for an
inbox, not a log."""
import json
import re
import uuid

import pytest

from tests.security_helpers import EXTRA_LOG_LINES, RECORDS, User, capture_in_process_logs, remember, seen

pytestmark = pytest.mark.devstack

MAILBOX_FIELDS = re.compile(r"(?<= )(to=\S+|code=\d{6})(?=\s|$)")


def test_no_secret_in_any_log_line(devstack, record_property):
    capture_in_process_logs()
    user = User(devstack, f"logs-{uuid.uuid4().hex[:12]}@example.com")
    _, cookie = user.sign_in()
    env = devstack.local_env()
    remember(env["COGNITO_CLIENT_SECRET"], env["AUTHSIGNAL_SECRET_KEY"])

    stack_lines = [line.rstrip("\r\n") for line in devstack.log]
    assert any(line.startswith("[authsignal] [mailbox] ") for line in stack_lines)
    # The mailbox lines are checked too, without their two by-design fields.
    lines = [MAILBOX_FIELDS.sub("", line) if line.startswith("[authsignal] [mailbox] ") else line
             for line in stack_lines]
    lines += [line.rstrip("\n") for line in EXTRA_LOG_LINES] + list(RECORDS.lines)
    text = "\n".join(lines)

    secrets, emails, codes = seen("secret"), seen("email"), seen("code")
    assert user.email in emails and cookie in secrets and codes  # the registry did fill
    leaks = [f"secret {value[:12]}..." for value in secrets if value in text]
    lowered = [line.lower() for line in lines]
    leaks += [f"email {value} in {next(line for line in lines if value.lower() in line.lower())[:160]!r}"
              for value in emails if any(value.lower() in line for line in lowered)]
    leaks += [f"OTP code {code}" for code in codes if re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", text)]
    checked = len(secrets) + len(emails) + len(codes)
    record_property("log_lines", len(lines))
    record_property("log_values_checked", checked)
    record_property("log_leaks", len(leaks))
    print(f"log hygiene: {len(lines)} log lines, {checked} secret values looked for, {len(leaks)} found")
    assert not leaks, leaks[:10]
    assert len(lines) > 50  # the stack did log: the check had something to read
    # The app's and the triggers' own lines are JSON objects (chalicelib/log_format), so the
    # scan above read them field by field too.
    structured = [json.loads(line.split("] ", 1)[1]) for line in stack_lines
                  if line.startswith(("[app] {", "[cognito] {")) and '"level"' in line]
    assert structured and all({"level", "message", "function", "requestId"} <= set(entry) for entry in structured)
    assert {entry["function"] for entry in structured} >= {"api_handler", "create_auth_challenge"}
