"""The sign-in flow's plain parts (chalicelib.signin), without HTTP."""
import types

import pytest

from chalicelib import signin
from chalicelib.http import ApiError


@pytest.fixture
def config(monkeypatch):
    monkeypatch.setenv("COGNITO_CLIENT_SECRET", "a-client-secret-for-the-binding-key")
    return types.SimpleNamespace(region="us-east-1")


def test_the_longest_cognito_session_still_fits_the_pages_sealed_session(config):
    """botocore lets Cognito's Session be 4,096 characters; sealed, it must pass /auth/finish's cap."""
    session = "S" * signin.MAX_COGNITO_SESSION_LENGTH
    sealed = signin.seal_session(config, session, "6f1c" * 9, "someone@example.com")
    assert len(sealed) <= signin.MAX_SESSION_LENGTH
    assert signin.open_session(config, sealed, "someone@example.com") == ("6f1c" * 9, session)


@pytest.mark.parametrize("change", [
    lambda sealed: sealed[:-1] + ("A" if sealed[-1] != "A" else "B"),   # the MAC
    lambda sealed: "x" + sealed,                                         # the payload
    lambda sealed: sealed.partition(".")[0],                              # no MAC at all
])
def test_a_sealed_session_cannot_be_altered(config, change):
    sealed = signin.seal_session(config, "cognito-session", "user-1", "someone@example.com")
    with pytest.raises(ApiError):
        signin.open_session(config, change(sealed), "someone@example.com")


def test_a_sealed_session_belongs_to_the_email_it_started_with(config):
    sealed = signin.seal_session(config, "cognito-session", "user-1", "someone@example.com")
    assert signin.open_session(config, sealed, "SOMEONE@example.com")[0] == "user-1"
    with pytest.raises(ApiError):
        signin.open_session(config, sealed, "someone-else@example.com")


@pytest.mark.parametrize("typed, stored", [
    ("  Reader@Example.COM ", "Reader@example.com"),
    ("reader@ＥＸＡＭＰＬＥ.com", "reader@example.com"),
    ("reader@xn--bcher-kva.example", "reader@b\u00fccher.example"),
    ("jose\u0301@example.com", "jos\u00e9@example.com"),
])
def test_an_address_is_stored_in_one_form_per_mailbox(typed, stored):
    assert signin.normalize_email(typed) == stored
