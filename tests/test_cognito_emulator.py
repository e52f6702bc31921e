"""The Cognito emulator over real HTTP with the real boto3 client.

It runs against a throwaway Chalice project generated here (its own small triggers), so
these tests pin the emulator's behaviour, not the app's triggers.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import jwt
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POOL_ID = "us-east-1_TestPool01"
CLIENT_ID = "testclient0000000000000000"
SECRET = "test-client-secret-0123456789abcdefgh"
PASSWORD = "Pa55word!x"

APP_PY = '''
from chalice import Chalice
from tiny_triggers import bp

app = Chalice(app_name="tinyapp")
app.register_blueprint(bp)
'''

TRIGGERS_PY = '''
import json
import os
import threading
import time

import boto3
from chalice import Blueprint

bp = Blueprint(__name__)
_lock = threading.Lock()


def _record(event, context):
    with _lock, open(os.environ["EVENT_LOG"], "a") as log:
        log.write(json.dumps({"event": event, "function": context.function_name,
                              "remaining": context.get_remaining_time_in_millis()}) + "\\n")


def _email(event):
    return event["request"]["userAttributes"].get("email", "")


@bp.lambda_function(name="pre_sign_up")
def pre_sign_up(event, context):
    _record(event, context)
    if _email(event).startswith("boom"):
        raise ValueError("sign-ups from boom are closed")
    if _email(event).startswith("slow"):
        time.sleep(1.5)
    if not _email(event).startswith("unconfirmed"):
        event["response"]["autoConfirmUser"] = True
    return event


@bp.lambda_function(name="define_auth_challenge")
def define_auth_challenge(event, context):
    _record(event, context)
    session = event["request"]["session"]
    response = event["response"]
    if event["request"].get("userNotFound"):
        response["failAuthentication"] = True
    elif session and session[-1]["challengeResult"]:
        response["issueTokens"] = True
    elif len(session) >= 3:
        response["failAuthentication"] = True
    else:
        response["challengeName"] = "CUSTOM_CHALLENGE"
    return event


@bp.lambda_function(name="create_auth_challenge")
def create_auth_challenge(event, context):
    _record(event, context)
    if _email(event).startswith("createboom"):
        raise RuntimeError("create exploded")
    rounds = str(len(event["request"]["session"]))
    event["response"]["publicChallengeParameters"] = {"hint": "the answer", "round": rounds}
    event["response"]["privateChallengeParameters"] = {"answer": "42", "round": rounds}
    event["response"]["challengeMetadata"] = "ROUND-" + rounds
    return event


@bp.lambda_function(name="verify_auth_challenge_response")
def verify_auth_challenge_response(event, context):
    _record(event, context)
    correct = event["request"]["challengeAnswer"] == \\
        event["request"]["privateChallengeParameters"]["answer"]
    if correct:
        # Calls back into the emulator while it waits for this trigger.
        boto3.client("cognito-idp", endpoint_url=os.environ["COGNITO_ENDPOINT_URL"],
                     region_name="us-east-1").admin_update_user_attributes(
            UserPoolId=event["userPoolId"], Username=event["userName"],
            UserAttributes=[{"Name": "email_verified", "Value": "true"}])
    event["response"]["answerCorrect"] = correct
    return event
'''


def secret_hash(username, secret=SECRET):
    digest = hmac.new(secret.encode(), (username + CLIENT_ID).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


class Emulator:
    def __init__(self, url, event_log):
        self.url = url
        self.event_log = event_log
        self.client = self.make_client()

    def make_client(self, connections=10):
        # No retries: faults and throttling must surface on the first answer.
        return boto3.client(
            "cognito-idp", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=15,
                          max_pool_connections=connections))

    def events(self, user_name=None, source=None):
        with open(self.event_log) as log:
            records = [json.loads(line) for line in log if line.strip()]
        return [r["event"] for r in records
                if (user_name is None or r["event"]["userName"] == user_name)
                and (source is None or r["event"]["triggerSource"] == source)]

    def records(self):
        with open(self.event_log) as log:
            return [json.loads(line) for line in log if line.strip()]

    def dev(self, path, body):
        response = requests.post(self.url + path, json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def sign_up(self, email):
        return self.client.sign_up(ClientId=CLIENT_ID, Username=email, Password=PASSWORD,
                                   SecretHash=secret_hash(email),
                                   UserAttributes=[{"Name": "email", "Value": email}])

    def start(self, username, **extra):
        return self.client.initiate_auth(
            AuthFlow="CUSTOM_AUTH", ClientId=CLIENT_ID,
            AuthParameters={"USERNAME": username, "SECRET_HASH": secret_hash(username)}, **extra)

    def answer(self, session, username, answer, **extra):
        return self.client.respond_to_auth_challenge(
            ClientId=CLIENT_ID, ChallengeName="CUSTOM_CHALLENGE", Session=session,
            ChallengeResponses={"USERNAME": username, "ANSWER": answer,
                                "SECRET_HASH": secret_hash(username)}, **extra)

    def sign_in(self, email):
        self.sign_up(email)
        started = self.start(email)
        return self.answer(started["Session"], email, "42")["AuthenticationResult"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    project = tmp_path_factory.mktemp("tinyproject")
    (project / ".chalice").mkdir()
    (project / ".chalice" / "config.json").write_text(json.dumps({
        "version": "2.0", "app_name": "tinyapp",
        "environment_variables": {"COGNITO_REGION": "us-east-1"},
        "stages": {"local": {"environment_variables": {
            "COGNITO_USER_POOL_ID": POOL_ID, "COGNITO_CLIENT_ID": CLIENT_ID,
            "COGNITO_CLIENT_SECRET": "overridden-below",
            "COGNITO_ENDPOINT_URL": "http://127.0.0.1:1"}}},
    }))
    (project / "app.py").write_text(APP_PY)
    (project / "tiny_triggers.py").write_text(textwrap.dedent(TRIGGERS_PY))
    event_log = project / "events.jsonl"
    event_log.write_text("")
    stderr = open(project / "stderr.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.cognito", "--port", "0", "--project-dir", str(project),
         "--stage", "local", "--env", "COGNITO_CLIENT_SECRET=" + SECRET,
         "--env", "EVENT_LOG=" + str(event_log)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = process.stdout.readline()
    if not line.startswith("READY http://127.0.0.1:"):
        process.kill()
        pytest.fail("emulator did not start: %r\n%s" % (line, (project / "stderr.log").read_text()))
    yield Emulator(line.split()[1], str(event_log))
    process.terminate()
    assert process.wait(10) == 0
    stderr.close()
    log = (project / "stderr.log").read_text()
    # The request log names operations, never the secrets that went through them.
    assert "InitiateAuth 200" in log
    assert SECRET not in log and "@example.com" not in log


def new_email(prefix="user"):
    return "%s-%s@example.com" % (prefix, uuid.uuid4().hex[:12])


# ------------------------------------------------------------------------ SignUp

def test_sign_up_runs_pre_sign_up_with_a_cognito_shaped_event(emu):
    email = new_email()
    result = emu.client.sign_up(
        ClientId=CLIENT_ID, Username=email, Password=PASSWORD, SecretHash=secret_hash(email),
        UserAttributes=[{"Name": "email", "Value": email}],
        ValidationData=[{"Name": "source", "Value": "test"}], ClientMetadata={"k": "v"})
    assert result["UserConfirmed"] is True
    sub = result["UserSub"]
    assert str(uuid.UUID(sub)) == sub
    (event,) = emu.events(user_name=sub)
    assert event["version"] == "1" and event["triggerSource"] == "PreSignUp_SignUp"
    assert event["region"] == "us-east-1" and event["userPoolId"] == POOL_ID
    assert event["callerContext"]["clientId"] == CLIENT_ID
    assert event["callerContext"]["awsSdkVersion"]
    # Before the user exists: only what the client sent; no sub, status or email_verified.
    assert event["request"]["userAttributes"] == {"email": email}
    assert event["request"]["validationData"] == {"source": "test"}
    assert event["request"]["clientMetadata"] == {"k": "v"}
    # Pre-filled with false, not null, unlike the custom auth triggers' responses.
    assert event["response"] == {"autoConfirmUser": False, "autoVerifyEmail": False,
                                 "autoVerifyPhone": False}
    (record,) = [r for r in emu.records() if r["event"]["userName"] == sub]
    assert record["function"] == "tinyapp-local-pre_sign_up"
    assert 0 < record["remaining"] <= 5000

    user = emu.client.admin_get_user(UserPoolId=POOL_ID, Username=email.upper())
    assert user["Username"] == sub and user["UserStatus"] == "CONFIRMED"


def test_a_sign_up_without_validation_data_or_metadata_sends_null_and_nothing(emu):
    email = new_email()
    sub = emu.client.sign_up(ClientId=CLIENT_ID, Username=email, Password=PASSWORD,
                             SecretHash=secret_hash(email))["UserSub"]
    (event,) = emu.events(user_name=sub)
    assert event["request"] == {"userAttributes": {"email": email}, "validationData": None}


def test_sign_up_refuses_duplicates_bad_emails_and_weak_passwords(emu):
    email = new_email()
    emu.sign_up(email)
    with pytest.raises(ClientError) as excinfo:
        emu.sign_up(email.upper())  # the email is case-insensitive
    assert error_of(excinfo) == ("UsernameExistsException",
                                 "An account with the given email already exists.")
    with pytest.raises(ClientError) as excinfo:
        emu.sign_up("not-an-email")
    assert error_of(excinfo)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as excinfo:
        emu.client.sign_up(ClientId=CLIENT_ID, Username=new_email(), Password="short",
                           SecretHash=secret_hash("x"))
    assert error_of(excinfo)[1] == "Unable to verify secret hash for client %s" % CLIENT_ID
    weak = new_email()
    with pytest.raises(ClientError) as excinfo:
        emu.client.sign_up(ClientId=CLIENT_ID, Username=weak, Password="alllowercase",
                           SecretHash=secret_hash(weak))
    assert error_of(excinfo)[0] == "InvalidPasswordException"


# ------------------------------------------------------------------------ custom auth

def test_full_custom_auth_sign_in_issues_verifiable_tokens(emu):
    email = new_email()
    sub = emu.sign_up(email)["UserSub"]
    started = emu.start(email, ClientMetadata={"from": "initiate"})
    assert started["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert started["ChallengeParameters"] == {"hint": "the answer", "round": "0", "USERNAME": sub}
    assert "AuthenticationResult" not in started

    done = emu.answer(started["Session"], email, "42", ClientMetadata={"from": "respond"})
    result = done["AuthenticationResult"]
    assert result["ExpiresIn"] == 3600 and result["TokenType"] == "Bearer"
    # Opaque, not a JWT: shaped and sized as Cognito's, a JWE of about 1.8 KB.
    assert result["RefreshToken"].count(".") == 4 and 1700 <= len(result["RefreshToken"]) <= 2000
    assert jwt.get_unverified_header(result["RefreshToken"]) == {
        "cty": "JWT", "enc": "A256GCM", "alg": "RSA-OAEP"}

    jwks = requests.get("%s/%s/.well-known/jwks.json" % (emu.url, POOL_ID), timeout=5).json()
    keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}
    issuer = "%s/%s" % (emu.url, POOL_ID)
    id_kid = jwt.get_unverified_header(result["IdToken"])["kid"]
    access_kid = jwt.get_unverified_header(result["AccessToken"])["kid"]
    # A real pool publishes one key for ID tokens and one for access tokens; the header
    # carries kid and alg only (no typ).
    assert len(keys) == 2 and set(keys) == {id_kid, access_kid}
    for token in (result["IdToken"], result["AccessToken"]):
        assert set(jwt.get_unverified_header(token)) == {"kid", "alg"}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(result["AccessToken"], keys[id_kid].key, algorithms=["RS256"], issuer=issuer)
    id_claims = jwt.decode(result["IdToken"], keys[id_kid].key, algorithms=["RS256"],
                           audience=CLIENT_ID, issuer=issuer)
    assert id_claims["token_use"] == "id" and id_claims["sub"] == sub
    assert id_claims["cognito:username"] == sub and id_claims["email"] == email
    # The Verify trigger marked the email verified through AdminUpdateUserAttributes.
    assert id_claims["email_verified"] is True
    access = jwt.decode(result["AccessToken"], keys[access_kid].key, algorithms=["RS256"],
                        issuer=issuer)
    assert access["token_use"] == "access" and access["client_id"] == CLIENT_ID
    assert access["scope"] == "aws.cognito.signin.user.admin" and access["username"] == sub
    assert access["origin_jti"] == id_claims["origin_jti"] and access["jti"] != id_claims["jti"]
    assert access["exp"] - access["iat"] == 3600

    defines = emu.events(sub, "DefineAuthChallenge_Authentication")
    creates = emu.events(sub, "CreateAuthChallenge_Authentication")
    (verify,) = emu.events(sub, "VerifyAuthChallengeResponse_Authentication")
    assert [d["request"]["session"] for d in defines] == [[], [{
        "challengeName": "CUSTOM_CHALLENGE", "challengeResult": True,
        "challengeMetadata": "ROUND-0"}]]
    # By default InitiateAuth's ClientMetadata reaches neither Define nor Create;
    # RespondToAuthChallenge's reaches Define and Verify (and Create: see the rounds test).
    assert "clientMetadata" not in defines[0]["request"]
    assert "clientMetadata" not in creates[0]["request"]
    assert defines[1]["request"]["clientMetadata"] == {"from": "respond"}
    assert len(started["Session"]) == 4096  # botocore's maximum, by default
    assert defines[0]["response"] == {"challengeName": None, "issueTokens": None,
                                      "failAuthentication": None}
    assert "userNotFound" not in defines[0]["request"]  # LEGACY mode
    assert creates[0]["request"]["challengeName"] == "CUSTOM_CHALLENGE"
    assert creates[0]["response"] == {"publicChallengeParameters": None,
                                      "privateChallengeParameters": None,
                                      "challengeMetadata": None}
    assert defines[0]["request"]["userAttributes"]["cognito:user_status"] == "CONFIRMED"
    assert verify["request"]["privateChallengeParameters"] == {"answer": "42", "round": "0"}
    assert verify["request"]["challengeAnswer"] == "42"
    assert verify["request"]["clientMetadata"] == {"from": "respond"}
    assert verify["response"] == {"answerCorrect": None}


def test_wrong_answers_get_new_sessions_until_the_third_fails(emu):
    email = new_email()
    sub = emu.sign_up(email)["UserSub"]
    session = emu.start(sub)["Session"]  # the sub works as USERNAME too
    for expected_round in ("1", "2"):
        again = emu.answer(session, email, "wrong")
        assert again["ChallengeName"] == "CUSTOM_CHALLENGE"
        assert again["ChallengeParameters"]["round"] == expected_round
        assert again["Session"] != session
        session = again["Session"]
    with pytest.raises(ClientError) as excinfo:
        emu.answer(session, email, "wrong")
    assert error_of(excinfo) == ("NotAuthorizedException", "Incorrect username or password.")
    last_define = emu.events(sub, "DefineAuthChallenge_Authentication")[-1]
    assert [s["challengeResult"] for s in last_define["request"]["session"]] == [False] * 3
    assert [s["challengeMetadata"] for s in last_define["request"]["session"]] == [
        "ROUND-0", "ROUND-1", "ROUND-2"]


def test_respond_to_auth_challenge_metadata_reaches_the_next_rounds_create(emu):
    email = new_email()
    sub = emu.sign_up(email)["UserSub"]
    session = emu.start(email)["Session"]
    emu.answer(session, email, "wrong", ClientMetadata={"round": "next"})
    creates = emu.events(sub, "CreateAuthChallenge_Authentication")
    assert "clientMetadata" not in creates[0]["request"]
    assert creates[1]["request"]["clientMetadata"] == {"round": "next"}
    assert creates[1]["request"]["session"] == [{
        "challengeName": "CUSTOM_CHALLENGE", "challengeResult": False, "challengeMetadata": "ROUND-0"}]


def test_initiate_auth_metadata_reaches_define_and_create_by_option(emu):
    """Unconfirmed on AWS: off (the default) it reaches neither, on it reaches both."""
    assert emu.dev("/_dev/settings", {})["initiateAuthClientMetadata"] is False
    emu.dev("/_dev/settings", {"initiateAuthClientMetadata": True})
    try:
        email = new_email()
        sub = emu.sign_up(email)["UserSub"]
        emu.start(email, ClientMetadata={"from": "initiate"})
    finally:
        emu.dev("/_dev/settings", {"initiateAuthClientMetadata": False})
    (define,) = emu.events(sub, "DefineAuthChallenge_Authentication")
    (create,) = emu.events(sub, "CreateAuthChallenge_Authentication")
    assert define["request"]["clientMetadata"] == create["request"]["clientMetadata"] == {"from": "initiate"}


def test_session_length_is_a_setting_within_botocores_limits(emu):
    email = new_email()
    emu.sign_up(email)
    assert emu.dev("/_dev/settings", {})["sessionLength"] == 4096
    emu.dev("/_dev/settings", {"sessionLength": 920})
    try:
        started = emu.start(email)
        assert len(started["Session"]) == 920
        assert emu.answer(started["Session"], email, "42")["AuthenticationResult"]
    finally:
        emu.dev("/_dev/settings", {"sessionLength": 4096})
    for bad in (19, 4097, "4096", True):
        answer = requests.post(emu.url + "/_dev/settings", json={"sessionLength": bad}, timeout=5)
        assert answer.status_code == 400


def test_a_session_is_single_use_expires_and_belongs_to_its_user(emu):
    email, other = new_email(), new_email()
    emu.sign_up(email)
    emu.sign_up(other)
    session = emu.start(email)["Session"]
    with pytest.raises(ClientError) as excinfo:
        emu.answer(session, other, "42")  # another user's session
    assert error_of(excinfo)[0] == "NotAuthorizedException"
    emu.answer(session, email, "wrong")
    with pytest.raises(ClientError) as excinfo:
        emu.answer(session, email, "42")
    assert error_of(excinfo) == ("NotAuthorizedException",
                                 "Invalid session for the user, session can only be used once.")
    with pytest.raises(ClientError) as excinfo:
        emu.answer("garbage" * 20, email, "42")
    assert error_of(excinfo) == ("NotAuthorizedException", "Invalid session for the user.")

    emu.dev("/_dev/settings", {"sessionValiditySeconds": 0.3})
    try:
        session = emu.start(email)["Session"]
        time.sleep(0.4)
        with pytest.raises(ClientError) as excinfo:
            emu.answer(session, email, "42")
        assert error_of(excinfo) == ("NotAuthorizedException",
                                     "Invalid session for the user, session is expired.")
    finally:
        emu.dev("/_dev/settings", {"sessionValiditySeconds": 600})


def test_strict_username_accepts_only_the_internal_username_in_the_answer(emu):
    email = new_email()
    emu.sign_up(email)
    assert emu.dev("/_dev/settings", {})["strictUsername"] is False
    emu.dev("/_dev/settings", {"strictUsername": True})
    try:
        started = emu.start(email)
        with pytest.raises(ClientError) as excinfo:
            emu.answer(started["Session"], email, "42")
        assert error_of(excinfo) == ("NotAuthorizedException", "Invalid session for the user.")
        started = emu.start(email)
        username = started["ChallengeParameters"]["USERNAME"]
        assert username != email
        assert emu.answer(started["Session"], username, "42")["AuthenticationResult"]["IdToken"]
    finally:
        emu.dev("/_dev/settings", {"strictUsername": False})


def test_sessions_last_ten_minutes_by_default(emu):
    settings = emu.dev("/_dev/settings", {})
    assert settings["sessionValiditySeconds"] == 600
    client = emu.client.describe_user_pool_client(UserPoolId=POOL_ID, ClientId=CLIENT_ID)
    assert client["UserPoolClient"]["AuthSessionValidity"] == 10


def test_revoking_an_unknown_token_answers_as_configured(emu):
    assert emu.client.revoke_token(Token="unknown-token", ClientId=CLIENT_ID, ClientSecret=SECRET)
    emu.dev("/_dev/settings", {"revokeUnknownTokenError": "UnsupportedOperationException"})
    try:
        with pytest.raises(ClientError) as excinfo:
            emu.client.revoke_token(Token="unknown-token", ClientId=CLIENT_ID, ClientSecret=SECRET)
        assert error_of(excinfo)[0] == "UnsupportedOperationException"
    finally:
        emu.dev("/_dev/settings", {"revokeUnknownTokenError": None})
    bad = requests.post(emu.url + "/_dev/settings", json={"revokeUnknownTokenError": "NotAuthorizedException"},
                        timeout=5)
    assert bad.status_code == 400


def test_secret_hash_and_client_checks(emu):
    email = new_email()
    emu.sign_up(email)
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="CUSTOM_AUTH", ClientId=CLIENT_ID,
                                 AuthParameters={"USERNAME": email})
    assert error_of(excinfo) == (
        "NotAuthorizedException",
        "Client %s is configured with secret but SECRET_HASH was not received" % CLIENT_ID)
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="CUSTOM_AUTH", ClientId=CLIENT_ID, AuthParameters={
            "USERNAME": email, "SECRET_HASH": secret_hash(email, "wrong-secret")})
    assert error_of(excinfo) == ("NotAuthorizedException",
                                 "Unable to verify secret hash for client %s" % CLIENT_ID)
    session = emu.start(email)["Session"]
    with pytest.raises(ClientError) as excinfo:
        emu.client.respond_to_auth_challenge(
            ClientId=CLIENT_ID, ChallengeName="CUSTOM_CHALLENGE", Session=session,
            ChallengeResponses={"USERNAME": email, "ANSWER": "42"})
    assert error_of(excinfo)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="CUSTOM_AUTH", ClientId="nosuchclient",
                                 AuthParameters={"USERNAME": email})
    assert error_of(excinfo) == ("ResourceNotFoundException",
                                 "User pool client nosuchclient does not exist.")
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId=CLIENT_ID,
                                 AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD,
                                                 "SECRET_HASH": secret_hash(email)})
    assert error_of(excinfo)[0] == "InvalidParameterException"


def test_unknown_and_unconfirmed_users(emu):
    with pytest.raises(ClientError) as excinfo:
        emu.start(new_email("nobody"))
    assert error_of(excinfo) == ("UserNotFoundException", "User does not exist.")
    unconfirmed = new_email("unconfirmed")
    assert emu.sign_up(unconfirmed)["UserConfirmed"] is False
    with pytest.raises(ClientError) as excinfo:
        emu.start(unconfirmed)
    assert error_of(excinfo) == ("UserNotConfirmedException", "User is not confirmed.")


def test_prevent_user_existence_errors_enabled_runs_define_with_user_not_found(emu):
    emu.dev("/_dev/settings", {"preventUserExistenceErrors": True})
    nobody = new_email("nobody")
    try:
        with pytest.raises(ClientError) as excinfo:
            emu.start(nobody)
        assert error_of(excinfo) == ("NotAuthorizedException", "Incorrect username or password.")
    finally:
        emu.dev("/_dev/settings", {"preventUserExistenceErrors": False})
    (define,) = emu.events(nobody, "DefineAuthChallenge_Authentication")
    assert define["request"]["userNotFound"] is True


# ------------------------------------------------------------------------ tokens

def test_refresh_wants_the_sub_in_the_secret_hash(emu):
    email = new_email()
    tokens = emu.sign_in(email)
    sub = jwt.decode(tokens["IdToken"], options={"verify_signature": False})["sub"]
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId=CLIENT_ID, AuthParameters={
            "REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": secret_hash(email)})
    # AWS's message for this trap differs from the sign-in one.
    assert error_of(excinfo) == ("NotAuthorizedException",
                                 "SecretHash does not match for the client: %s" % CLIENT_ID)
    refreshed = emu.client.initiate_auth(
        AuthFlow="REFRESH_TOKEN_AUTH", ClientId=CLIENT_ID,
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": secret_hash(sub)},
    )["AuthenticationResult"]
    assert "RefreshToken" not in refreshed
    assert refreshed["AccessToken"] != tokens["AccessToken"]
    assert emu.client.get_user(AccessToken=refreshed["AccessToken"])["Username"] == sub
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId=CLIENT_ID, AuthParameters={
            "REFRESH_TOKEN": "not-a-refresh-token", "SECRET_HASH": secret_hash(sub)})
    assert error_of(excinfo) == ("NotAuthorizedException", "Invalid Refresh Token")


def test_get_user_accepts_only_genuine_live_access_tokens(emu):
    email = new_email()
    tokens = emu.sign_in(email)
    user = emu.client.get_user(AccessToken=tokens["AccessToken"])
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["email"] == email and attributes["email_verified"] == "true"
    assert attributes["sub"] == user["Username"]

    claims = jwt.decode(tokens["AccessToken"], options={"verify_signature": False})
    header = jwt.get_unverified_header(tokens["AccessToken"])
    head, payload, signature = tokens["AccessToken"].split(".")
    forged_payload = base64.urlsafe_b64encode(
        json.dumps(dict(claims, sub=str(uuid.uuid4())), separators=(",", ":")).encode()
    ).decode().rstrip("=")
    forgeries = [
        ".".join([head, forged_payload, signature]),  # tampered claims
        jwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"]}),
        jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": header["kid"]}),
        tokens["IdToken"],  # right signature, wrong token_use
        "not.a.token",
    ]
    for forged in forgeries:
        with pytest.raises(ClientError) as excinfo:
            emu.client.get_user(AccessToken=forged)
        assert error_of(excinfo) == ("NotAuthorizedException", "Invalid Access Token")

    emu.dev("/_dev/settings", {"accessTokenValiditySeconds": 0})
    try:
        expired = emu.sign_in(new_email())
    finally:
        emu.dev("/_dev/settings", {"accessTokenValiditySeconds": 3600})
    assert expired["ExpiresIn"] == 0
    with pytest.raises(ClientError) as excinfo:
        emu.client.get_user(AccessToken=expired["AccessToken"])
    assert error_of(excinfo) == ("NotAuthorizedException", "Access Token has expired")


def test_revoke_token_revokes_the_refresh_token_and_its_access_tokens(emu):
    first = emu.sign_in(new_email())
    email = new_email()
    tokens = emu.sign_in(email)
    sub = emu.client.get_user(AccessToken=tokens["AccessToken"])["Username"]
    with pytest.raises(ClientError) as excinfo:
        emu.client.revoke_token(Token=tokens["RefreshToken"], ClientId=CLIENT_ID,
                                ClientSecret="wrong" * 6)
    # RevokeToken's model declares no NotAuthorizedException.
    assert error_of(excinfo) == ("UnauthorizedException",
                                 "Unable to verify client secret for client %s" % CLIENT_ID)
    emu.client.get_user(AccessToken=tokens["AccessToken"])  # still valid

    emu.client.revoke_token(Token=tokens["RefreshToken"], ClientId=CLIENT_ID, ClientSecret=SECRET)
    with pytest.raises(ClientError) as excinfo:
        emu.client.get_user(AccessToken=tokens["AccessToken"])
    assert error_of(excinfo) == ("NotAuthorizedException", "Access Token has been revoked")
    with pytest.raises(ClientError) as excinfo:
        emu.client.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId=CLIENT_ID, AuthParameters={
            "REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": secret_hash(sub)})
    assert error_of(excinfo)[0] == "NotAuthorizedException"
    assert "revoked" in error_of(excinfo)[1]
    # Someone else's tokens are untouched.
    emu.client.get_user(AccessToken=first["AccessToken"])


def test_global_sign_out_revokes_all_of_the_users_tokens(emu):
    email = new_email()
    one = emu.sign_in(email)
    two_session = emu.start(email)["Session"]
    two = emu.answer(two_session, email, "42")["AuthenticationResult"]
    emu.client.global_sign_out(AccessToken=one["AccessToken"])
    sub = jwt.decode(one["IdToken"], options={"verify_signature": False})["sub"]
    for tokens in (one, two):
        with pytest.raises(ClientError) as excinfo:
            emu.client.get_user(AccessToken=tokens["AccessToken"])
        assert error_of(excinfo) == ("NotAuthorizedException", "Access Token has been revoked")
        with pytest.raises(ClientError):
            emu.client.initiate_auth(AuthFlow="REFRESH_TOKEN", ClientId=CLIENT_ID, AuthParameters={
                "REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": secret_hash(sub)})
    # Signing in again afterwards gives working tokens.
    again = emu.answer(emu.start(email)["Session"], email, "42")["AuthenticationResult"]
    assert emu.client.get_user(AccessToken=again["AccessToken"])["Username"] == sub


# ------------------------------------------------------------------------ triggers failing

def test_a_trigger_that_raises_is_a_user_lambda_validation_error(emu):
    with pytest.raises(ClientError) as excinfo:
        emu.sign_up(new_email("boom"))
    assert error_of(excinfo) == ("UserLambdaValidationException",
                                 "PreSignUp failed with error sign-ups from boom are closed.")
    email = new_email("createboom")
    emu.sign_up(email)
    with pytest.raises(ClientError) as excinfo:
        emu.start(email)
    assert error_of(excinfo) == ("UserLambdaValidationException",
                                 "CreateAuthChallenge failed with error create exploded.")


def test_a_trigger_past_its_time_limit_is_invoked_three_times_then_fails_the_call(emu):
    requests.post(emu.url + "/_dev/reset", json={}, timeout=5).raise_for_status()
    emu.dev("/_dev/settings", {"triggerTimeoutSeconds": 0.3})
    email = new_email("slow")
    try:
        with pytest.raises(ClientError) as excinfo:
            emu.sign_up(email)
    finally:
        emu.dev("/_dev/settings", {"triggerTimeoutSeconds": 5})
    assert error_of(excinfo) == (
        "UnexpectedLambdaException",
        "PreSignUp invocation failed due to error Socket timeout while invoking Lambda function.")
    # Every attempt counts as an invocation, each with the same event.
    assert requests.get(emu.url + "/_dev/stats", timeout=5).json()["invocations"] == {"pre_sign_up": 3}
    time.sleep(1.6)  # the abandoned attempts finish (and record their events)
    events = emu.events(source="PreSignUp_SignUp")
    mine = [e for e in events if e["request"]["userAttributes"]["email"] == email]
    assert len(mine) == 3 and all(e == mine[0] for e in mine)
    with pytest.raises(ClientError):
        emu.client.admin_get_user(UserPoolId=POOL_ID, Username=email)


def test_a_trigger_retried_after_a_slow_first_attempt_completes_the_call(emu):
    requests.post(emu.url + "/_dev/reset", json={}, timeout=5).raise_for_status()
    email = new_email()
    emu.sign_up(email)
    emu.dev("/_dev/settings", {"triggerTimeoutSeconds": 0.5})
    try:
        emu.dev("/_dev/faults", {"trigger": "CreateAuthChallenge", "fault": "delay", "seconds": 0.8})
        started = emu.start(email)
    finally:
        emu.dev("/_dev/settings", {"triggerTimeoutSeconds": 5})
    assert started["ChallengeName"] == "CUSTOM_CHALLENGE"
    stats = requests.get(emu.url + "/_dev/stats", timeout=5).json()
    assert stats["invocations"]["create_auth_challenge"] == 2
    assert emu.answer(started["Session"], email, "42")["AuthenticationResult"]["IdToken"]
    bad = requests.post(emu.url + "/_dev/faults", json={"trigger": "Nope", "fault": "delay"}, timeout=5)
    assert bad.status_code == 400


# ------------------------------------------------------------------------ admin, dev, protocol

def test_list_users_pages_and_admin_delete_user_removes(emu):
    emails = [new_email("listed") for _ in range(3)]
    subs = [emu.sign_up(e)["UserSub"] for e in emails]
    seen, token = [], None
    while True:
        kwargs = {"PaginationToken": token} if token else {}
        page = emu.client.list_users(UserPoolId=POOL_ID, Limit=2, **kwargs)
        assert len(page["Users"]) <= 2
        seen += page["Users"]
        token = page.get("PaginationToken")
        if not token:
            break
    listed = {u["Username"]: u for u in seen}
    assert set(subs) <= set(listed)
    one = listed[subs[0]]
    assert one["UserStatus"] == "CONFIRMED" and one["Enabled"] is True
    assert one["UserCreateDate"].year >= 2024
    assert {"Name": "email", "Value": emails[0]} in one["Attributes"]
    filtered = emu.client.list_users(UserPoolId=POOL_ID, Filter='email = "%s"' % emails[1].upper())
    assert [u["Username"] for u in filtered["Users"]] == [subs[1]]

    emu.client.admin_update_user_attributes(
        UserPoolId=POOL_ID, Username=emails[2],
        UserAttributes=[{"Name": "email_verified", "Value": "true"},
                        {"Name": "custom:plan", "Value": "free"}])
    updated = emu.client.admin_get_user(UserPoolId=POOL_ID, Username=subs[2])["UserAttributes"]
    assert {"Name": "email_verified", "Value": "true"} in updated
    assert {"Name": "custom:plan", "Value": "free"} in updated
    with pytest.raises(ClientError) as excinfo:
        emu.client.admin_update_user_attributes(
            UserPoolId=POOL_ID, Username=subs[2],
            UserAttributes=[{"Name": "sub", "Value": str(uuid.uuid4())}])
    assert error_of(excinfo)[0] == "InvalidParameterException"

    emu.client.admin_delete_user(UserPoolId=POOL_ID, Username=emails[0])
    with pytest.raises(ClientError) as excinfo:
        emu.client.admin_get_user(UserPoolId=POOL_ID, Username=subs[0])
    assert error_of(excinfo) == ("UserNotFoundException", "User does not exist.")
    with pytest.raises(ClientError) as excinfo:
        emu.client.list_users(UserPoolId="us-east-1_Nope")
    assert error_of(excinfo)[0] == "ResourceNotFoundException"
    pool = emu.client.describe_user_pool(UserPoolId=POOL_ID)["UserPool"]
    assert pool["Id"] == POOL_ID and pool["Arn"].endswith("userpool/" + POOL_ID)
    assert pool["LambdaConfig"]["DefineAuthChallenge"].endswith(
        ":function:tinyapp-local-define_auth_challenge")


def test_protocol_errors(emu):
    def call(target, body, **headers):
        return requests.post(emu.url + "/", data=json.dumps(body), timeout=5, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **headers})
    unsigned = call("AWSCognitoIdentityProviderService.ListUsers", {"UserPoolId": POOL_ID})
    assert unsigned.status_code == 400
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    unknown = call("AWSCognitoIdentityProviderService.Frobnicate", {})
    assert (unknown.status_code, unknown.json()["__type"]) == (400, "UnknownOperationException")
    missing = call("AWSCognitoIdentityProviderService.InitiateAuth", {"ClientId": CLIENT_ID})
    assert missing.json()["__type"] == "InvalidParameterException"
    wrong_type = call("AWSCognitoIdentityProviderService.InitiateAuth", {
        "ClientId": CLIENT_ID, "AuthFlow": "CUSTOM_AUTH", "AuthParameters": {"USERNAME": 5}})
    assert wrong_type.json()["__type"] == "InvalidParameterException"


def test_faults_and_stats(emu):
    requests.post(emu.url + "/_dev/reset", json={}, timeout=5).raise_for_status()
    email = new_email()
    emu.sign_in(email)
    stats = requests.get(emu.url + "/_dev/stats", timeout=5).json()
    assert stats["calls"] == {"SignUp": 1, "InitiateAuth": 1, "RespondToAuthChallenge": 1,
                              "AdminUpdateUserAttributes": 1}
    assert stats["invocations"] == {"pre_sign_up": 1, "define_auth_challenge": 2,
                                    "create_auth_challenge": 1,
                                    "verify_auth_challenge_response": 1}

    emu.dev("/_dev/faults", {"operation": "InitiateAuth", "fault": "TooManyRequestsException",
                             "count": 1})
    with pytest.raises(ClientError) as excinfo:
        emu.start(email)
    assert error_of(excinfo)[0] == "TooManyRequestsException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert emu.start(email)["ChallengeName"] == "CUSTOM_CHALLENGE"  # the fault is used up

    emu.dev("/_dev/faults", {"operation": "GetUser", "fault": "InternalErrorException",
                             "count": 1})
    with pytest.raises(ClientError) as excinfo:
        emu.client.get_user(AccessToken="whatever")
    assert error_of(excinfo)[0] == "InternalErrorException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    bad = requests.post(emu.url + "/_dev/faults", json={"operation": "Nope", "fault": "x"},
                        timeout=5)
    assert bad.status_code == 400
    assert requests.get(emu.url + "/_dev/health", timeout=5).status_code == 200


def test_fifty_concurrent_sign_ins_do_not_interfere(emu):
    emails = [new_email("crowd") for _ in range(50)]
    barrier = threading.Barrier(50)
    client = emu.make_client(connections=50)

    def sign_in(email):
        sub = client.sign_up(ClientId=CLIENT_ID, Username=email, Password=PASSWORD,
                             SecretHash=secret_hash(email))["UserSub"]
        barrier.wait(10)
        started = client.initiate_auth(AuthFlow="CUSTOM_AUTH", ClientId=CLIENT_ID, AuthParameters={
            "USERNAME": email, "SECRET_HASH": secret_hash(email)})
        tokens = client.respond_to_auth_challenge(
            ClientId=CLIENT_ID, ChallengeName="CUSTOM_CHALLENGE", Session=started["Session"],
            ChallengeResponses={"USERNAME": email, "ANSWER": "42",
                                "SECRET_HASH": secret_hash(email)})["AuthenticationResult"]
        return sub, client.get_user(AccessToken=tokens["AccessToken"])

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(sign_in, emails))
    for email, (sub, user) in zip(emails, results):
        attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        assert user["Username"] == sub and attributes["email"] == email
        assert attributes["email_verified"] == "true"


# ------------------------------------------------------------------------ the user's own access token


def _attributes(emu, access_token):
    return {a["Name"]: a["Value"] for a in emu.client.get_user(AccessToken=access_token)["UserAttributes"]}


@pytest.fixture
def write_attributes(emu):
    """Set the app client's WriteAttributes for one test (UpdateUserPoolClient resets what it is
    not sent, so the original, never-set state comes back by sending none)."""
    def set_to(names):
        extra = {} if names is None else {"WriteAttributes": names}
        return emu.client.update_user_pool_client(UserPoolId=POOL_ID, ClientId=CLIENT_ID, **extra)
    yield set_to
    set_to(None)


def test_update_user_attributes_obeys_the_clients_write_attributes(emu, write_attributes):
    email = new_email()
    tokens = emu.sign_in(email)
    described = write_attributes(["locale"])["UserPoolClient"]
    assert described["WriteAttributes"] == ["locale"]
    for name, value in (("email", new_email("victim")), ("email_verified", "true"), ("name", "x")):
        with pytest.raises(ClientError) as excinfo:
            emu.client.update_user_attributes(AccessToken=tokens["AccessToken"],
                                              UserAttributes=[{"Name": name, "Value": value}])
        assert error_of(excinfo) == ("NotAuthorizedException", "A client attempted to write unauthorized attribute")
    emu.client.update_user_attributes(AccessToken=tokens["AccessToken"],
                                      UserAttributes=[{"Name": "locale", "Value": "de"}])
    assert _attributes(emu, tokens["AccessToken"])["locale"] == "de"
    assert _attributes(emu, tokens["AccessToken"])["email"] == email
    # SignUp obeys it too: a client that may not write email may not send it.
    with pytest.raises(ClientError) as excinfo:
        emu.sign_up(new_email())
    assert error_of(excinfo)[0] == "NotAuthorizedException"
    other = new_email()
    emu.client.sign_up(ClientId=CLIENT_ID, Username=other, Password=PASSWORD, SecretHash=secret_hash(other))
    assert emu.client.admin_get_user(UserPoolId=POOL_ID, Username=other)["Username"]


def test_a_client_without_write_attributes_lets_users_move_their_email(emu):
    """A client created without WriteAttributes: email is writable, becomes the sign-in name,
    and is unverified at once."""
    email, moved = new_email(), new_email("moved")
    tokens = emu.sign_in(email)
    assert "WriteAttributes" not in emu.client.describe_user_pool_client(
        UserPoolId=POOL_ID, ClientId=CLIENT_ID)["UserPoolClient"]
    assert _attributes(emu, tokens["AccessToken"])["email_verified"] == "true"
    answer = emu.client.update_user_attributes(AccessToken=tokens["AccessToken"],
                                               UserAttributes=[{"Name": "email", "Value": moved}])
    assert answer["CodeDeliveryDetailsList"] == []
    attributes = _attributes(emu, tokens["AccessToken"])
    assert attributes["email"] == moved and attributes["email_verified"] == "false"
    assert emu.start(moved)["ChallengeName"] == "CUSTOM_CHALLENGE"
    with pytest.raises(ClientError) as excinfo:
        emu.start(email)
    assert error_of(excinfo)[0] == "UserNotFoundException"
    taken = new_email("taken")
    emu.sign_up(taken)
    with pytest.raises(ClientError) as excinfo:
        emu.client.update_user_attributes(AccessToken=tokens["AccessToken"],
                                          UserAttributes=[{"Name": "email", "Value": taken}])
    assert error_of(excinfo)[0] == "AliasExistsException"


def test_attributes_that_require_verification_before_update(emu):
    email, wanted = new_email(), new_email("wanted")
    tokens = emu.sign_in(email)
    emu.dev("/_dev/settings", {"attributesRequireVerificationBeforeUpdate": ["email"]})
    try:
        pool = emu.client.describe_user_pool(UserPoolId=POOL_ID)["UserPool"]
        assert pool["UserAttributeUpdateSettings"] == {"AttributesRequireVerificationBeforeUpdate": ["email"]}
        answer = emu.client.update_user_attributes(AccessToken=tokens["AccessToken"],
                                                   UserAttributes=[{"Name": "email", "Value": wanted}])
        assert [d["AttributeName"] for d in answer["CodeDeliveryDetailsList"]] == ["email"]
        attributes = _attributes(emu, tokens["AccessToken"])
        assert attributes["email"] == email and attributes["email_verified"] == "true"  # the old one stays
        code = requests.get(emu.url + "/_dev/attribute-codes", params={"username": email}, timeout=5).json()
        with pytest.raises(ClientError) as excinfo:
            emu.client.verify_user_attribute(AccessToken=tokens["AccessToken"], AttributeName="email",
                                             Code=str((int(code["email"]["code"]) + 1) % 10 ** 6).zfill(6))
        assert error_of(excinfo)[0] == "CodeMismatchException"
        emu.client.verify_user_attribute(AccessToken=tokens["AccessToken"], AttributeName="email",
                                         Code=code["email"]["code"])
        attributes = _attributes(emu, tokens["AccessToken"])
        assert attributes["email"] == wanted and attributes["email_verified"] == "true"
    finally:
        emu.dev("/_dev/settings", {"attributesRequireVerificationBeforeUpdate": []})


def test_get_user_attribute_verification_code_then_verify(emu):
    email = new_email()
    emu.sign_up(email)
    started = emu.start(email)
    tokens = emu.answer(started["Session"], email, "41")  # wrong: a new round
    tokens = emu.answer(tokens["Session"], email, "42")["AuthenticationResult"]
    emu.client.admin_update_user_attributes(UserPoolId=POOL_ID, Username=email,
                                            UserAttributes=[{"Name": "email_verified", "Value": "false"}])
    sent = emu.client.get_user_attribute_verification_code(AccessToken=tokens["AccessToken"], AttributeName="email")
    assert sent["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    code = requests.get(emu.url + "/_dev/attribute-codes", params={"username": email}, timeout=5).json()
    emu.client.verify_user_attribute(AccessToken=tokens["AccessToken"], AttributeName="email",
                                     Code=code["email"]["code"])
    assert _attributes(emu, tokens["AccessToken"])["email_verified"] == "true"


def test_delete_user_with_its_own_token(emu):
    email = new_email()
    tokens = emu.sign_in(email)
    emu.client.delete_user(AccessToken=tokens["AccessToken"])
    with pytest.raises(ClientError) as excinfo:
        emu.client.admin_get_user(UserPoolId=POOL_ID, Username=email)
    assert error_of(excinfo)[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        emu.client.get_user(AccessToken=tokens["AccessToken"])
    assert error_of(excinfo)[0] == "NotAuthorizedException"


def test_read_attributes_limit_get_user(emu):
    tokens = emu.sign_in(new_email())
    emu.client.update_user_pool_client(UserPoolId=POOL_ID, ClientId=CLIENT_ID, ReadAttributes=["email"])
    try:
        assert set(_attributes(emu, tokens["AccessToken"])) == {"sub", "email"}
    finally:
        emu.client.update_user_pool_client(UserPoolId=POOL_ID, ClientId=CLIENT_ID)
    assert "email_verified" in _attributes(emu, tokens["AccessToken"])


# ------------------------------------------------------------------------ other clients, groups, other users


def test_another_client_signs_up_with_its_own_id_in_the_event(emu):
    other = emu.client.create_user_pool_client(UserPoolId=POOL_ID, ClientName="another-app",
                                               GenerateSecret=True)["UserPoolClient"]
    email = "unconfirmed-" + new_email()
    digest = hmac.new(other["ClientSecret"].encode(), (email + other["ClientId"]).encode(), hashlib.sha256).digest()
    answer = emu.client.sign_up(ClientId=other["ClientId"], Username=email, Password=PASSWORD,
                                SecretHash=base64.b64encode(digest).decode())
    (event,) = emu.events(answer["UserSub"], "PreSignUp_SignUp")
    assert event["callerContext"]["clientId"] == other["ClientId"]
    with pytest.raises(ClientError) as excinfo:  # its secret is its own
        emu.client.sign_up(ClientId=other["ClientId"], Username=new_email(), Password=PASSWORD,
                           SecretHash=secret_hash(new_email()))
    assert error_of(excinfo)[0] == "NotAuthorizedException"


def test_groups_admin_created_and_seeded_users(emu):
    group = "g-" + uuid.uuid4().hex[:8]
    emu.client.create_group(UserPoolId=POOL_ID, GroupName=group)
    with pytest.raises(ClientError) as excinfo:
        emu.client.create_group(UserPoolId=POOL_ID, GroupName=group)
    assert error_of(excinfo)[0] == "GroupExistsException"
    admin_email = new_email("admin")
    admin_made = emu.client.admin_create_user(UserPoolId=POOL_ID, Username=admin_email)["User"]
    assert admin_made["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    (event,) = emu.events(admin_made["Username"], "PreSignUp_AdminCreateUser")
    assert event["request"] == {"userAttributes": {"email": admin_email}, "validationData": None}
    assert event["response"] == {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}
    federated = emu.dev("/_dev/users", {"email": new_email("fed"), "status": "EXTERNAL_PROVIDER", "ageSeconds": 86400})
    for username in (admin_made["Username"], federated["Username"]):
        emu.client.admin_add_user_to_group(UserPoolId=POOL_ID, GroupName=group, Username=username)
    members = emu.client.list_users_in_group(UserPoolId=POOL_ID, GroupName=group, Limit=1)
    assert len(members["Users"]) == 1 and members["NextToken"]
    rest = emu.client.list_users_in_group(UserPoolId=POOL_ID, GroupName=group, NextToken=members["NextToken"])
    statuses = {u["UserStatus"] for u in members["Users"] + rest["Users"]}
    assert statuses == {"FORCE_CHANGE_PASSWORD", "EXTERNAL_PROVIDER"}
    emu.client.admin_remove_user_from_group(UserPoolId=POOL_ID, GroupName=group, Username=federated["Username"])
    assert [u["Username"] for u in emu.client.list_users_in_group(UserPoolId=POOL_ID, GroupName=group)["Users"]] \
        == [admin_made["Username"]]
    emu.client.admin_delete_user(UserPoolId=POOL_ID, Username=admin_made["Username"])
    assert emu.client.list_users_in_group(UserPoolId=POOL_ID, GroupName=group)["Users"] == []
