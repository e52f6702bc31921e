"""The challenge rules as plain functions: no HTTP, no AWS."""
import pytest

from chalicelib import challenge
from chalicelib.authsignal_gateway import Challenge, Validation

OK = {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "AUTHSIGNAL"}
WRONG = {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": False, "challengeMetadata": "AUTHSIGNAL"}


def test_pre_sign_up_confirms_but_does_not_verify_the_email():
    assert challenge.pre_sign_up("PreSignUp_SignUp", "app-client", "app-client") == {
        "autoConfirmUser": True, "autoVerifyEmail": False, "autoVerifyPhone": False}


@pytest.mark.parametrize("source,client_id,app_client_id", [
    ("PreSignUp_SignUp", "another-client", "app-client"),     # another app of an adopted pool
    ("PreSignUp_SignUp", None, "app-client"),
    ("PreSignUp_SignUp", "app-client", None),                 # no setting: confirm nobody
    ("PreSignUp_SignUp", "", ""),
    ("PreSignUp_AdminCreateUser", "app-client", "app-client"),
    ("PreSignUp_ExternalProvider", "app-client", "app-client"),
])
def test_pre_sign_up_leaves_everyone_else_to_the_pool(source, client_id, app_client_id):
    assert challenge.pre_sign_up(source, client_id, app_client_id) == {}


def test_define_asks_for_the_custom_challenge_first():
    assert challenge.define([]) == {"challengeName": "CUSTOM_CHALLENGE", "issueTokens": False, "failAuthentication": False}


def test_define_issues_tokens_after_a_correct_answer():
    assert challenge.define([WRONG, OK])["issueTokens"] is True


@pytest.mark.parametrize("wrong_answers,fails", [(1, False), (2, False), (3, True), (4, True)])
def test_define_allows_three_attempts(wrong_answers, fails):
    decision = challenge.define([WRONG] * wrong_answers)
    assert decision["failAuthentication"] is fails
    assert decision["issueTokens"] is False


@pytest.mark.parametrize("other", ["SRP_A", "PASSWORD_VERIFIER", "SMS_MFA"])
def test_define_fails_any_other_challenge(other):
    session = [{"challengeName": other, "challengeResult": True, "challengeMetadata": None}]
    assert challenge.define(session)["failAuthentication"] is True


def test_define_fails_unknown_users():
    assert challenge.define([], user_not_found=True)["failAuthentication"] is True


def test_create_keeps_the_idempotency_key_and_the_tracked_email_private():
    response = challenge.create(Challenge(url="https://ui.example/?t=1", idempotency_key="key-1", token="tok-1"),
                                "a@example.com")
    # The track token is public (the page gives it to passkey.signIn); the key is not.
    assert response["publicChallengeParameters"] == {"url": "https://ui.example/?t=1", "token": "tok-1"}
    assert response["privateChallengeParameters"] == {"idempotencyKey": "key-1", "email": "a@example.com"}
    assert "key-1" not in str(response["publicChallengeParameters"])


GOOD = Validation(True, "CHALLENGE_SUCCEEDED", "sub-1", "cognitoAuth", "key-1")


def test_answer_correct_only_when_everything_matches():
    assert challenge.answer_correct(GOOD, "sub-1", "cognitoAuth", "key-1") is True


@pytest.mark.parametrize("validation,user,action,key", [
    (GOOD, "sub-2", "cognitoAuth", "key-1"),                       # another user's token
    (GOOD, "sub-1", "otherAction", "key-1"),                       # another action
    (GOOD, "sub-1", "cognitoAuth", "key-2"),                       # another sign-in attempt (replay)
    (GOOD, "sub-1", "cognitoAuth", None),                          # no key recorded by Create
    (Validation(False, "CHALLENGE_REQUIRED", "sub-1", "cognitoAuth", "key-1"), "sub-1", "cognitoAuth", "key-1"),
    (Validation(True, "CHALLENGE_FAILED", "sub-1", "cognitoAuth", "key-1"), "sub-1", "cognitoAuth", "key-1"),
])
def test_answer_refused_when_anything_differs(validation, user, action, key):
    assert challenge.answer_correct(validation, user, action, key) is False


@pytest.mark.parametrize("answer,plausible", [("x" * 10, True), ("", False), (None, False), (42, False), ("x" * 5000, False)])
def test_plausible_answer(answer, plausible):
    assert challenge.plausible_answer(answer) is plausible
