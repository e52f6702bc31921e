"""`python -m triggers connect` against a moto server over real HTTP (no AWS account).

Each test gets a fresh moto state, a copy of the project's `.chalice/config.json` in a
temporary project, and four real (moto) Lambda functions listed in a deployed file in
Chalice's format, as `chalice deploy` leaves it.
"""
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests import moto_gaps
from triggers import connect, disconnect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
TRIGGERS = connect.TRIGGERS
MUTATING = ("Create", "Update", "Put", "Add", "Remove", "Delete", "Set")


@pytest.fixture(scope="module")
def moto_url():
    with moto_gaps.patched():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch):
    """Fresh moto state; this process's boto3 pointed at it with fake credentials."""
    requests.post(moto_url + "/moto-api/reset", timeout=5).raise_for_status()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AUTHSIGNAL_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    class Aws:
        url = moto_url
        idp = boto3.client("cognito-idp", region_name=REGION)
        lam = boto3.client("lambda", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
    return Aws


def make_function(aws, name):
    try:
        role = aws.iam.get_role(RoleName="chalice-test-role")["Role"]["Arn"]
    except aws.iam.exceptions.NoSuchEntityException:
        role = aws.iam.create_role(RoleName="chalice-test-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return aws.lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                                   Code={"ZipFile": code.getvalue()})["FunctionArn"]


@pytest.fixture
def project(tmp_path, aws):
    """A project folder with the real config and a prod deployed file naming real functions."""
    (tmp_path / ".chalice" / "deployed").mkdir(parents=True)
    config = json.loads(open(os.path.join(ROOT, ".chalice", "config.json")).read())
    for stage in ("dev", "prod"):  # what the README asks a person to fill in first
        config["stages"][stage]["environment_variables"]["AUTHSIGNAL_TENANT_ID"] = f"tenant-{stage}-0001"
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    functions = {name: make_function(aws, f"cognito-authsignal-prod-{name}")  # Chalice's names
                 for name in [*TRIGGERS.values(), "api_handler"]}
    write_deployed(tmp_path, "prod", functions)
    return tmp_path, functions


def write_deployed(project_dir, stage, functions, rest_api_id=None):
    resources = [{"name": "default-role", "resource_type": "iam_role",
                  "role_arn": "arn:aws:iam::123456789012:role/x", "role_name": "x"}]
    if rest_api_id:
        resources.append({"name": "rest_api", "resource_type": "rest_api", "rest_api_id": rest_api_id,
                          "rest_api_url": f"https://{rest_api_id}.execute-api.{REGION}.amazonaws.com/api/"})
    resources += [{"name": name, "resource_type": "lambda_function", "lambda_arn": arn}
                  for name, arn in functions.items()]
    (project_dir / ".chalice" / "deployed" / f"{stage}.json").write_text(
        json.dumps({"resources": resources, "schema_version": "2.0", "backend": "api"}, indent=2))


def recording_session():
    """A boto3 session that remembers every operation it sends, with its parameters."""
    session = boto3.session.Session()
    calls = []
    session.events.register("provide-client-params.*.*",
                            lambda params, model, **_: calls.append((model.name, dict(params))))
    return session, calls


def run(project_dir, stage="prod", session=None, ask=None, environ=None, **kwargs):
    lines = []
    connector = connect.Connector(str(project_dir), stage, session=session, ask=ask, out=lines.append,
                                  environ={"AUTHSIGNAL_SECRET_KEY": "as-secret-key"} if environ is None else environ,
                                  **kwargs)
    done = connector.run()
    return done, "\n".join(lines)


def stage_env(project_dir, stage="prod"):
    return json.loads((project_dir / ".chalice" / "config.json").read_text())["stages"][stage]["environment_variables"]


def invoke_sources(aws, arn):
    try:
        policy = json.loads(aws.lam.get_policy(FunctionName=arn)["Policy"])
    except aws.lam.exceptions.ResourceNotFoundException:
        return []
    return [(s["Principal"]["Service"], s["Action"], s["Condition"]["ArnLike"]["AWS:SourceArn"])
            for s in policy["Statement"]]


def snapshot(aws, project_dir, functions):
    """What a refused run must leave untouched."""
    pools = aws.idp.list_user_pools(MaxResults=60)["UserPools"]
    return {
        "config": (project_dir / ".chalice" / "config.json").read_bytes(),
        "pools": sorted((p["Id"], json.dumps(aws.idp.describe_user_pool(UserPoolId=p["Id"])["UserPool"]
                                             .get("LambdaConfig"), sort_keys=True)) for p in pools),
        "clients": sorted(c["ClientId"] for p in pools
                          for c in aws.idp.list_user_pool_clients(UserPoolId=p["Id"], MaxResults=60)["UserPoolClients"]),
        "parameters": sorted(p["Name"] for p in aws.ssm.describe_parameters()["Parameters"]),
        "policies": {name: invoke_sources(aws, arn) for name, arn in functions.items()},
    }


# ---------------------------------------------------------------------------- happy paths

def test_new_pool_client_triggers_permissions_secrets_and_config(aws, project):
    project_dir, functions = project
    before = json.loads((project_dir / ".chalice" / "config.json").read_text())
    done, output = run(project_dir)

    env = stage_env(project_dir)
    pool_id, client_id = env["COGNITO_USER_POOL_ID"], env["COGNITO_CLIENT_ID"]
    pool = aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["Name"] == "cognito-authsignal-prod"
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["LambdaConfig"] == {trigger: functions[name] for trigger, name in TRIGGERS.items()}

    client = aws.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert client["ClientSecret"]
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["PreventUserExistenceErrors"] == "LEGACY"
    assert client["AuthSessionValidity"] == 10
    assert pool["DeletionProtection"] == "ACTIVE"
    assert client["EnableTokenRevocation"] is True
    assert client["WriteAttributes"] == ["locale"]  # never email: no moving an account onto another address
    assert aws.idp.get_group(UserPoolId=pool_id, GroupName=connect.PENDING_GROUP)["Group"]["GroupName"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName="cognito-authsignal-prod-limits")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" and env["LIMITS_TABLE"] == table["TableName"]
    assert dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}

    for name in TRIGGERS.values():
        assert invoke_sources(aws, functions[name]) == [
            ("cognito-idp.amazonaws.com", "lambda:InvokeFunction", pool["Arn"])], name
    assert invoke_sources(aws, functions["api_handler"]) == []  # Cognito never calls the API handler

    secret = aws.ssm.get_parameter(Name=env["COGNITO_CLIENT_SECRET_PARAM"], WithDecryption=True)["Parameter"]
    assert secret["Type"] == "SecureString" and secret["Value"] == client["ClientSecret"]
    key = aws.ssm.get_parameter(Name=env["AUTHSIGNAL_SECRET_KEY_PARAM"], WithDecryption=True)["Parameter"]
    assert key["Type"] == "SecureString" and key["Value"] == "as-secret-key"
    # The names were already in the stage; they are kept, and no secret reaches the file.
    assert env["COGNITO_CLIENT_SECRET_PARAM"] == "/cognito-authsignal/prod/cognito-client-secret"
    text = (project_dir / ".chalice" / "config.json").read_text()
    assert client["ClientSecret"] not in text and "as-secret-key" not in text
    assert "COGNITO_CLIENT_SECRET" not in env and "AUTHSIGNAL_SECRET_KEY" not in env

    after = json.loads(text)
    assert after["stages"]["local"] == before["stages"]["local"]
    assert after["environment_variables"] == before["environment_variables"]
    assert after["stages"]["dev"] == before["stages"]["dev"]
    assert f"created user pool {pool_id}" in output and "chalice deploy --stage prod" in output


def test_second_run_changes_nothing_and_says_so(aws, project):
    project_dir, functions = project
    run(project_dir)
    config = (project_dir / ".chalice" / "config.json").read_bytes()
    before = snapshot(aws, project_dir, functions)

    session, calls = recording_session()
    done, output = run(project_dir, session=session)
    assert done == [] and {"DescribeUserPool", "GetPolicy", "GetParameter"} <= {name for name, _ in calls}
    assert "Nothing to do" in output and "chalice deploy" not in output
    assert [name for name, _ in calls if name.startswith(MUTATING)] == []
    assert (project_dir / ".chalice" / "config.json").read_bytes() == config
    assert snapshot(aws, project_dir, functions) == before


def test_alarms_dashboard_and_topic_are_created_once_and_removed_by_disconnect(aws, project):
    from triggers import alarms

    project_dir, functions = project
    cloudwatch, sns = boto3.client("cloudwatch", region_name=REGION), boto3.client("sns", region_name=REGION)
    done, _ = run(project_dir, alarm_email="ops@example.com")
    names = [spec["AlarmName"] for spec in alarms.substitute(alarms.alarms(), {"AppStage": "prod"} | {
        k: "x" for k in ("AlarmTopic", "APIHandler", "AWS::Region")})]
    found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    assert sorted(found) == sorted(names) and len(names) == 5
    topic = f"arn:aws:sns:{REGION}:123456789012:cognito-authsignal-prod-alarms"
    assert all(a["AlarmActions"] == [topic] for a in found.values())
    errors = found["cognito-authsignal-prod-api-function-errors"]["Metrics"][0]["MetricStat"]["Metric"]
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": "cognito-authsignal-prod-api_handler"}]
    assert [s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]] == [
        "ops@example.com"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName="cognito-authsignal-prod")["DashboardBody"])
    assert all(w["properties"]["region"] == REGION for w in body["widgets"])
    assert run(project_dir, alarm_email="ops@example.com")[0] == []  # the second run changes nothing

    done, _ = undo(project_dir)
    assert cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"] == []
    assert cloudwatch.list_dashboards()["DashboardEntries"] == []
    assert topic not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]


def test_adopting_a_pool_keeps_its_other_settings(aws, project):
    project_dir, functions = project
    post_confirmation = "arn:aws:lambda:us-east-1:123456789012:function:welcome-mail"
    pool_id = aws.idp.create_user_pool(
        PoolName="existing", UsernameAttributes=["email"], UsernameConfiguration={"CaseSensitive": False},
        Schema=[{"Name": "team", "AttributeDataType": "String", "Mutable": True}],
        EmailConfiguration={"EmailSendingAccount": "COGNITO_DEFAULT", "ReplyToEmailAddress": "help@example.com"},
        Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireUppercase": False, "RequireLowercase": True,
                                     "RequireNumbers": True, "RequireSymbols": False,
                                     "TemporaryPasswordValidityDays": 3}},
        LambdaConfig={"PostConfirmation": post_confirmation},
        UserPoolTags={"owner": "team-a"},
    )["UserPool"]["Id"]
    before = aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]

    session, calls = recording_session()
    run(project_dir, pool_id=pool_id, session=session)

    after = aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert after["LambdaConfig"] == {"PostConfirmation": post_confirmation,
                                     **{t: functions[n] for t, n in TRIGGERS.items()}}
    assert after["EmailConfiguration"] == before["EmailConfiguration"]
    assert after["Policies"] == before["Policies"]
    assert after["SchemaAttributes"] == before["SchemaAttributes"]
    assert after["UserPoolTags"] == {"owner": "team-a"}
    assert after["Name"] == "existing"
    # The update carried the whole writable configuration, and no read-only field.
    [update] = [params for name, params in calls if name == "UpdateUserPool"]
    assert update["EmailConfiguration"]["ReplyToEmailAddress"] == "help@example.com"
    assert update["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert "UnusedAccountValidityDays" not in update.get("AdminCreateUserConfig", {})
    assert not {"Id", "Arn", "CreationDate", "LastModifiedDate", "SchemaAttributes",
                "EstimatedNumberOfUsers", "UsernameAttributes"} & set(update)
    assert [name for name, _ in calls if name == "CreateUserPool"] == []
    env = stage_env(project_dir)
    assert env["COGNITO_USER_POOL_ID"] == pool_id
    for name in TRIGGERS.values():
        assert invoke_sources(aws, functions[name])[0][2] == after["Arn"]

    assert run(project_dir)[0] == []  # recorded now: the next run finds it without --pool-id


def test_update_sends_only_members_of_the_input_shape_and_never_the_unused_validity():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("cognito-idp") \
        .operation_model("UpdateUserPool").input_shape
    described = {
        "Id": "us-east-1_abc", "Name": "adopted", "Arn": "arn:aws:cognito-idp:us-east-1:1:userpool/us-east-1_abc",
        "Status": "Enabled", "EstimatedNumberOfUsers": 3, "Domain": "d", "SchemaAttributes": [],
        "UsernameAttributes": ["email"], "DeletionProtection": "ACTIVE", "UserPoolTier": "ESSENTIALS",
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7},
        "Policies": {"PasswordPolicy": {"MinimumLength": 8}},  # no TemporaryPasswordValidityDays here
        "SomethingNewerBotocoreReturns": {"a": 1},
    }
    request = connect.update_pool_request(described, {"PreSignUp": "arn:aws:lambda:us-east-1:1:function:f"})
    assert set(request) <= set(shape.members)
    assert request["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": False}
    assert request["PoolName"] == "adopted" and request["DeletionProtection"] == "ACTIVE"
    assert request["UserPoolTier"] == "ESSENTIALS" and request["UserPoolId"] == "us-east-1_abc"


def test_adopted_pool_with_the_unused_validity_is_updated_without_it(aws, project):
    project_dir, functions = project
    pool_id = aws.idp.create_user_pool(
        PoolName="old", UsernameAttributes=["email"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7})["UserPool"]["Id"]
    assert aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["AdminCreateUserConfig"][
        "UnusedAccountValidityDays"] == 7  # moto hands it back, as AWS does
    session, calls = recording_session()
    run(project_dir, pool_id=pool_id, session=session)
    [update] = [params for name, params in calls if name == "UpdateUserPool"]
    assert update["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": False}


def test_session_minutes_option_and_its_limits(aws, project):
    project_dir, functions = project
    run(project_dir)
    client_id = stage_env(project_dir)["COGNITO_CLIENT_ID"]
    pool_id = stage_env(project_dir)["COGNITO_USER_POOL_ID"]
    done, _ = run(project_dir, session_minutes=15)
    assert any("AuthSessionValidity=15" in line for line in done)
    client = aws.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert client["AuthSessionValidity"] == 15 and client["ClientSecret"]
    assert run(project_dir, session_minutes=15)[0] == []
    for wrong in (2, 16, "10"):
        with pytest.raises(connect.ConnectError, match="3 to 15 minutes"):
            run(project_dir, session_minutes=wrong)


def make_api(aws):
    """A REST API with its `api` stage, as `chalice deploy` leaves it."""
    apigw = boto3.client("apigateway", region_name=REGION)
    api = apigw.create_rest_api(name="cognito-authsignal")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigw.create_deployment(restApiId=api, stageName="api")
    return apigw, api


def test_api_stage_is_throttled_idempotently_with_options(aws, project):
    project_dir, functions = project
    apigw, api = make_api(aws)
    write_deployed(project_dir, "prod", functions, rest_api_id=api)
    done, _ = run(project_dir)
    assert any("10 requests/s, burst 20" in line for line in done)
    limits = apigw.get_stage(restApiId=api, stageName="api")["methodSettings"]["*/*"]
    assert (limits["throttlingRateLimit"], limits["throttlingBurstLimit"]) == (10, 20)
    assert run(project_dir)[0] == []
    done, _ = run(project_dir, rate_limit=2.5, burst_limit=5)
    assert done == [f"throttled API {api} stage api: 2.5 requests/s, burst 5"]
    limits = apigw.get_stage(restApiId=api, stageName="api")["methodSettings"]["*/*"]
    assert (limits["throttlingRateLimit"], limits["throttlingBurstLimit"]) == (2.5, 5)
    for rate, burst in ((0, 5), (5, 0), (5, 2.5)):
        with pytest.raises(connect.ConnectError, match="throttling"):
            run(project_dir, rate_limit=rate, burst_limit=burst)


def test_waf_option_puts_a_web_acl_in_front_of_the_stage_once_and_disconnect_removes_it(aws, project):
    project_dir, functions = project
    apigw, api = make_api(aws)
    write_deployed(project_dir, "prod", functions, rest_api_id=api)
    wafv2 = boto3.client("wafv2", region_name=REGION)
    stage_arn = f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/api"
    assert run(project_dir)[0] and wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] == []  # only when asked

    done, _ = run(project_dir, waf_rate_limit=100)
    assert "created WAF web ACL cognito-authsignal-prod-auth: at most 100 requests to /auth/ per IP in 5 minutes" in done
    [summary] = wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"]
    acl = wafv2.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])["WebACL"]
    [rule] = acl["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert (rate["Limit"], rate["AggregateKeyType"]) == (100, "IP")
    assert rate["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"] in ("/auth/", b"/auth/")
    assert wafv2.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]["ARN"] == summary["ARN"]
    assert run(project_dir, waf_rate_limit=100)[0] == []  # a second run changes nothing

    done, _ = run(project_dir, waf_rate_limit=300)
    assert done == ["updated WAF web ACL cognito-authsignal-prod-auth"]
    for wrong in (0, 9, 2.5):
        with pytest.raises(connect.ConnectError, match="--waf"):
            run(project_dir, waf_rate_limit=wrong)

    done, _ = undo(project_dir, delete_users=True)
    assert "deleted WAF web ACL cognito-authsignal-prod-auth" in done
    assert wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] == []


def test_the_templates_waf_is_the_one_connect_makes():
    from triggers import waf

    with open(os.path.join(ROOT, "triggers", "cloudformation.json")) as handle:
        template = json.load(handle)
    assert template == waf.template_with_waf(template), "run: python -m triggers.alarms --write-template"


def test_adopting_a_client_that_lets_users_write_email_fixes_it_and_says_so(aws, project):
    """An adopted pool whose client (found by name) was created without WriteAttributes, and
    which already has users: connect restricts the client and says what it will touch."""
    project_dir, functions = project
    pool_id = aws.idp.create_user_pool(PoolName="existing", UsernameAttributes=["email"],
                                       UsernameConfiguration={"CaseSensitive": False})["UserPool"]["Id"]
    client_id = aws.idp.create_user_pool_client(UserPoolId=pool_id, ClientName="cognito-authsignal-prod",
                                                GenerateSecret=True)["UserPoolClient"]["ClientId"]
    assert "WriteAttributes" not in aws.idp.describe_user_pool_client(UserPoolId=pool_id,
                                                                      ClientId=client_id)["UserPoolClient"]
    for i in range(3):
        aws.idp.admin_create_user(UserPoolId=pool_id, Username=f"existing-{i}@example.com")

    done, output = run(project_dir, pool_id=pool_id)
    client = aws.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert client["WriteAttributes"] == ["locale"]
    assert f"updated app client {client_id}" in output and "can no longer change their own email" in output
    assert "every standard attribute, email included" in output  # what it was
    assert f"User pool {pool_id} already has about 3 user(s)" in output
    assert "cleanup job is off" in output and connect.PENDING_GROUP in output
    assert "never deletes admin-created, federated, other clients' or verified users" in output
    assert aws.idp.list_users_in_group(UserPoolId=pool_id, GroupName=connect.PENDING_GROUP)["Users"] == []

    done, output = run(project_dir)  # fixed: the next run changes nothing
    assert done == [] and "Nothing to do" in output


def test_a_client_with_prevent_user_existence_errors_enabled_is_set_back_to_legacy_and_why(aws, project):
    """Someone turned it on after connect (console, their own template): every new email then
    fails with 'expired or was already used'. The next run sets LEGACY and says why."""
    project_dir, functions = project
    run(project_dir)
    env = stage_env(project_dir)
    pool_id, client_id = env["COGNITO_USER_POOL_ID"], env["COGNITO_CLIENT_ID"]
    client = aws.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    changed = connect._client_request(client, {"PreventUserExistenceErrors": "ENABLED"})
    aws.idp.update_user_pool_client(**changed)
    assert aws.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)[
        "UserPoolClient"]["PreventUserExistenceErrors"] == "ENABLED"

    done, output = run(project_dir)
    client = aws.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert client["PreventUserExistenceErrors"] == "LEGACY"
    assert client["WriteAttributes"] == ["locale"]  # the rest of the client kept
    assert f"updated app client {client_id}: PreventUserExistenceErrors=LEGACY (was ENABLED)" in output
    assert "never signed new people up" in output and "set LEGACY there too" in output
    done, output = run(project_dir)
    assert done == [] and "Nothing to do" in output


def test_a_run_that_lost_its_config_finds_its_pool_and_client_by_name(aws, project):
    project_dir, functions = project
    run(project_dir)
    first = stage_env(project_dir)
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    for name in ("COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID"):
        del config["stages"]["prod"]["environment_variables"][name]
    (project_dir / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))

    done, _ = run(project_dir)
    assert len(aws.idp.list_user_pools(MaxResults=60)["UserPools"]) == 1
    assert [line for line in done if not line.startswith("recorded")] == []
    again = stage_env(project_dir)
    assert (again["COGNITO_USER_POOL_ID"], again["COGNITO_CLIENT_ID"]) == (
        first["COGNITO_USER_POOL_ID"], first["COGNITO_CLIENT_ID"])


def test_recorded_pool_that_was_deleted(aws, project):
    project_dir, functions = project
    run(project_dir)
    pool = aws.idp.describe_user_pool(UserPoolId=stage_env(project_dir)["COGNITO_USER_POOL_ID"])["UserPool"]
    aws.idp.update_user_pool(**{**connect.update_pool_request(pool, pool["LambdaConfig"]),
                                "DeletionProtection": "INACTIVE"})
    aws.idp.delete_user_pool(UserPoolId=pool["Id"])
    message = refused(aws, project_dir, functions, "does not exist")
    assert "COGNITO_USER_POOL_ID" in message and "--pool-id" in message


def test_existing_secret_key_in_ssm_is_kept_and_nothing_is_asked(aws, project):
    project_dir, _ = project
    aws.ssm.put_parameter(Name="/cognito-authsignal/prod/authsignal-secret-key", Value="already-there",
                          Type="SecureString")
    asked = []
    run(project_dir, environ={}, ask=lambda prompt: asked.append(prompt))
    assert asked == []
    value = aws.ssm.get_parameter(Name="/cognito-authsignal/prod/authsignal-secret-key", WithDecryption=True)
    assert value["Parameter"]["Value"] == "already-there"


def test_command_line_end_to_end(aws, project):
    project_dir, functions = project
    env = {**os.environ, "AUTHSIGNAL_SECRET_KEY": "from-the-shell"}
    command = [sys.executable, "-m", "triggers", "connect", "--stage", "prod", "--project-dir", str(project_dir)]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "created user pool" in first.stdout and "chalice deploy --stage prod" in first.stdout
    assert "from-the-shell" not in first.stdout + first.stderr
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and "Nothing to do" in second.stdout, second.stdout + second.stderr


# ---------------------------------------------------------------------------- disconnect

def undo(project_dir, stage="prod", **kwargs):
    lines = []
    done = disconnect.Disconnector(str(project_dir), stage, out=lines.append, **kwargs).run()
    return done, "\n".join(lines)


def add_user(aws, pool_id, email="someone@example.com"):
    aws.idp.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": email}])


def test_disconnect_deletes_the_created_pool_secrets_policies_and_records(aws, project):
    project_dir, functions = project
    before = json.loads((project_dir / ".chalice" / "config.json").read_text())
    run(project_dir)
    pool_id = stage_env(project_dir)["COGNITO_USER_POOL_ID"]
    with pytest.raises(aws.idp.exceptions.InvalidParameterException, match="deletion protection"):
        aws.idp.delete_user_pool(UserPoolId=pool_id)  # protected against a stray delete

    done, _ = undo(project_dir)
    assert any("deletion protection off" in line for line in done)
    assert aws.idp.list_user_pools(MaxResults=60)["UserPools"] == []
    assert aws.ssm.describe_parameters()["Parameters"] == []
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []
    assert any("deleted DynamoDB table cognito-authsignal-prod-limits" in line for line in done)
    assert all(invoke_sources(aws, functions[name]) == [] for name in TRIGGERS.values())
    after = json.loads((project_dir / ".chalice" / "config.json").read_text())
    assert after == before  # ids and policy files forgotten; the committed settings stay
    assert not list((project_dir / ".chalice").glob("policy-prod-*.json"))
    assert undo(project_dir, region=REGION)[0] == []  # nothing left to undo


def test_disconnect_asks_before_deleting_a_pool_with_users(aws, project):
    project_dir, functions = project
    run(project_dir)
    pool_id = stage_env(project_dir)["COGNITO_USER_POOL_ID"]
    add_user(aws, pool_id)
    config = (project_dir / ".chalice" / "config.json").read_bytes()
    asked = []
    for answer in (None, "no", "y"):
        with pytest.raises(connect.ConnectError, match="has users and was not deleted"):
            undo(project_dir, ask=lambda prompt: asked.append(prompt) or answer)
        assert aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Id"] == pool_id
        assert (project_dir / ".chalice" / "config.json").read_bytes() == config
    assert "still has users" in asked[0]
    undo(project_dir, ask=lambda prompt: pool_id)
    assert aws.idp.list_user_pools(MaxResults=60)["UserPools"] == []


def test_disconnect_never_deletes_an_adopted_pool(aws, project):
    project_dir, functions = project
    post_confirmation = "arn:aws:lambda:us-east-1:123456789012:function:welcome-mail"
    pool_id = aws.idp.create_user_pool(PoolName="theirs", UsernameAttributes=["email"],
                                       LambdaConfig={"PostConfirmation": post_confirmation},
                                       UserPoolTags={"owner": "team-a"})["UserPool"]["Id"]
    add_user(aws, pool_id)
    run(project_dir, pool_id=pool_id)
    client_id = stage_env(project_dir)["COGNITO_CLIENT_ID"]
    done, _ = undo(project_dir, delete_users=True)
    pool = aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["LambdaConfig"] == {"PostConfirmation": post_confirmation}
    assert pool["UserPoolTags"] == {"owner": "team-a"}
    assert len(aws.idp.list_users(UserPoolId=pool_id)["Users"]) == 1
    assert [c["ClientId"] for c in aws.idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)[
        "UserPoolClients"]] == []
    assert any(f"deleted app client {client_id}" in line for line in done)
    assert all(invoke_sources(aws, functions[name]) == [] for name in TRIGGERS.values())


# ---------------------------------------------------------------------------- bad input

def refused(aws, project_dir, functions, match, **kwargs):
    before = snapshot(aws, project_dir, functions)
    with pytest.raises(connect.ConnectError, match=match) as error:
        run(project_dir, **kwargs)
    assert "Traceback" not in str(error.value)
    assert snapshot(aws, project_dir, functions) == before
    return str(error.value)


def test_missing_deployed_file(aws, project):
    project_dir, functions = project
    (project_dir / ".chalice" / "deployed" / "prod.json").unlink()
    message = refused(aws, project_dir, functions, "no .chalice/deployed/prod.json")
    assert "chalice deploy --stage prod" in message


def test_partial_deployed_file(aws, project):
    project_dir, functions = project
    write_deployed(project_dir, "prod", {"pre_sign_up": functions["pre_sign_up"],
                                         "api_handler": functions["api_handler"]})
    message = refused(aws, project_dir, functions, "lacks the trigger function")
    assert "define_auth_challenge" in message and "verify_auth_challenge_response" in message


def test_garbled_deployed_file(aws, project):
    project_dir, functions = project
    (project_dir / ".chalice" / "deployed" / "prod.json").write_text("{\"resources\": ")
    refused(aws, project_dir, functions, "not valid JSON")


def test_deployed_function_gone_from_the_account(aws, project):
    project_dir, functions = project
    aws.lam.delete_function(FunctionName=functions["create_auth_challenge"])
    live = {k: v for k, v in functions.items() if k != "create_auth_challenge"}
    refused(aws, project_dir, live, "create_auth_challenge .* not in the account")


def test_unknown_pool_id(aws, project):
    project_dir, functions = project
    message = refused(aws, project_dir, functions, "us-east-1_DoesNotExist", pool_id="us-east-1_DoesNotExist")
    assert "does not exist" in message


def test_pool_wired_to_other_functions_is_refused_unless_forced(aws, project):
    project_dir, functions = project
    other = "arn:aws:lambda:us-east-1:123456789012:function:someone-elses-define"
    pool_id = aws.idp.create_user_pool(PoolName="shared", UsernameAttributes=["email"],
                                       LambdaConfig={"DefineAuthChallenge": other})["UserPool"]["Id"]
    message = refused(aws, project_dir, functions, "already wired to other functions", pool_id=pool_id)
    assert f"DefineAuthChallenge -> {other}" in message and "--force" in message

    done, _ = run(project_dir, pool_id=pool_id, force=True)
    assert any(f"(was {other})" in line for line in done)
    config = aws.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]
    assert config["DefineAuthChallenge"] == functions["define_auth_challenge"]


def test_pool_without_email_sign_in_is_refused(aws, project):
    project_dir, functions = project
    pool_id = aws.idp.create_user_pool(PoolName="usernames")["UserPool"]["Id"]
    refused(aws, project_dir, functions, "email as the sign-in name", pool_id=pool_id)


def test_no_authsignal_key_and_no_terminal(aws, project):
    project_dir, functions = project
    message = refused(aws, project_dir, functions, "AUTHSIGNAL_SECRET_KEY", environ={}, ask=lambda prompt: None)
    assert "/cognito-authsignal/prod/authsignal-secret-key" in message


@pytest.mark.parametrize("name, value", [("AUTHSIGNAL_TENANT_ID", "REPLACE-with-your-tenant-id"),
                                         ("AUTHSIGNAL_TENANT_ID", "<tenant id>"),
                                         ("AUTHSIGNAL_TENANT_ID", "your-tenant-id"),
                                         ("AUTHSIGNAL_TENANT_ID", ""),
                                         ("AUTHSIGNAL_UI_ORIGIN", "https://REPLACE me")])
def test_placeholder_settings_are_refused(aws, project, name, value):
    project_dir, functions = project
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    config["stages"]["prod"]["environment_variables"][name] = value
    (project_dir / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    message = refused(aws, project_dir, functions, name)
    assert "environment_variables in .chalice/config.json" in message and "Nothing was changed" in message


@pytest.mark.parametrize("key", ["...", "REPLACE-with-your-secret-key", "<secret key>", "sk live 123"])
def test_placeholder_secret_key_is_refused(aws, project, key):
    project_dir, functions = project
    message = refused(aws, project_dir, functions, "AUTHSIGNAL_SECRET_KEY", environ={"AUTHSIGNAL_SECRET_KEY": key})
    assert "placeholder" in message and "AUTHSIGNAL_SECRET_KEY in this shell" in message
    assert "Nothing was changed" in message


def test_offline_stage_is_refused(aws, project):
    project_dir, functions = project
    write_deployed(project_dir, "local", functions)
    refused(aws, project_dir, functions, "offline dev stack", stage="local")


def test_no_credentials(aws, project, tmp_path):
    project_dir, functions = project
    before = snapshot(aws, project_dir, functions)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": aws.url, "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AUTHSIGNAL_SECRET_KEY": "x"})
    result = subprocess.run([sys.executable, "-m", "triggers", "connect", "--stage", "prod",
                             "--project-dir", str(project_dir)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "No AWS credentials found" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(aws, project_dir, functions) == before


# ---------------------------------------------------------------------------- least privilege

LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
# What each function may do once connected, besides writing its own logs.
# With the cleanup on (the tests below turn it on): the API puts new sign-ups in the
# cleanup's group, Verify takes proven users out, the job deletes the rest.
NEEDS = {
    "pre_sign_up": set(),
    "define_auth_challenge": set(),
    "create_auth_challenge": {"ssm:GetParameter"},
    "verify_auth_challenge_response": {"ssm:GetParameter", "cognito-idp:AdminUpdateUserAttributes",
                                       "cognito-idp:AdminRemoveUserFromGroup"},
    # Otherwise Cognito's unauthenticated operations, which need no IAM action.
    "api_handler": {"ssm:GetParameter", "cognito-idp:AdminAddUserToGroup", "dynamodb:UpdateItem", "dynamodb:GetItem"},
    "delete_unverified_users": {"cognito-idp:ListUsersInGroup", "cognito-idp:AdminRemoveUserFromGroup",
                                "cognito-idp:AdminDeleteUser"},
    # The authorizer verifies tokens against the pool's public JWKS: no AWS call at all.
    "cognito_access_token": set(),
}


def _listed(value):
    return value if isinstance(value, list) else [value]


def policy_problems(document, partition, pool, parameters, log_group, foreign=(), table=None):
    """Why `document` is not least privilege for one function of one stage (empty: it is).

    Resources are ARNs (path 1) or their template form (path 2: `Fn::Sub` text, or
    `GetAtt:UserPool.Arn`). `partition` is what every ARN must start with; `pool`,
    `parameters`, `table` and `log_group` are the only things it may name; `foreign` are another
    stage's names that must appear nowhere."""
    problems = []
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow":
            problems.append(f"not an Allow statement: {statement}")
        actions = _listed(statement["Action"])
        for resource in _listed(statement["Resource"]):
            if isinstance(resource, dict):
                resource = resource.get("Fn::Sub") or "GetAtt:" + ".".join(resource["Fn::GetAtt"])
            if resource == "*" or "*" in resource.replace(log_group + ":*", ""):
                problems.append(f"wildcard resource {resource}")
            if resource.startswith("arn:") and not resource.startswith(partition):
                problems.append(f"hard-coded or wrong partition in {resource}")
            for name in foreign:
                if name in resource:
                    problems.append(f"another stage's name {name} in {resource}")
            for action in actions:
                if "*" in action:
                    problems.append(f"wildcard action {action}")
                service = action.split(":")[0]
                allowed = {"cognito-idp": {pool}, "ssm": set(parameters), "dynamodb": {table},
                           "logs": {log_group, log_group + ":*"}}.get(service)
                if allowed is None:
                    problems.append(f"unexpected service {action}")
                elif resource not in allowed:
                    problems.append(f"{action} on {resource}, not on its own {sorted(allowed)}")
    return problems


def test_committed_policies_before_connect_allow_logs_only():
    """Shared by every stage until `connect` writes the stage's own: no pool, no secret."""
    import app

    with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
        config = json.load(handle)
    assert config["autogen_policy"] is False
    functions = {"api_handler"} | {f.name for f in app.app.pure_lambda_functions} | {
        f.name for f in app.app.event_sources} | {f.name for f in app.app.builtin_auth_handlers}
    assert set(config["lambda_functions"]) == functions
    for stage, body in config["stages"].items():
        assert "lambda_functions" not in body or all(
            "iam_policy_file" not in f for f in body["lambda_functions"].values()), stage
    for name, settings in config["lambda_functions"].items():
        with open(os.path.join(ROOT, ".chalice", settings["iam_policy_file"])) as handle:
            policy = json.load(handle)
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and set(statement["Action"]) <= LOGS, name
            for resource in statement["Resource"]:
                assert resource.startswith("arn:*:logs:*:*:log-group:/aws/lambda/cognito-authsignal-"), resource


def test_stage_policies_take_the_partition_from_the_arns():
    functions = {name: f"arn:aws-cn:lambda:cn-north-1:123456789012:function:cognito-authsignal-prod-{name}"
                 for name in NEEDS}
    pool = "arn:aws-cn:cognito-idp:cn-north-1:123456789012:userpool/cn-north-1_Abc"
    parameters = {"COGNITO_CLIENT_SECRET_PARAM": "/cognito-authsignal/prod/cognito-client-secret",
                  "AUTHSIGNAL_SECRET_KEY_PARAM": "/cognito-authsignal/prod/authsignal-secret-key"}
    table = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/cognito-authsignal-prod-limits"
    documents = connect.stage_policies(functions, pool, parameters, cleanup=True, table_arn=table)
    for name, document in documents.items():
        group = f"arn:aws-cn:logs:cn-north-1:123456789012:log-group:/aws/lambda/cognito-authsignal-prod-{name}"
        arns = {f"arn:aws-cn:ssm:cn-north-1:123456789012:parameter{p}" for p in parameters.values()}
        assert policy_problems(document, "arn:aws-cn:", pool, arns, group, table=table) == [], name
        assert {a for s in document["Statement"] for a in s["Action"]} == LOGS | NEEDS[name], name
    without = connect.stage_policies(functions, pool, parameters, cleanup=False)
    assert {a for s in without["delete_unverified_users"]["Statement"] for a in s["Action"]} == LOGS
    assert {a for s in without["api_handler"]["Statement"] for a in s["Action"]} == LOGS | {"ssm:GetParameter"}
    assert "cognito-idp:AdminRemoveUserFromGroup" not in {
        a for s in without["verify_auth_challenge_response"]["Statement"] for a in s["Action"]}


def test_connect_writes_each_stages_own_least_privilege_policies(aws, project):
    project_dir, functions = project
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["environment_variables"]["CLEANUP_UNVERIFIED_USERS"] = "true"
    config["stages"]["prod"]["environment_variables"]["CLEANUP_UNVERIFIED_USERS"] = "true"
    (project_dir / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    dev_functions = {name: make_function(aws, f"cognito-authsignal-dev-{name}")
                     for name in [*TRIGGERS.values(), "api_handler", "delete_unverified_users", "cognito_access_token"]}
    for name in ("delete_unverified_users", "cognito_access_token"):
        functions[name] = make_function(aws, f"cognito-authsignal-prod-{name}")
    write_deployed(project_dir, "prod", functions)
    write_deployed(project_dir, "dev", dev_functions)
    run(project_dir, "prod")
    run(project_dir, "dev")

    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    names = {}
    for stage, stage_functions in (("prod", functions), ("dev", dev_functions)):
        env = config["stages"][stage]["environment_variables"]
        pool = aws.idp.describe_user_pool(UserPoolId=env["COGNITO_USER_POOL_ID"])["UserPool"]["Arn"]
        names[stage] = {"pool": pool, "functions": stage_functions,
                        "parameters": {f"arn:aws:ssm:{REGION}:123456789012:parameter{env[k]}"
                                       for k in ("COGNITO_CLIENT_SECRET_PARAM", "AUTHSIGNAL_SECRET_KEY_PARAM")}}
    assert names["prod"]["pool"] != names["dev"]["pool"]
    for stage, other in (("prod", "dev"), ("dev", "prod")):
        recorded = config["stages"][stage]["lambda_functions"]
        assert set(recorded) == set(NEEDS)
        foreign = [names[other]["pool"], f"/{other}/", *[arn.split(":")[6] for arn in names[other]["functions"].values()]]
        for name, arn in names[stage]["functions"].items():
            path = project_dir / ".chalice" / recorded[name]["iam_policy_file"]
            assert path.name == f"policy-{stage}-{name.replace('_', '-')}.json"
            document = json.loads(path.read_text())
            group = f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{arn.split(':')[6]}"
            table = f"arn:aws:dynamodb:{REGION}:123456789012:table/cognito-authsignal-{stage}-limits"
            assert policy_problems(document, "arn:aws:", names[stage]["pool"], names[stage]["parameters"],
                                   group, foreign, table) == [], (stage, name)
            actions = {a for s in document["Statement"] for a in _listed(s["Action"])}
            assert actions == LOGS | NEEDS[name], (stage, name)
    assert run(project_dir, "prod")[0] == []  # written once; a re-run leaves them


# ---------------------------------------------------------------------------- one CloudFormation stack

CHALICE = os.path.join(os.path.dirname(sys.executable), "chalice")
CFN_LINT = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
TRIGGER_IDS = ["PreSignUp", "DefineAuthChallenge", "CreateAuthChallenge", "VerifyAuthChallengeResponse"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("stack")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    built = subprocess.run([CHALICE, "package", "--stage", "prod", "--merge-template",
                            os.path.join("triggers", "cloudformation.json"), str(out)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    return out / "sam.json"


def references(node):
    """Logical ids a template fragment depends on (Ref, GetAtt, Sub)."""
    found = set()
    if isinstance(node, dict):
        if "Ref" in node and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            import re
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def test_cfn_lint_passes(stack):
    result = subprocess.run([CFN_LINT, str(stack)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stack_has_pool_client_triggers_permissions_and_outputs(stack):
    template = json.loads(stack.read_text())
    resources = template["Resources"]
    pool = resources["UserPool"]
    assert pool["Type"] == "AWS::Cognito::UserPool"
    assert pool["Properties"]["UsernameAttributes"] == ["email"]
    assert pool["Properties"]["UsernameConfiguration"] == {"CaseSensitive": False}
    client = resources["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is True and client["UserPoolId"] == {"Ref": "UserPool"}
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["PreventUserExistenceErrors"] == "LEGACY"
    assert client["AuthSessionValidity"] == {"Ref": "SessionMinutes"}
    assert template["Parameters"]["SessionMinutes"]["Default"] == 10
    # A stack delete or a replacing update must not take the users with it.
    assert pool["DeletionPolicy"] == "Retain" and pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"

    lambda_config = pool["Properties"]["LambdaConfig"]
    assert set(lambda_config) == set(TRIGGER_IDS)
    for logical_id in TRIGGER_IDS:
        function = resources[logical_id]
        assert function["Type"] == "AWS::Serverless::Function"
        # The pool names each function by its FunctionName, so it need not wait for the function.
        name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert lambda_config[logical_id]["Fn::Sub"].endswith(":function:" + name)
        permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
                       and r["Properties"]["FunctionName"] == {"Ref": logical_id}]
        assert permissions == [{"FunctionName": {"Ref": logical_id}, "Action": "lambda:InvokeFunction",
                                "Principal": "cognito-idp.amazonaws.com",
                                "SourceArn": {"Fn::GetAtt": ["UserPool", "Arn"]},
                                "SourceAccount": {"Ref": "AWS::AccountId"}}], logical_id

    for logical_id in [*TRIGGER_IDS, "APIHandler", "DeleteUnverifiedUsers"]:
        variables = resources[logical_id]["Properties"]["Environment"]["Variables"]
        assert variables["COGNITO_USER_POOL_ID"] == {"Ref": "UserPool"}, logical_id
        assert variables["COGNITO_CLIENT_ID"] == {"Ref": "UserPoolClient"}, logical_id
        assert variables["AUTHSIGNAL_API_URL"].startswith("https://"), logical_id  # the stage's own values stay
    api_env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_env["COGNITO_CLIENT_SECRET"] == {"Fn::GetAtt": ["UserPoolClient", "ClientSecret"]}
    assert not any("ClientSecret" in json.dumps(output) for output in template["Outputs"].values())
    assert "COGNITO_CLIENT_SECRET" not in resources["CreateAuthChallenge"]["Properties"]["Environment"]["Variables"]

    [throttle] = resources["RestAPI"]["Properties"]["MethodSettings"]
    assert throttle["ResourcePath"] == "/*" and throttle["HttpMethod"] == "*"
    assert 0 < throttle["ThrottlingRateLimit"] <= throttle["ThrottlingBurstLimit"]
    assert "${RestAPI}" in template["Outputs"]["SiteURL"]["Value"]["Fn::Sub"]
    assert template["Outputs"]["UserPoolId"]["Value"] == {"Ref": "UserPool"}
    assert resources["DeleteUnverifiedUsers"]["Properties"]["Events"]["DeleteUnverifiedUsersEvent"]["Type"] == "Schedule"


def test_stack_has_the_limits_table_and_waf_in_front_of_the_sign_in_routes(stack):
    template = json.loads(stack.read_text())
    resources = template["Resources"]
    table = resources["LimitsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table" and table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}
    assert resources["APIHandler"]["Properties"]["Environment"]["Variables"]["LIMITS_TABLE"] == {"Ref": "LimitsTable"}
    others = [k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function" and k != "APIHandler"]
    for logical_id in others:  # only the API counts; the others never name the table
        assert "LimitsTable" not in json.dumps(resources[logical_id]), logical_id

    acl = resources["WebAcl"]
    assert acl["Condition"] == "HasWaf" and acl["Properties"]["Scope"] == "REGIONAL"
    assert acl["Properties"]["DefaultAction"] == {"Allow": {}}
    [rule] = acl["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP" and rate["Limit"] == {"Ref": "WafRateLimit"}
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}} and match["SearchString"] == "/auth/"
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    association = resources["WebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert "/restapis/${RestAPI}/stages/" in association["ResourceArn"]["Fn::Sub"]
    assert template["Parameters"]["WafRateLimit"]["Default"] == 100


def test_api_gateways_own_answers_carry_the_apps_security_headers(stack):
    """Its 429 throttle, 404 for an unknown route (also a preflight: no OPTIONS route), other
    4xx and 5xx, and the authorizer's answers: one definition (chalicelib.http) in the template."""
    from chalicelib import http

    definition = json.loads(stack.read_text())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = definition["x-amazon-apigateway-gateway-responses"]
    assert responses == http.gateway_responses()
    assert {"THROTTLED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX", "ACCESS_DENIED"} <= set(responses)
    for kind, response in responses.items():
        headers = {name.removeprefix("gatewayresponse.header."): value
                   for name, value in response["responseParameters"].items()}
        for name, value in {**http.BASE_HEADERS, "Cache-Control": "no-store"}.items():
            assert headers[name] == f"'{value}'", (kind, name)  # a static value, in API Gateway's quotes
        # 'none' needs quotes inside the quoted value; sandbox needs none: no script, its own origin.
        assert headers["Content-Security-Policy"] == "'sandbox'", kind
        body = response["responseTemplates"]["application/json"]
        assert body.startswith('{"error": {"code": "') and '"message": ' in body, kind
    assert responses["THROTTLED"]["statusCode"] == 429
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404
    assert "statusCode" not in responses["DEFAULT_4XX"]  # each 4xx keeps its own status


# What the cleanup's switch adds, per function (connect.CLEANUP_POOL_ACTIONS).
CLEANUP_ACTIONS = {name: set(actions) for name, actions in connect.CLEANUP_POOL_ACTIONS.items()}


def with_conditions(node, conditions):
    """A template fragment with each `Fn::If` on a condition in `conditions` ({name: bool})
    chosen, and `AWS::NoValue` dropped (what CloudFormation deploys)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] in conditions:
            name, yes, no = node["Fn::If"]
            return with_conditions(yes if conditions[name] else no, conditions)
        return {k: with_conditions(v, conditions) for k, v in node.items()}
    if isinstance(node, list):
        return [with_conditions(v, conditions) for v in node if with_conditions(v, conditions) != {"Ref": "AWS::NoValue"}]
    return node


@pytest.mark.parametrize("cleanup", [True, False], ids=["cleanup-on", "cleanup-off"])
def test_stack_policies_are_least_privilege_and_partition_aware(stack, cleanup):
    template = json.loads(stack.read_text())
    assert template["Conditions"]["CleanupOn"] == {"Fn::Equals": [{"Ref": "CleanupUnverifiedUsers"}, "true"]}
    assert template["Parameters"]["CleanupUnverifiedUsers"]["Default"] == "false"
    resources = with_conditions(template["Resources"], {"CleanupOn": cleanup})
    roles = {"PreSignUp": "pre_sign_up", "DefineAuthChallenge": "define_auth_challenge",
             "CreateAuthChallenge": "create_auth_challenge", "VerifyAuthChallengeResponse": "verify_auth_challenge_response",
             "DeleteUnverifiedUsers": "delete_unverified_users", "APIHandler": "api_handler",
             "CognitoAccessToken": "cognito_access_token"}
    secret = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/cognito-authsignal/${AWS::StackName}/authsignal-secret-key"
    checked = set()
    for logical_id, name in roles.items():
        function = resources[logical_id]["Properties"]
        role = function["Role"]["Fn::GetAtt"][0]
        function_name = function["FunctionName"]["Fn::Sub"]
        assert function_name.startswith("${AWS::StackName}-")
        group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/" + function_name
        [policy] = resources[role]["Properties"]["Policies"]
        assert policy_problems(policy["PolicyDocument"], "arn:${AWS::Partition}:", "GetAtt:UserPool.Arn",
                               {secret}, group, foreign=["/prod/", "/dev/"], table="GetAtt:LimitsTable.Arn") == [], \
            logical_id
        actions = {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
        # The API handler gets the client secret from the stack (no SSM read) in this path.
        wanted = NEEDS[name] - ({"ssm:GetParameter"} if name == "api_handler" else set())
        assert actions == LOGS | (wanted if cleanup else wanted - CLEANUP_ACTIONS.get(name, set())), logical_id
        # Each function reads the switch from the same parameter that grants the actions.
        assert function["Environment"]["Variables"]["CLEANUP_UNVERIFIED_USERS"] == {"Ref": "CleanupUnverifiedUsers"}
        if "ssm:GetParameter" in actions:
            assert function["Environment"]["Variables"]["AUTHSIGNAL_SECRET_KEY_PARAM"] == {
                "Fn::Sub": "/cognito-authsignal/${AWS::StackName}/authsignal-secret-key"}
        checked.add(role)
    assert checked == {k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    assert "arn:aws:" not in stack.read_text()


def test_stack_has_no_dependency_cycle(stack):
    # cfn-lint does not see cycles through SAM functions; a cycle (pool -> function ARN,
    # function env -> pool) would fail at deploy time, so check the graph here.
    resources = json.loads(stack.read_text())["Resources"]
    graph = {name: references(body) & set(resources) for name, body in resources.items()}
    state = {}

    def visit(node, path):
        if state.get(node) == "open":
            pytest.fail("dependency cycle: " + " -> ".join(path + [node]))
        if state.get(node) == "done":
            return
        state[node] = "open"
        for target in graph[node]:
            visit(target, path + [node])
        state[node] = "done"
    for name in graph:
        visit(name, [])
    assert "UserPool" in graph["PreSignUp"] and "PreSignUp" not in graph["UserPool"]
