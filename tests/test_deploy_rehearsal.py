"""Path 1 of the README's Deploy section, rehearsed end to end against a moto server.

The real `chalice deploy`, `python -m triggers connect` and `chalice delete` run as the
README says, as subprocesses pointed at moto (AWS_ENDPOINT_URL), on a copy of the
project. moto's gaps are patched in one place, `tests/moto_gaps.py` (nothing else is).
Slow (three packaged deploys): about two minutes on an idle machine.
"""
import json
import os
import shutil
import subprocess
import sys

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests import moto_gaps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
REGION = "us-east-1"
STAGE = "prod"
LEFT_OUT = {".git", ".venv", "node_modules", "tests", "devstack", "bench", "docs", ".ci", ".devstack",
            "__pycache__", ".pytest_cache", ".hypothesis", "build", "artifacts"}


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    """A moto server (moto's gaps patched) and a copy of the project with its tenant id filled in."""
    project = tmp_path_factory.mktemp("rehearsal") / "project"
    shutil.copytree(ROOT, project, symlinks=True, ignore=lambda folder, names: [n for n in names if n in LEFT_OUT])
    for path in (project / ".chalice").glob("policy-*-*-*.json"):
        if path.name.startswith(("policy-dev-", "policy-prod-")):
            path.unlink()  # a stage's own policies come from connect in this account
    shutil.rmtree(project / ".chalice" / "deployed", ignore_errors=True)
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"][STAGE]["environment_variables"]["AUTHSIGNAL_TENANT_ID"] = "tenant-prod-0001"
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    with moto_gaps.patched():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        # moto's state is per process: start from an empty account whatever ran before.
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=30).raise_for_status()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTHSIGNAL_"))}
        env.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
        yield project, env
        server.stop()


def sh(account, *command, extra=None, timeout=600):
    project, env = account
    result = subprocess.run(list(command), cwd=project, env={**env, **(extra or {})}, capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, " ".join(command) + "\n" + result.stdout + result.stderr
    return result.stdout


def chalice(account, *args):
    return sh(account, os.path.join(BIN, "chalice"), *args, "--stage", STAGE)


def triggers(account, *args, key="as-secret-key"):
    return sh(account, sys.executable, "-m", "triggers", *args, "--stage", STAGE,
              extra={"AUTHSIGNAL_SECRET_KEY": key, "PYTHONPATH": ROOT})


def clients(account):
    _, env = account
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return {name: session.client(name, endpoint_url=env["AWS_ENDPOINT_URL"])
            for name in ("cognito-idp", "lambda", "ssm", "iam", "apigateway")}


def stage_config(account):
    project, _ = account
    return json.loads((project / ".chalice" / "config.json").read_text())["stages"][STAGE]


def role_policy(aws, function):
    name = f"cognito-authsignal-{STAGE}-{function}"
    return aws["iam"].get_role_policy(RoleName=name, PolicyName=name)["PolicyDocument"]


def function_env(aws, function):
    name = f"cognito-authsignal-{STAGE}" + ("" if function == "api_handler" else f"-{function}")
    return aws["lambda"].get_function_configuration(FunctionName=name)["Environment"]["Variables"]


def test_path_1_deploy_connect_deploy_reconnect_cleanup_switch_and_tear_down(account):
    project, _ = account
    aws = clients(account)

    # 1. chalice deploy: the functions, each with the committed logs-only policy.
    out = chalice(account, "deploy")
    assert "Rest API URL" in out
    deployed = json.loads((project / ".chalice" / "deployed" / f"{STAGE}.json").read_text())
    api_id = next(r["rest_api_id"] for r in deployed["resources"] if r["resource_type"] == "rest_api")
    first = role_policy(aws, "verify_auth_challenge_response")
    assert {a for s in first["Statement"] for a in s["Action"]} <= {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}

    # 2. connect: pool, client, triggers, secrets, throttling, the stage's own policies.
    out = triggers(account, "connect")
    assert "created user pool" in out and f"chalice deploy --stage {STAGE}" in out
    recorded = stage_config(account)
    pool_id = recorded["environment_variables"]["COGNITO_USER_POOL_ID"]
    pool = aws["cognito-idp"].describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["DeletionProtection"] == "ACTIVE"
    assert set(recorded["lambda_functions"]) == {"api_handler", "pre_sign_up", "define_auth_challenge",
                                                 "create_auth_challenge", "verify_auth_challenge_response",
                                                 "delete_unverified_users", "cognito_access_token"}
    limits = aws["apigateway"].get_stage(restApiId=api_id, stageName="api")["methodSettings"]["*/*"]
    assert (limits["throttlingRateLimit"], limits["throttlingBurstLimit"]) == (10, 20)
    # The authorizer's refusals answer as 401s in the API's error shape (chalicelib/authorizer.py).
    denied = aws["apigateway"].get_gateway_response(restApiId=api_id, responseType="ACCESS_DENIED")
    assert str(denied["statusCode"]) == "401" and "$context.authorizer.message" in denied["responseTemplates"][
        "application/json"]
    client = aws["cognito-idp"].describe_user_pool_client(
        UserPoolId=pool_id, ClientId=recorded["environment_variables"]["COGNITO_CLIENT_ID"])["UserPoolClient"]
    assert client["AccessTokenValidity"] == 10 and client["TokenValidityUnits"]["AccessToken"] == "minutes"

    # 3. The second deploy applies the ids and the policies, and keeps the same API.
    chalice(account, "deploy")
    again = json.loads((project / ".chalice" / "deployed" / f"{STAGE}.json").read_text())
    assert next(r["rest_api_id"] for r in again["resources"] if r["resource_type"] == "rest_api") == api_id
    written = json.loads((project / ".chalice" / "policy-prod-verify-auth-challenge-response.json").read_text())
    assert role_policy(aws, "verify_auth_challenge_response") == written
    assert {"cognito-idp:AdminUpdateUserAttributes"} in [set(s["Action"]) for s in written["Statement"]]
    assert all(s["Resource"] == pool["Arn"] for s in written["Statement"] if s["Sid"] == "OwnPool")
    assert function_env(aws, "api_handler")["COGNITO_USER_POOL_ID"] == pool_id
    assert "OwnPool" not in [s["Sid"] for s in role_policy(aws, "delete_unverified_users")["Statement"]]

    # 4. connect again changes nothing, and the redeploy kept the throttling.
    assert "Nothing to do" in triggers(account, "connect")

    # 5. The cleanup switch: the stage turns it on; connect grants the job its pool, a deploy applies it.
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"][STAGE]["environment_variables"]["CLEANUP_UNVERIFIED_USERS"] = "true"
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    out = triggers(account, "connect")
    assert "delete_unverified_users's IAM policy" in out and "chalice deploy" in out
    chalice(account, "deploy")
    cleanup = role_policy(aws, "delete_unverified_users")
    assert [s for s in cleanup["Statement"] if s["Sid"] == "OwnPool"] == [
        {"Sid": "OwnPool", "Effect": "Allow", "Action": ["cognito-idp:ListUsersInGroup",
                                                         "cognito-idp:AdminRemoveUserFromGroup",
                                                         "cognito-idp:AdminDeleteUser"],
         "Resource": pool["Arn"]}]
    assert "cognito-idp:AdminAddUserToGroup" in {
        a for s in role_policy(aws, "api_handler")["Statement"] for a in s["Action"]}
    assert function_env(aws, "delete_unverified_users")["CLEANUP_UNVERIFIED_USERS"] == "true"
    assert "Nothing to do" in triggers(account, "connect")

    # 6. Tear down: chalice delete, then disconnect (the created pool goes, protection lifted first).
    chalice(account, "delete")
    assert aws["lambda"].list_functions()["Functions"] == []
    out = triggers(account, "disconnect")
    assert "deletion protection off" in out and f"deleted user pool {pool_id}" in out
    assert aws["cognito-idp"].list_user_pools(MaxResults=60)["UserPools"] == []
    assert aws["ssm"].describe_parameters()["Parameters"] == []
    left = stage_config(account)
    assert "COGNITO_USER_POOL_ID" not in left["environment_variables"] and "lambda_functions" not in left
    assert not list((project / ".chalice").glob("policy-prod-*.json"))
