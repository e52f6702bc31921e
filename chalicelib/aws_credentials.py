"""AWS credentials as the SDKs find them, without botocore on a Lambda's cold path.

Lambda puts the function role's credentials in the environment: they are read from there
first, and nothing else is imported. Anywhere else (`chalice local` against a deployed stage
with `AWS_PROFILE`, `aws sso login`, `~/.aws/credentials`, `credential_process`, a container or
an instance role) botocore's own credential chain is asked, once, lazily; the object it gives
refreshes itself (`get_frozen_credentials()` per call) when temporary credentials run out.
"""
import os
import threading
from typing import NamedTuple


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class NoCredentials(Exception):
    """No credentials to sign with; the message says what to do (it never holds a key)."""


FIX = ("in Lambda the function's role provides them; for `chalice local` against a deployed stage, "
       "set AWS_PROFILE (after `aws configure` or `aws sso login`) or AWS_ACCESS_KEY_ID and "
       "AWS_SECRET_ACCESS_KEY in the shell that runs it")

_lock = threading.Lock()
_chain = None  # botocore's credentials object, once found


def current(environ=None):
    """The credentials to sign the next call with."""
    environ = os.environ if environ is None else environ
    access_key, secret_key = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        return Credentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)
    if access_key or secret_key:  # as botocore's PartialCredentialsError
        raise NoCredentials(f"Only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set: {FIX}.")
    return _from_chain()


def _from_chain():
    global _chain
    with _lock:
        if _chain is None:
            _chain = _resolve()
        chain = _chain
    try:
        frozen = chain.get_frozen_credentials()  # refreshes temporary credentials near their expiry
    except Exception as error:  # noqa: BLE001 - an SSO token that expired, a credential_process that failed
        # Only the class name: some providers quote a command's output in their message.
        raise NoCredentials(f"AWS credentials could not be refreshed ({type(error).__name__}): {FIX}.") from None
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)


def _resolve():
    import botocore.exceptions
    import botocore.session

    try:
        found = botocore.session.Session().get_credentials()
    except botocore.exceptions.BotoCoreError as error:  # ProfileNotFound, an unreadable SSO cache, ...
        raise NoCredentials(f"No AWS credentials ({type(error).__name__}: {_safe(error)}): {FIX}.") from None
    if found is None:
        raise NoCredentials(f"No AWS credentials found: {FIX}.")
    return found


def _safe(error):
    """The parts of a botocore message that name a profile, never a command's output."""
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.ProfileNotFound):
        return str(error)
    return "see the AWS CLI's `aws sts get-caller-identity` for detail"


def forget():
    """Drop what the chain found (tests; a long-lived process whose profile changed)."""
    global _chain
    with _lock:
        _chain = None
