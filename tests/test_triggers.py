"""Each trigger with Cognito's real event shapes (string attributes, null-filled
`response`, `userName` a UUID), against the dev stack's Authsignal and Cognito emulators.
PreSignUp (whose events differ: no user yet) is tried in every variant at the end."""
import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

import triggers
from chalicelib import cognito_gateway
from chalicelib.authsignal_gateway import UNAVAILABLE, AuthsignalUnavailable

POOL = "us-east-1_DevStack01"
NULL_RESPONSES = {  # PreSignUp's arrives filled with false instead: PRE_SIGN_UP_FALSE below
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


APP_CLIENT = "devstackclient00000000000000"


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
                    SecretHash=cognito_gateway.secret_hash(email, env["COGNITO_CLIENT_ID"], env["COGNITO_CLIENT_SECRET"]))
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


def email_verified(devstack, sub):
    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)
    attributes = cognito.admin_get_user(UserPoolId=POOL, Username=sub)["UserAttributes"]
    return {a["Name"]: a["Value"] for a in attributes}["email_verified"]


def test_create_asks_authsignal_for_a_challenge_url(user, devstack):
    sub, email = user
    out = create(sub, email)["response"]
    assert out["publicChallengeParameters"]["url"].startswith(devstack.authsignal_url + "/challenge?")
    assert set(out["publicChallengeParameters"]) == {"url", "token"}
    assert out["publicChallengeParameters"]["token"] in out["publicChallengeParameters"]["url"]  # as public as the URL
    assert out["privateChallengeParameters"]["idempotencyKey"]
    assert out["privateChallengeParameters"]["email"] == email  # what Verify compares against
    assert out["challengeMetadata"] == "AUTHSIGNAL"


def test_verify_accepts_this_rounds_token_and_verifies_the_email(user, devstack):
    sub, email = user
    created = create(sub, email)
    token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
    assert verify(sub, email, created, token)["response"] == {"answerCorrect": True}
    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)
    attributes = {a["Name"]: a["Value"] for a in cognito.admin_get_user(UserPoolId=POOL, Username=sub)["UserAttributes"]}
    assert attributes["email_verified"] == "true"


def test_create_and_verify_need_no_pool_client_or_region_setting(user, devstack, monkeypatch):
    # Between `connect` and the second deploy the stage has none of them: the event has them.
    for name in ("COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "COGNITO_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
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


# ------------------------------------------------------------------ which address a correct answer proves


class Answers(dict):
    authenticators = ()


@pytest.fixture
def authsignal_answers(local_env, monkeypatch):
    """A loopback server that answers `POST /v1/validate` with the body a test gives, in the
    live API's shape; the app's Authsignal setting points at it. For the methods the dev
    tenant cannot prove offline yet (SMS, passkey, ...). `GET .../authenticators` answers
    `answer.authenticators`."""
    answer = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._send(answer.authenticators)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(answer)

        def _send(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")  # exactly: the SDK parses nothing else
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AUTHSIGNAL_API_URL", "http://127.0.0.1:%d/v1" % server.server_address[1])
    yield answer
    server.shutdown()
    server.server_close()


def live_validate_answer(sub, key, method):
    """`POST /v1/validate`'s answer for a challenge that succeeded (authsignal-api.md)."""
    return {"isValid": True, "state": "CHALLENGE_SUCCEEDED", "stateUpdatedAt": "2026-01-01T00:00:00.000Z",
            "userId": sub, "action": "cognitoAuth", "actionCode": "cognitoAuth", "idempotencyKey": key,
            "verificationMethod": method}


@pytest.mark.parametrize("method,verified", [("EMAIL_OTP", "true"), ("EMAIL_MAGIC_LINK", "true"),
                                             ("SMS", "false"), ("WHATSAPP", "false"), ("AUTHENTICATOR_APP", "false"),
                                             ("PASSKEY", "false"), ("SECURITY_KEY", "false"), ("PUSH", "false")])
def test_only_an_email_method_verifies_the_email(user, devstack, authsignal_answers, method, verified):
    sub, email = user
    created = {"response": {"privateChallengeParameters": {"idempotencyKey": "key-" + method, "email": email}}}
    authsignal_answers.update(live_validate_answer(sub, "key-" + method, method))
    authsignal_answers.authenticators = [{"userId": sub, "userAuthenticatorId": "a1", "verificationMethod": "EMAIL_OTP",
                                          "createdAt": "2026-01-01T00:00:00.000Z", "email": email}]
    # A correct answer by any method signs the user in...
    assert verify(sub, email, created, "a.validated.token")["response"] == {"answerCorrect": True}
    # ...but only an email method proves the address.
    assert email_verified(devstack, sub) == verified


def test_an_email_changed_since_create_is_not_verified(user, devstack):
    """Authsignal proved the address Create tracked; the user's email is another one now."""
    sub, email = user
    created = create(sub, email)
    token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
    changed = f"changed-{uuid.uuid4().hex[:8]}@example.com"
    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)
    cognito.admin_update_user_attributes(UserPoolId=POOL, Username=sub,
                                         UserAttributes=[{"Name": "email", "Value": changed}])
    assert verify(sub, changed, created, token)["response"] == {"answerCorrect": True}
    assert email_verified(devstack, sub) == "false"


def test_a_session_created_before_the_email_was_tracked_verifies_nothing(user, devstack):
    """Private parameters without `email` (a Create from before this rule): sign in, verify nothing."""
    sub, email = user
    created = create(sub, email)
    token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
    del created["response"]["privateChallengeParameters"]["email"]
    assert verify(sub, email, created, token)["response"] == {"answerCorrect": True}
    assert email_verified(devstack, sub) == "false"


# ------------------------------------------------------------------ events of every client of the pool

def phone_user_event(source, request, sub, phone="+15550104444", verified="true"):
    sent = event(source, request, sub=sub)
    sent["request"]["userAttributes"] = {"sub": sub, "phone_number": phone, "phone_number_verified": verified,
                                         "cognito:user_status": "CONFIRMED"}
    return sent


def test_create_for_a_user_without_an_email_enrols_their_verified_phone(local_env, devstack):
    """Another client of an adopted pool signs in phone users; the triggers serve it too."""
    sub = str(uuid.uuid4())
    request = {"session": [], "challengeName": "CUSTOM_CHALLENGE"}
    out = triggers.create_auth_challenge(phone_user_event("CreateAuthChallenge_Authentication", request, sub), None)
    assert out["response"]["privateChallengeParameters"]["email"] == ""
    assert out["response"]["publicChallengeParameters"]["url"].startswith(devstack.authsignal_url)
    answer = requests_get(f"{devstack.authsignal_url}/v1/users/{sub}/authenticators", local_env)
    assert [(a["verificationMethod"], a["phoneNumber"]) for a in answer] == [("SMS", "+15550104444")]


def test_create_for_a_user_without_email_or_verified_phone_hands_out_no_token(local_env, devstack):
    from chalicelib.authsignal_gateway import AuthsignalBlocked

    sub = str(uuid.uuid4())
    request = {"session": [], "challengeName": "CUSTOM_CHALLENGE"}
    with pytest.raises(AuthsignalBlocked):
        triggers.create_auth_challenge(
            phone_user_event("CreateAuthChallenge_Authentication", request, sub, verified="false"), None)
    assert requests_get(f"{devstack.authsignal_url}/v1/users/{sub}/authenticators", local_env) == []


def test_create_for_a_user_that_does_not_exist_tracks_nothing(local_env, devstack):
    """PreventUserExistenceErrors ENABLED: Cognito runs Create with `userNotFound`."""
    before = devstack.stats("authsignal")["calls"]["track"]
    sent = event("CreateAuthChallenge_Authentication", {"session": [], "challengeName": "CUSTOM_CHALLENGE",
                                                        "userNotFound": True})
    sent["request"]["userAttributes"] = {}
    out = triggers.create_auth_challenge(sent, None)["response"]
    assert out == {"publicChallengeParameters": {}, "privateChallengeParameters": {}, "challengeMetadata": "AUTHSIGNAL"}
    assert devstack.stats("authsignal")["calls"]["track"] == before


@pytest.mark.parametrize("attributes", [{}, {"email": "x@example.com"}, None])
def test_verify_without_a_sub_or_attributes_refuses_without_raising(local_env, attributes):
    sent = event("VerifyAuthChallengeResponse_Authentication",
                 {"privateChallengeParameters": {"idempotencyKey": "k", "email": ""}, "challengeAnswer": "a.b.c"})
    sent["request"]["userAttributes"] = attributes
    assert triggers.verify_auth_challenge_response(sent, None)["response"] == {"answerCorrect": False}


def test_verify_signs_in_but_verifies_nothing_when_authsignal_cannot_show_the_address(user, devstack, caplog):
    sub, email = user
    created = create(sub, email)
    token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
    devstack.fault("authsignal", "get_authenticators", "500")
    assert verify(sub, email, created, token)["response"] == {"answerCorrect": True}
    assert email_verified(devstack, sub) == "false"
    assert "could not be read" in caplog.text and email not in caplog.text


def test_verify_asks_authsignal_for_authenticators_only_while_the_email_is_unverified(user, devstack):
    sub, email = user
    for expected_calls in (1, 0):
        created = create(sub, email)
        token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
        before = devstack.stats("authsignal")["calls"]["get_authenticators"]
        verified = "true" if expected_calls == 0 else "false"
        request = {"privateChallengeParameters": created["response"]["privateChallengeParameters"],
                   "challengeAnswer": token, "clientMetadata": None}
        out = triggers.verify_auth_challenge_response(
            event("VerifyAuthChallengeResponse_Authentication", request, sub=sub, email=email, verified=verified), None)
        assert out["response"] == {"answerCorrect": True}
        assert devstack.stats("authsignal")["calls"]["get_authenticators"] - before == expected_calls
    assert email_verified(devstack, sub) == "true"


def requests_get(url, env):
    import requests

    answer = requests.get(url, auth=(env["AUTHSIGNAL_SECRET_KEY"], ""), timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


# ------------------------------------------------------------------ every documented event variant
#
# Events as Cognito sends them (reference/cognito-custom-auth.md, published event dumps):
# string attributes; PreSignUp before the user exists (only the attributes the client sent,
# `validationData` null unless sent, `clientMetadata` only when sent, a response pre-filled
# with false); the custom auth triggers with `sub` and `cognito:user_status`, `userNotFound`
# only when PreventUserExistenceErrors is ENABLED (then an unknown user has no attributes),
# `clientMetadata` only when a call carried it, a response pre-filled with null. Each trigger
# must answer with the whole event, only `response` filled, in its documented shape.

PHONE = "+15550106666"
ABSENT = object()


def attributes_of(kind, sub, email):
    attributes = {"sub": sub, "cognito:user_status": "CONFIRMED"}
    if "email" in kind:
        attributes.update(email=email, email_verified="false")
    if "phone" in kind:
        attributes.update(phone_number=PHONE, phone_number_verified="true")
    return attributes


def real_event(source, request, sub, client_id=APP_CLIENT, response=None):
    return {
        "version": "1", "triggerSource": source, "region": "us-east-1", "userPoolId": POOL, "userName": sub,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": client_id},
        "request": {k: v for k, v in request.items() if v is not ABSENT},
        "response": copy.deepcopy(response if response is not None else NULL_RESPONSES[source]),
    }


def answered(handler, sent, keys):
    """Call the trigger with a copy of `sent`; it must hand back the same event with only
    `response` changed, holding exactly `keys`. Returns that response."""
    out = handler(json.loads(json.dumps(sent)), None)
    out = json.loads(json.dumps(out))  # what Lambda would serialise back to Cognito
    assert {k: v for k, v in out.items() if k != "response"} == {k: v for k, v in sent.items() if k != "response"}
    assert set(out["response"]) == set(keys)
    return out["response"]


PRE_SIGN_UP_FALSE = {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}


@pytest.mark.parametrize("source", ["PreSignUp_SignUp", "PreSignUp_AdminCreateUser", "PreSignUp_ExternalProvider"])
@pytest.mark.parametrize("kind", ["email", "phone", "email+phone"])
@pytest.mark.parametrize("validation_data", [None, {"source": "test"}], ids=["validation-null", "validation"])
@pytest.mark.parametrize("client_metadata", [ABSENT, {"k": "v"}], ids=["no-metadata", "metadata"])
@pytest.mark.parametrize("client_id", [APP_CLIENT, "anotherappclient0000000000"], ids=["app-client", "other-client"])
def test_pre_sign_up_answers_every_variant_in_shape(monkeypatch, source, kind, validation_data, client_metadata,
                                                    client_id):
    monkeypatch.setenv("COGNITO_CLIENT_ID", APP_CLIENT)
    sub = str(uuid.uuid4())
    given = {k: v for k, v in attributes_of(kind, sub, "someone@example.com").items()
             if k in ("email", "phone_number")}  # the user does not exist yet: no sub, status, *_verified
    sent = real_event(source, {"userAttributes": given, "validationData": validation_data,
                               "clientMetadata": client_metadata}, sub, client_id, PRE_SIGN_UP_FALSE)
    response = answered(triggers.pre_sign_up, sent, PRE_SIGN_UP_FALSE)
    assert all(isinstance(v, bool) for v in response.values())
    ours = source == "PreSignUp_SignUp" and client_id == APP_CLIENT
    assert response == (dict(PRE_SIGN_UP_FALSE, autoConfirmUser=True) if ours else PRE_SIGN_UP_FALSE)


SESSIONS = {  # rounds so far (oldest first) -> what Define must answer
    "0": ([], "challenge"),
    "1-wrong": ([False], "challenge"),
    "2-wrong": ([False, False], "challenge"),
    "3-wrong": ([False, False, False], "fail"),
    "1-right": ([True], "tokens"),
    "2-right": ([False, True], "tokens"),
    "3-right": ([False, False, True], "tokens"),
}
DEFINE_ANSWERS = {
    "challenge": {"challengeName": "CUSTOM_CHALLENGE", "issueTokens": False, "failAuthentication": False},
    "tokens": {"challengeName": None, "issueTokens": True, "failAuthentication": False},
    "fail": {"challengeName": None, "issueTokens": False, "failAuthentication": True},
}


def rounds(results):
    return [{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": r, "challengeMetadata": "AUTHSIGNAL"}
            for r in results]


def custom_auth_request(kind, sub, email, user_not_found, client_metadata, **extra):
    attributes = {} if user_not_found is True else attributes_of(kind, sub, email)
    return {"userAttributes": attributes, **extra, "userNotFound": user_not_found, "clientMetadata": client_metadata}


@pytest.mark.parametrize("session", list(SESSIONS))
@pytest.mark.parametrize("kind", ["email", "phone", "email+phone"])
@pytest.mark.parametrize("user_not_found", [ABSENT, False, True], ids=["legacy", "found", "not-found"])
@pytest.mark.parametrize("client_metadata", [ABSENT, {}, {"k": "v"}], ids=["no-metadata", "empty-metadata", "metadata"])
def test_define_answers_every_variant_in_shape(session, kind, user_not_found, client_metadata):
    results, expected = SESSIONS[session]
    sub = str(uuid.uuid4())
    request = custom_auth_request(kind, sub, "someone@example.com", user_not_found, client_metadata,
                                  session=rounds(results))
    sent = real_event("DefineAuthChallenge_Authentication", request, sub)
    response = answered(triggers.define_auth_challenge, sent, DEFINE_ANSWERS["fail"])
    assert response == DEFINE_ANSWERS["fail" if user_not_found is True else expected]


@pytest.mark.parametrize("session", ["0", "1-wrong", "2-wrong"])  # Create runs only when Define asks again
@pytest.mark.parametrize("kind", ["email", "phone", "email+phone"])
@pytest.mark.parametrize("user_not_found", [ABSENT, False, True], ids=["legacy", "found", "not-found"])
@pytest.mark.parametrize("client_metadata", [ABSENT, {"k": "v"}], ids=["no-metadata", "metadata"])
def test_create_answers_every_variant_in_shape(local_env, devstack, session, kind, user_not_found, client_metadata):
    sub, email = str(uuid.uuid4()), f"create-{uuid.uuid4().hex[:10]}@example.com"
    request = custom_auth_request(kind, sub, email, user_not_found, client_metadata,
                                  session=rounds(SESSIONS[session][0]), challengeName="CUSTOM_CHALLENGE")
    sent = real_event("CreateAuthChallenge_Authentication", request, sub)
    response = answered(triggers.create_auth_challenge, sent, NULL_RESPONSES["CreateAuthChallenge_Authentication"])
    assert response["challengeMetadata"] == "AUTHSIGNAL"
    for name in ("publicChallengeParameters", "privateChallengeParameters"):
        assert isinstance(response[name], dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in response[name].items())
    if user_not_found is True:
        assert response["publicChallengeParameters"] == response["privateChallengeParameters"] == {}
        return
    assert set(response["publicChallengeParameters"]) == {"url", "token"}
    assert response["publicChallengeParameters"]["url"].startswith(devstack.authsignal_url)
    assert response["privateChallengeParameters"]["idempotencyKey"]
    assert response["privateChallengeParameters"]["email"] == (email if "email" in kind else "")


@pytest.mark.parametrize("kind", ["email", "phone", "email+phone"])
@pytest.mark.parametrize("user_not_found", [ABSENT, False, True], ids=["legacy", "found", "not-found"])
@pytest.mark.parametrize("client_metadata", [ABSENT, {}, {"k": "v"}], ids=["no-metadata", "empty-metadata", "metadata"])
def test_verify_answers_every_variant_in_shape(local_env, devstack, kind, user_not_found, client_metadata):
    sub, email = str(uuid.uuid4()), f"verify-{uuid.uuid4().hex[:10]}@example.com"
    request = custom_auth_request(kind, sub, email, user_not_found, client_metadata,
                                  privateChallengeParameters={"idempotencyKey": "key", "email": email},
                                  challengeAnswer="an.unknown.token")
    sent = real_event("VerifyAuthChallengeResponse_Authentication", request, sub)
    assert answered(triggers.verify_auth_challenge_response, sent, {"answerCorrect"}) == {"answerCorrect": False}


@pytest.mark.parametrize("user_not_found", [ABSENT, False], ids=["legacy", "found"])
@pytest.mark.parametrize("client_metadata", [ABSENT, {"k": "v"}], ids=["no-metadata", "metadata"])
@pytest.mark.parametrize("session", ["0", "2-wrong"])
def test_create_then_verify_a_real_answer_in_every_variant(user, devstack, user_not_found, client_metadata, session):
    sub, email = user
    request = custom_auth_request("email", sub, email, user_not_found, client_metadata,
                                  session=rounds(SESSIONS[session][0]), challengeName="CUSTOM_CHALLENGE")
    created = answered(triggers.create_auth_challenge, real_event("CreateAuthChallenge_Authentication", request, sub),
                       NULL_RESPONSES["CreateAuthChallenge_Authentication"])
    token = devstack.token_for(created["publicChallengeParameters"]["url"], email)
    request = custom_auth_request("email", sub, email, user_not_found, client_metadata,
                                  privateChallengeParameters=created["privateChallengeParameters"],
                                  challengeAnswer=token)
    sent = real_event("VerifyAuthChallengeResponse_Authentication", request, sub)
    assert answered(triggers.verify_auth_challenge_response, sent, {"answerCorrect"}) == {"answerCorrect": True}
    assert email_verified(devstack, sub) == "true"
