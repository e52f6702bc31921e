"""Credentials as the SDKs find them: the environment first (Lambda), else botocore's chain
(profiles, SSO, credential_process, ...), refreshed when they run out; and a clear answer when
there are none. Against a moto server standing in for SSM and Cognito, over real HTTP."""
import json
import os
import sys

import boto3
import pytest
from chalice.test import Client
from moto.server import ThreadedMotoServer

from chalicelib import aws_credentials, aws_json, cognito_gateway, settings
from tests.conftest import ROOT, free_port
from tests.test_aws_json import TARGET, serving

PARAMETER = "/cognito-authsignal/dev/cognito-client-secret"


@pytest.fixture
def moto(monkeypatch):
    """A moto server as the endpoint of every AWS service (AWS_ENDPOINT_URL, as botocore reads it)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for name in ("AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    settings._ssm_parameter.cache_clear()
    yield url
    settings._ssm_parameter.cache_clear()
    server.stop()


def test_with_only_a_named_profile_the_ssm_read_and_a_signed_admin_call_succeed(aws_profile, moto, monkeypatch):
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    ssm = boto3.client("ssm", region_name="us-east-1")  # boto3 finds the same profile
    ssm.put_parameter(Name=PARAMETER, Value="from-ssm-via-profile", Type="SecureString")
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool = cognito.create_user_pool(PoolName="p", UsernameAttributes=["email"])["UserPool"]["Id"]
    username = cognito.admin_create_user(UserPoolId=pool, Username="someone@example.com",
                                         MessageAction="SUPPRESS")["User"]["Username"]
    monkeypatch.setenv("COGNITO_CLIENT_SECRET_PARAM", PARAMETER)
    monkeypatch.delenv("COGNITO_CLIENT_SECRET", raising=False)

    assert settings.secret("COGNITO_CLIENT_SECRET", "us-east-1") == "from-ssm-via-profile"
    cognito_gateway.mark_email_verified("us-east-1", pool, username)  # signed, endpoint from AWS_ENDPOINT_URL
    user = cognito.admin_get_user(UserPoolId=pool, Username=username)
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email_verified"] == "true"
    assert aws_credentials.current().access_key == aws_profile["aws_access_key_id"]


def test_the_environment_comes_before_the_profile_as_in_botocore(aws_profile, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAFROMTHEENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    assert aws_credentials.current() == ("ASIAFROMTHEENVIRONMENT", "env-secret", None)
    assert boto3.session.Session().get_credentials().access_key == "ASIAFROMTHEENVIRONMENT"


def test_temporary_credentials_are_refreshed_when_they_run_out(no_aws_credentials, monkeypatch, tmp_path):
    """A credential_process that hands out credentials valid for one minute: botocore's object
    refreshes them before each use (under its 10-minute mandatory-refresh window)."""
    config, _ = no_aws_credentials
    counter = tmp_path / "issued"
    script = tmp_path / "issue.py"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "n = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(n))\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': f'ASIAISSUED{n:04d}', 'SecretAccessKey': 's',\n"
        "                  'SessionToken': 't', 'Expiration': expires.isoformat()}))\n")
    config.write_text(f"[profile issued]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_PROFILE", "issued")
    with serving() as (server, url):
        for _ in range(2):
            aws_json.call(url, TARGET, {}, 1, 1, sign=("us-east-1", "cognito-idp"))
        signed_with = [request["Authorization"].split("Credential=")[1].split("/")[0] for request in server.requests]
    assert signed_with[0].startswith("ASIAISSUED") and signed_with[0] != signed_with[1]
    assert all(request["X-Amz-Security-Token"] == "t" for request in server.requests)


def test_a_profile_that_does_not_exist_is_named(no_aws_credentials, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(aws_credentials.NoCredentials, match="no-such-profile"):
        aws_credentials.current()


# --- the route: a calm answer, and the fix in the operator's log -----------------------------

def project(tmp_path, **variables):
    """A Chalice project dir whose stage `aws` is the local stage with the client secret in SSM."""
    with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
        config = json.load(handle)
    stage = dict(config["stages"]["local"]["environment_variables"])
    del stage["COGNITO_CLIENT_SECRET"]
    stage.update(COGNITO_CLIENT_SECRET_PARAM=PARAMETER, **variables)
    config["stages"] = {"aws": {"environment_variables": stage}}
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


@pytest.fixture
def app_log():
    """What the Chalice app logs (its logger does not propagate: Chalice gives it its own handler)."""
    import io
    import logging

    import app

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    app.app.log.addHandler(handler)
    yield stream
    app.app.log.removeHandler(handler)


def start(project_dir):
    import app

    app._pool = None
    settings._ssm_parameter.cache_clear()
    with Client(app.app, stage_name="aws", project_dir=project_dir) as client:
        response = client.http.post("/auth/start", body=json.dumps({"email": "someone@example.com"}),
                                    headers={"Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def test_no_credentials_at_all_is_not_configured_and_the_log_names_the_fix(no_aws_credentials, tmp_path, app_log):
    status, body = start(project(tmp_path, AWS_ENDPOINT_URL_SSM=f"http://127.0.0.1:{free_port()}"))
    assert (status, body["error"]["code"]) == (500, "not_configured")
    logged = app_log.getvalue()
    assert PARAMETER in logged and "COGNITO_CLIENT_SECRET_PARAM" in logged
    assert "AWS_PROFILE" in logged and "aws sso login" in logged and "Traceback" not in logged


def test_ssm_access_denied_is_not_configured_and_the_log_names_the_permission(tmp_path, app_log, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-never-logged")
    denied = (400, b'{"__type": "AccessDeniedException", "message": "User: arn:aws:sts::1:assumed-role/x is not '
                   b'authorized to perform: ssm:GetParameter"}')
    with serving(denied) as (server, url):
        status, body = start(project(tmp_path, AWS_ENDPOINT_URL_SSM=url))
        assert len(server.requests) == 1  # a refusal is not retried
    assert (status, body["error"]["code"]) == (500, "not_configured")
    logged = app_log.getvalue()
    assert "AccessDeniedException" in logged and "ssm:GetParameter on it and kms:Decrypt" in logged
    assert "env-secret-never-logged" not in logged


def test_ssm_out_of_reach_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    status, body = start(project(tmp_path, AWS_ENDPOINT_URL_SSM=f"http://127.0.0.1:{free_port()}"))
    assert (status, body["error"]["code"]) == (503, "unavailable")
