"""Each trigger with Cognito's real event shapes (string attributes, null-filled
`response`, `userName` a UUID), against the dev stack's Authsignal and Cognito emulators."""
import copy
import time
import uuid

import boto3
import pytest

import triggers
from chalicelib import cognito_gateway
from chalicelib.authsignal_gateway import UNAVAILABLE, AuthsignalUnavailable

POOL = "us-east-1_DevStack01"
NULL_RESPONSES = {
    "PreSignUp_SignUp": {"autoConfirmUser": None, "autoVerifyEmail": None, "autoVerifyPhone": None},
    "DefineAuthChallenge_Authentication": {"challengeName": None, "issueTokens": None, "failAuthentication": None},
    "CreateAuthChallenge_Authentication": {"publicChallengeParameters": None, "privateChallengeParameters": None,
                                           "challengeMetadata": None},
    "VerifyAuthChallengeResponse_Authentication": {"answerCorrect": None},
}


def event(source, request, user_name=None, sub=None, email="someone@example.com", verified="false"):
    sub = sub or str(uuid.uuid4())
    attributes = {"sub": sub, "email": email, "email_verified": verified, "cognito:user_status": "CONFIRMED"}
    return {
        "version": "1",
        "triggerSource": source,
        "region": "us-east-1",
        "userPoolId": POOL,
        "userName": user_name or sub,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "devstackclient00000000000000"},
        "request": {"userAttributes": attributes, **request},
        "response": copy.deepcopy(NULL_RESPONSES[source]),
    }


def session_round(result):
    return {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": result, "challengeMetadata": "AUTHSIGNAL"}


def test_pre_sign_up_confirms_and_leaves_email_unverified():
    out = triggers.pre_sign_up(event("PreSignUp_SignUp", {"validationData": None, "clientMetadata": None}), None)
    assert out["response"] == {"autoConfirmUser": True, "autoVerifyEmail": False, "autoVerifyPhone": False}
    assert out["triggerSource"] == "PreSignUp_SignUp" and out["userPoolId"] == POOL


@pytest.mark.parametrize("session,expected", [
    ([], {"challengeName": "CUSTOM_CHALLENGE", "issueTokens": False, "failAuthentication": False}),
    ([session_round(False)], {"challengeName": "CUSTOM_CHALLENGE", "issueTokens": False, "failAuthentication": False}),
    ([session_round(False), session_round(True)], {"challengeName": None, "issueTokens": True, "failAuthentication": False}),
    ([session_round(False)] * 3, {"challengeName": None, "issueTokens": False, "failAuthentication": True}),
    ([{"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": None}],
     {"challengeName": None, "issueTokens": False, "failAuthentication": True}),
])
def test_define(session, expected):
    out = triggers.define_auth_challenge(event("DefineAuthChallenge_Authentication", {"session": session}), None)
    assert out["response"] == expected


def test_define_fails_when_user_not_found():
    request = {"session": [], "userNotFound": True}
    out = triggers.define_auth_challenge(event("DefineAuthChallenge_Authentication", request), None)
    assert out["response"]["failAuthentication"] is True


@pytest.fixture
def user(local_env, devstack, email):
    """A user signed up in the Cognito emulator (PreSignUp runs there); returns (sub, email)."""
    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)
    env = devstack.local_env()
    cognito.sign_up(ClientId=env["COGNITO_CLIENT_ID"], Username=email, Password="Unused-Passw0rd!",
                    SecretHash=cognito_gateway.secret_hash(email, env["COGNITO_CLIENT_ID"], env["COGNITO_CLIENT_SECRET"]),
                    UserAttributes=[{"Name": "email", "Value": email}])
    found = cognito.admin_get_user(UserPoolId=POOL, Username=email)
    attributes = {a["Name"]: a["Value"] for a in found["UserAttributes"]}
    assert attributes["email_verified"] == "false"
    return attributes["sub"], email


def create(sub, email):
    request = {"session": [], "challengeName": "CUSTOM_CHALLENGE"}
    return triggers.create_auth_challenge(event("CreateAuthChallenge_Authentication", request, sub=sub, email=email), None)


def verify(sub, email, created, answer):
    request = {"privateChallengeParameters": created["response"]["privateChallengeParameters"],
               "challengeAnswer": answer, "clientMetadata": None}
    return triggers.verify_auth_challenge_response(
        event("VerifyAuthChallengeResponse_Authentication", request, sub=sub, email=email), None)


def test_create_asks_authsignal_for_a_challenge_url(user, devstack):
    sub, email = user
    out = create(sub, email)["response"]
    assert out["publicChallengeParameters"]["url"].startswith(devstack.authsignal_url + "/challenge?")
    assert set(out["publicChallengeParameters"]) == {"url"}
    assert out["privateChallengeParameters"]["idempotencyKey"]
    assert out["challengeMetadata"] == "AUTHSIGNAL"


def test_verify_accepts_this_rounds_token_and_verifies_the_email(user, devstack):
    sub, email = user
    created = create(sub, email)
    token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
    assert verify(sub, email, created, token)["response"] == {"answerCorrect": True}
    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)
    attributes = {a["Name"]: a["Value"] for a in cognito.admin_get_user(UserPoolId=POOL, Username=sub)["UserAttributes"]}
    assert attributes["email_verified"] == "true"


def test_verify_refuses_a_token_from_an_earlier_round(user, devstack):
    sub, email = user
    earlier = create(sub, email)
    token = devstack.token_for(earlier["response"]["publicChallengeParameters"]["url"], email)
    later = create(sub, email)
    assert verify(sub, email, later, token)["response"]["answerCorrect"] is False


def test_verify_refuses_an_unfinished_challenge(user):
    sub, email = user
    created = create(sub, email)
    unfinished = created["response"]["publicChallengeParameters"]["url"].split("token=")[1]
    assert verify(sub, email, created, unfinished)["response"]["answerCorrect"] is False


def test_verify_refuses_another_users_token(user, devstack):
    sub, email = user
    other_sub, other_email = str(uuid.uuid4()), f"other-{uuid.uuid4().hex[:8]}@example.com"
    theirs = create(other_sub, other_email)
    token = devstack.token_for(theirs["response"]["publicChallengeParameters"]["url"], other_email)
    mine = create(sub, email)
    # Even with their idempotency key copied in, Authsignal says the user is not theirs.
    mine["response"]["privateChallengeParameters"] = theirs["response"]["privateChallengeParameters"]
    assert verify(sub, email, mine, token)["response"]["answerCorrect"] is False


@pytest.mark.parametrize("answer", ["", "not-a-token", "x" * 5000, "a.b.c"])
def test_verify_refuses_garbage(user, answer):
    sub, email = user
    created = create(sub, email)
    assert verify(sub, email, created, answer)["response"]["answerCorrect"] is False


@pytest.mark.parametrize("fault", ["500", "garbage", "timeout"])
def test_create_reports_authsignal_outage_quickly(user, devstack, fault):
    sub, email = user
    devstack.fault("authsignal", "track", fault)
    started = time.monotonic()
    with pytest.raises(AuthsignalUnavailable, match=UNAVAILABLE):
        create(sub, email)
    elapsed = time.monotonic() - started
    assert elapsed < 4.5, f"took {elapsed:.1f}s: Cognito would have given up at 5 s"
