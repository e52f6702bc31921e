"""The deployment package runs as Lambda runs it.

`chalice package --stage prod` builds the zip; it is unzipped, and every function the stack
deploys (the API handler for every route, the four triggers, the scheduled cleanup) runs in
a fresh `python -I -S` with only the unzipped package, the Lambda runtime's own packages
(boto3 and its dependencies at the runtime's versions: tests/lambda-runtime.in) and the
standard library on its path, against the dev stack. The dev virtualenv, where `requests`
and friends would hide a missing dependency, is out of reach.
"""
import json
import os
import subprocess
import sys
import uuid
import zipfile
from http.cookies import SimpleCookie

import pytest

from tests.test_triggers import event as trigger_event

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME = os.path.join(ROOT, ".lambda-runtime")
RUNNER = os.path.join(ROOT, "tests", "lambda_runtime.py")
HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
ORIGIN = f"https://{HOST}"
STAGE = "api"  # api_gateway_stage in .chalice/config.json


@pytest.fixture(scope="module")
def task_root(package, tmp_path_factory):
    """The zip unpacked as Lambda unpacks it into /var/task."""
    root = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(package["zip"]) as archive:
        archive.extractall(root)
    return str(root)


def lambda_env(devstack):
    """What Lambda sets, with the local stage's settings pointing at the dev stack.
    AWS_LAMBDA_FUNCTION_NAME stays unset: with it the settings refuse loopback endpoints,
    as a deployed function must."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": "/var/task", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIADEVSTACK", "AWS_SECRET_ACCESS_KEY": "devstack", "AWS_SESSION_TOKEN": "devstack",
        **devstack.local_env(),
    }


class DeployedFunction:
    """One function's sandbox: a cold interpreter that imports the handler once and answers events."""

    def __init__(self, task_root, handler, env, log_path):
        assert os.path.isdir(RUNTIME), "run `make test` (it installs the Lambda runtime's packages)"
        self.log_path = log_path
        self._log = open(log_path, "w")
        self._process = subprocess.Popen([sys.executable, "-I", "-S", RUNNER, task_root, RUNTIME, handler],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                         text=True, env=env, cwd=task_root)
        self.foreign = None

    def __call__(self, event):
        self._process.stdin.write(json.dumps(event) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline() or '{"error": "the interpreter died"}')
        assert "error" not in answer, answer["error"] + self.log()
        return answer["result"]

    def log(self):
        with open(self.log_path) as handle:
            return handle.read()

    def close(self):
        self._process.stdin.close()
        self.foreign = json.loads(self._process.stdout.readline())["foreign"]
        self._process.wait(10)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._process.poll() is None:
            self.close()


def deployed_handlers(template):
    """Every function of the stack: {handler string: its resource}."""
    return {resource["Properties"]["Handler"]: resource for resource in template["Resources"].values()
            if resource["Type"] == "AWS::Serverless::Function"}


def answer_sub(answer):
    from chalicelib.signin import jwt_claims

    return jwt_claims(answer["idToken"])["sub"]


def api_event(method, resource, body=None, headers=None, path_parameters=None, authorizer=None, query=None):
    """A REST API proxy event as API Gateway sends it for the deployed stage."""
    path = resource.replace("{name}", (path_parameters or {}).get("name", ""))
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
               "User-Agent": "Mozilla/5.0", **(headers or {})}
    if body is not None:
        body = json.dumps(body)
        headers = {"Content-Type": "application/json", "Origin": ORIGIN, **headers}
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query, "multiValueQueryStringParameters":
            {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": f"/{STAGE}{path}",
                           "stage": STAGE, "domainName": HOST, "requestId": str(uuid.uuid4()),
                           "identity": {"sourceIp": "203.0.113.9", "userAgent": "Mozilla/5.0"},
                           **({"authorizer": authorizer} if authorizer else {})},
        "body": body, "isBase64Encoded": False,
    }


def set_cookies(response):
    values = (response.get("multiValueHeaders") or {}).get("Set-Cookie") or []
    single = (response.get("headers") or {}).get("Set-Cookie")
    return values + ([single] if single else [])


def test_every_route_runs_from_the_unzipped_package(task_root, package, devstack, tmp_path):
    calls = []

    def call(method, resource, body=None, **kwargs):
        calls.append((resource, method.lower()))
        response = api(api_event(method, resource, body, **kwargs))
        assert response["statusCode"] < 500, (resource, response["body"], api.log()[-2000:])
        return response

    typed = f"pkg-{uuid.uuid4().hex[:8]}@ＥＸＡＭＰＬＥ.com"  # full-width: the domain goes through idna
    email = typed.split("@")[0] + "@example.com"
    with DeployedFunction(task_root, "app.app", lambda_env(devstack), tmp_path / "api.log") as api:
        assert call("GET", "/")["headers"]["Content-Type"].startswith("text/html")
        assert call("GET", "/static/{name}", path_parameters={"name": "app.js"})["statusCode"] == 200
        assert json.loads(call("GET", "/config")["body"])["tenantId"]
        started = json.loads(call("POST", "/auth/start", {"email": typed})["body"])
        assert started["status"] == "CHALLENGE", started
        token = devstack.token_for(started["challengeUrl"], email)
        finished = call("POST", "/auth/finish", {"email": typed, "session": started["session"], "token": token})
        answer = json.loads(finished["body"])
        assert answer["status"] == "SIGNED_IN", answer
        cookie = SimpleCookie()
        cookie.load(set_cookies(finished)[0])
        assert cookie and all(morsel["path"] == f"/{STAGE}/auth" for morsel in cookie.values())
        cookie_header = "; ".join(f"{name}={morsel.value}" for name, morsel in cookie.items())
        bearer = {"Authorization": f"Bearer {answer['accessToken']}"}
        # API Gateway ran the authorizer first (test below) and hands the route its context.
        verified = {"sub": answer_sub(answer), "username": answer_sub(answer), "clientId": "c", "scope": "",
                    "authTime": 0, "expiresAt": 1, "verifiedBy": "local", "principalId": answer_sub(answer)}
        local = json.loads(call("GET", "/api/me", headers=bearer, authorizer=verified)["body"])
        assert local["sub"] == answer_sub(answer) and local["verifiedBy"] == "local"
        checked = call("GET", "/api/me", headers=bearer, authorizer=verified, query={"check": "cognito"})
        assert json.loads(checked["body"])["email"] == email
        assert call("POST", "/api/passkey-token", {}, headers={**bearer, "Origin": ORIGIN})["statusCode"] == 200
        refreshed = call("POST", "/auth/refresh", {}, headers={"Cookie": cookie_header})
        assert json.loads(refreshed["body"])["status"] == "SIGNED_IN"
        assert call("POST", "/auth/sign-out", {}, headers={"Cookie": cookie_header})["statusCode"] == 204
    assert api.foreign == {}, api.foreign
    assert "ModuleNotFoundError" not in api.log() and "ImportError" not in api.log()

    # Every route of the deployed API was called above.
    paths = package["template"]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    routes = {(path, method) for path, methods in paths.items() for method in methods if method != "options"}
    assert routes == set(calls)


@pytest.fixture
def signed_up(devstack):
    """A user of the dev stack's pool, signed up through the app's own API (its sub and email)."""
    from chalice.test import Client

    import app
    email = f"trigger-{uuid.uuid4().hex[:8]}@example.com"
    with Client(app.app, stage_name="local", project_dir=devstack.project_dir) as client:
        started = client.http.post("/auth/start", body=json.dumps({"email": email}),
                                   headers={"Content-Type": "application/json"})
    assert started.status_code == 200, started.body
    import boto3

    cognito = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url,
                           aws_access_key_id="devstack", aws_secret_access_key="devstack")
    user = cognito.admin_get_user(UserPoolId=devstack.local_env()["COGNITO_USER_POOL_ID"], Username=email)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}["sub"], email


def test_every_trigger_and_the_cleanup_run_from_the_unzipped_package(task_root, package, devstack, signed_up,
                                                                    tmp_path):
    sub, email = signed_up
    env = lambda_env(devstack)
    handlers = deployed_handlers(package["template"])
    ran = {"app.app"}  # the test above

    def deployed(handler):
        ran.add(handler)
        return DeployedFunction(task_root, handler, env, tmp_path / f"{handler}.log")

    functions = []
    with deployed("triggers.pre_sign_up") as pre_sign_up:
        functions.append(pre_sign_up)
        sign_up = {**trigger_event("DefineAuthChallenge_Authentication", {}), "triggerSource": "PreSignUp_SignUp",
                   "userName": str(uuid.uuid4()),  # before the user exists: no sub, nothing verified yet
                   "request": {"userAttributes": {"email": "new@example.com"}, "validationData": None},
                   "response": {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}}
        out = pre_sign_up(sign_up)
        assert out["response"]["autoConfirmUser"] is True
    with deployed("triggers.define_auth_challenge") as define:
        functions.append(define)
        out = define(trigger_event("DefineAuthChallenge_Authentication", {"session": []}, sub=sub, email=email))
        assert out["response"]["challengeName"] == "CUSTOM_CHALLENGE"
    with deployed("triggers.create_auth_challenge") as create:
        functions.append(create)
        created = create(trigger_event("CreateAuthChallenge_Authentication",
                                       {"session": [], "challengeName": "CUSTOM_CHALLENGE"}, sub=sub, email=email))
    token = devstack.token_for(created["response"]["publicChallengeParameters"]["url"], email)
    with deployed("triggers.verify_auth_challenge_response") as verify:
        functions.append(verify)
        request = {"privateChallengeParameters": created["response"]["privateChallengeParameters"],
                   "challengeAnswer": token, "clientMetadata": None}
        out = verify(trigger_event("VerifyAuthChallengeResponse_Authentication", request, sub=sub, email=email))
        assert out["response"] == {"answerCorrect": True}
    with deployed("app.cognito_access_token") as authorizer:
        functions.append(authorizer)
        signed_in = _sign_in_through_the_api(devstack)
        arn = "arn:aws:execute-api:us-east-1:123456789012:abc123defg/api/GET/api/me"
        allowed = authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {signed_in['accessToken']}",
                              "methodArn": arn})
        [statement] = allowed["policyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Resource"] == [arn.rsplit("/", 3)[0] + "/*/*"]
        assert allowed["principalId"] == answer_sub(signed_in) and allowed["context"]["verifiedBy"] == "local"
        refused = authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {signed_in['idToken']}",
                              "methodArn": arn})
        assert refused["policyDocument"]["Statement"][0]["Effect"] == "Deny"
        assert refused["context"]["code"] == "wrong_token"
    with deployed("app.delete_unverified_users") as cleanup:
        functions.append(cleanup)
        scheduled = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                     "source": "aws.events", "account": "123456789012", "time": "2026-12-06T10:00:00Z",
                     "region": "us-east-1", "resources": [], "detail": {}}
        assert isinstance(cleanup(scheduled)["deleted"], int)
    for function in functions:
        assert function.foreign == {}, function.foreign
        assert "ModuleNotFoundError" not in function.log() and "ImportError" not in function.log()
    assert ran == set(handlers), "a deployed function that this test does not run"


def _sign_in_through_the_api(devstack):
    from chalice.test import Client

    import app
    email = f"authz-{uuid.uuid4().hex[:8]}@example.com"
    headers = {"Content-Type": "application/json"}
    with Client(app.app, stage_name="local", project_dir=devstack.project_dir) as client:
        started = json.loads(client.http.post("/auth/start", body=json.dumps({"email": email}), headers=headers).body)
        token = devstack.token_for(started["challengeUrl"], email)
        finished = client.http.post("/auth/finish", headers=headers, body=json.dumps(
            {"email": email, "session": started["session"], "token": token}))
    return json.loads(finished.body)


def test_a_module_missing_from_the_package_is_caught(task_root, devstack, tmp_path):
    # The check itself can fail: with idna taken out of the unzipped package, /auth/start
    # answers 500 and the log names the missing module (what every deployed sign-in did).
    import shutil

    broken = tmp_path / "task"
    shutil.copytree(task_root, broken, ignore=shutil.ignore_patterns("idna", "idna-*"))
    with DeployedFunction(str(broken), "app.app", lambda_env(devstack), tmp_path / "api.log") as api:
        response = api(api_event("POST", "/auth/start", {"email": "someone@example.com"}))
    assert response["statusCode"] == 500
    assert "No module named 'idna'" in api.log()
