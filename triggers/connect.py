"""Create or adopt the user pool and app client, and wire the four triggers to it.

Run after `chalice deploy --stage <s>` (see `python -m triggers connect --help`). Every
step reads first and changes only what differs, so a second run changes nothing. All
checks that can fail (deployed file, credentials, pool, functions, secrets) run before
the first change: a refused run leaves the account and `.chalice/config.json` as they were.

This module imports boto3; the Lambda code paths never import it.
"""
import getpass
import json
import os
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from chalicelib import settings
from chalicelib.cleanup import PENDING_GROUP, PENDING_GROUP_DESCRIPTION
from triggers import limits_table
from triggers.alarms import StageAlarms
from triggers.waf import StageWaf

# Cognito trigger -> the Chalice function name (`name=`) in triggers/__init__.py.
TRIGGERS = {
    "PreSignUp": "pre_sign_up",
    "DefineAuthChallenge": "define_auth_challenge",
    "CreateAuthChallenge": "create_auth_challenge",
    "VerifyAuthChallengeResponse": "verify_auth_challenge_response",
}
COGNITO_PRINCIPAL = "cognito-idp.amazonaws.com"
# What each function reads from SSM (by the setting naming the parameter) and may do to
# its stage's pool. The API handler calls only Cognito's unauthenticated operations.
FUNCTION_SECRETS = {
    "api_handler": ("COGNITO_CLIENT_SECRET_PARAM",),
    "create_auth_challenge": ("AUTHSIGNAL_SECRET_KEY_PARAM",),
    "verify_auth_challenge_response": ("AUTHSIGNAL_SECRET_KEY_PARAM",),
}
FUNCTION_POOL_ACTIONS = {
    "verify_auth_challenge_response": ("cognito-idp:AdminUpdateUserAttributes",),  # marks the email verified
}
# The limits table (chalicelib.limits): only the API counts, and only what it uses.
FUNCTION_TABLE_ACTIONS = {
    "api_handler": ("dynamodb:UpdateItem", "dynamodb:GetItem"),
}
# Only while the stage turns the cleanup on (CLEANUP_UNVERIFIED_USERS=true): the API puts new
# sign-ups in the cleanup's group, Verify takes proven users out, the job deletes what is left.
CLEANUP_POOL_ACTIONS = {
    "api_handler": ("cognito-idp:AdminAddUserToGroup",),
    "verify_auth_challenge_response": ("cognito-idp:AdminRemoveUserFromGroup",),
    "delete_unverified_users": ("cognito-idp:ListUsersInGroup", "cognito-idp:AdminRemoveUserFromGroup",
                                "cognito-idp:AdminDeleteUser"),
}
# API stage throttling, the same defaults as triggers/cloudformation.json.
RATE_LIMIT = 10
BURST_LIMIT = 20
# Minutes an access token lives (Cognito accepts 5 to 1440): how long a signed-out user's token
# still passes the API's local verification.
ACCESS_TOKEN_MINUTES = 10
# The backend is the only caller: secret, custom auth and refresh only. LEGACY makes an
# unknown email a UserNotFoundException, which the app turns into a silent SignUp.
CLIENT_SETTINGS = {
    "ExplicitAuthFlows": ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    "PreventUserExistenceErrors": "LEGACY",
    "EnableTokenRevocation": True,
    # What a user may change with their own access token (UpdateUserAttributes). Never
    # `email` or `email_verified`: a user who could would move their account onto someone
    # else's address. Not empty either: a client without the setting may write every
    # standard attribute, and what an empty list means is not documented.
    "WriteAttributes": ["locale"],
    # Access tokens are verified locally (the API's authorizer), so a revoked one still works
    # until it expires: keep that short; the refresh cookie renews it (docs/design.md).
    "AccessTokenValidity": ACCESS_TOKEN_MINUTES,
}
# Minutes a sign-in session (one challenge round) lives: time to fetch a code from a mail
# app; Authsignal's token lives 10 minutes. Cognito accepts 3 to 15.
SESSION_MINUTES = 10
SESSION_MINUTES_RANGE = (3, 15)


class ConnectError(Exception):
    """Refused before changing anything; the message says what to do."""


def _read_json(path, what):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ConnectError(f"{what} not found: {path}") from None
    except ValueError as error:
        raise ConnectError(f"{what} is not valid JSON ({path}): {error}") from None


def deployed_functions(project_dir, stage):
    """The trigger ARNs Chalice recorded for the stage: {chalice name: lambda ARN}."""
    return {name: arn for name, arn in deployed_resources(project_dir, stage)["functions"].items()
            if name in TRIGGERS.values()}


def deployed_resources(project_dir, stage):
    """What Chalice recorded for the stage: {"functions": {name: ARN}, "rest_api_id": id or None}."""
    path = os.path.join(project_dir, ".chalice", "deployed", stage + ".json")
    if not os.path.exists(path):
        raise ConnectError(
            f"There is no {os.path.relpath(path, project_dir)}: run `chalice deploy --stage {stage}` "
            "first, then run this command again.")
    data = _read_json(path, "Chalice's deployed-resources file")
    resources = data.get("resources") if isinstance(data, dict) else None
    if data.get("schema_version") != "2.0" or not isinstance(resources, list):
        raise ConnectError(
            f"{path} is not in Chalice's deployed-resources format (schema 2.0): "
            f"run `chalice deploy --stage {stage}` again.")
    arns = {r.get("name"): r.get("lambda_arn") for r in resources
            if isinstance(r, dict) and r.get("resource_type") == "lambda_function"}
    missing = [name for name in TRIGGERS.values() if not arns.get(name)]
    if missing:
        raise ConnectError(
            f"{path} lacks the trigger function(s) {', '.join(missing)}: the deploy did not finish or "
            f"came from an older version. Run `chalice deploy --stage {stage}` again.")
    found = {name: arn for name, arn in arns.items() if arn}
    regions = {arn.split(":")[3] for arn in found.values()}
    if len(regions) != 1:
        raise ConnectError(f"The functions are in several regions ({sorted(regions)}); redeploy the stage.")
    apis = [r.get("rest_api_id") for r in resources if isinstance(r, dict) and r.get("resource_type") == "rest_api"]
    return {"functions": found, "rest_api_id": apis[0] if apis else None}


def policy_file(stage, function):
    return f"policy-{stage}-{function.replace('_', '-')}.json"


def _parameter_arn(partition, region, account, name):
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def stage_policies(functions, pool_arn, parameters, cleanup, table_arn=None):
    """Each function's IAM policy for one stage: {chalice name: policy document}.

    Scoped to that stage's pool (`pool_arn`), its SSM parameters ({setting: name}), its limits
    table (`table_arn`) and each function's own log group; the partition, region and account
    come from the ARNs."""
    documents = {}
    for name, arn in sorted(functions.items()):
        partition, region, account, function_name = (arn.split(":")[i] for i in (1, 3, 4, 6))
        group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
        statements = [{"Sid": "OwnLogs", "Effect": "Allow",
                       "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": [group, group + ":*"]}]
        reads = [parameters[s] for s in FUNCTION_SECRETS.get(name, ()) if parameters.get(s)]
        if reads:
            statements.append({"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                               "Resource": [_parameter_arn(partition, region, account, p) for p in reads]})
        actions = FUNCTION_POOL_ACTIONS.get(name, ()) + (CLEANUP_POOL_ACTIONS.get(name, ()) if cleanup else ())
        if actions:
            statements.append({"Sid": "OwnPool", "Effect": "Allow", "Action": list(actions), "Resource": pool_arn})
        if table_arn and FUNCTION_TABLE_ACTIONS.get(name):
            statements.append({"Sid": "OwnLimitsTable", "Effect": "Allow",
                               "Action": list(FUNCTION_TABLE_ACTIONS[name]), "Resource": table_arn})
        documents[name] = {"Version": "2012-10-17", "Statement": statements}
    return documents


def _writable(value, shape):
    """Keep only what `shape` (a botocore input shape) accepts, recursively."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _writable(v, shape.members[k]) for k, v in value.items() if k in shape.members}
    if shape.type_name == "list" and isinstance(value, list):
        return [_writable(v, shape.member) for v in value]
    return value


# Returned by DescribeUserPool and still in UpdateUserPool's input shape, but no longer in
# use: AWS refuses it next to TemporaryPasswordValidityDays (Amplify CLI strips it too).
NEVER_SENT = {"AdminCreateUserConfig": "UnusedAccountValidityDays"}


def update_pool_request(pool, lambda_config):
    """UpdateUserPool parameters: the pool's whole writable configuration, new LambdaConfig.

    UpdateUserPool resets every setting it is not sent, and refuses read-only fields: send
    exactly the members of its input shape, read from botocore's service model."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("cognito-idp") \
        .operation_model("UpdateUserPool").input_shape
    current = dict(pool)
    if "Name" in current:
        current["PoolName"] = current["Name"]
    request = _writable(current, shape)
    request.pop("UserPoolId", None)
    for member, dropped in NEVER_SENT.items():
        if isinstance(request.get(member), dict):
            request[member] = {k: v for k, v in request[member].items() if k != dropped}
    request["LambdaConfig"] = lambda_config
    return {"UserPoolId": pool["Id"], **request}


def _client_request(client_description, wanted):
    import botocore.session

    shape = botocore.session.get_session().get_service_model("cognito-idp") \
        .operation_model("UpdateUserPoolClient").input_shape
    request = _writable(client_description, shape)
    request.update(wanted)
    return request


def token_validity_units(client_description):
    """The client's units, with the access token's in minutes (ACCESS_TOKEN_MINUTES); the
    ID and refresh tokens keep theirs (Cognito's defaults: hours, days)."""
    units = {"IdToken": "hours", "RefreshToken": "days",
             **((client_description or {}).get("TokenValidityUnits") or {})}
    return {**units, "AccessToken": "minutes"}


def _client_differences(description, settings_wanted):
    """{setting: (what the client has, what the app needs)} for each setting that differs."""
    differences = {}
    for key, wanted in settings_wanted.items():
        have = description.get(key)
        if isinstance(wanted, list):
            if sorted(have or []) != sorted(wanted):
                differences[key] = (have, wanted)
        elif have != wanted:
            differences[key] = (have, wanted)
    return differences


def _describe_difference(key, have, wanted):
    if key == "WriteAttributes":
        was = "every standard attribute, email included" if not have else ", ".join(have)
        return (f"WriteAttributes={wanted} (was: {was}); users can no longer change their own "
                "email or mark it verified with their access token")
    if key == "PreventUserExistenceErrors":
        # Someone changed it after a previous run (console, another template): say why it matters.
        return (f"PreventUserExistenceErrors={wanted} (was {have}); with {have}, Cognito hides that a new "
                "email has no account, so the app never signed new people up and told each of them their "
                "sign-in attempt had expired. If your own infrastructure code sets it, set LEGACY there too, "
                "or its next run breaks new sign-ups again")
    return f"{key}={wanted} (was {have})"


def _invoke_statement_present(policy, pool_arn):
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal") or {}
        service = principal.get("Service") if isinstance(principal, dict) else principal
        source = ((statement.get("Condition") or {}).get("ArnLike") or {}).get("AWS:SourceArn")
        if (statement.get("Effect") == "Allow" and service == COGNITO_PRINCIPAL
                and statement.get("Action") in ("lambda:InvokeFunction", ["lambda:InvokeFunction"])
                and source == pool_arn):
            return True
    return False


def read_only(plan):
    """Run a command's read-only planning step; AWS's refusals become a ConnectError that
    says nothing was changed (connect and disconnect share it)."""
    try:
        plan()
    except (NoCredentialsError, NoRegionError):
        raise ConnectError("No AWS credentials found: configure them (`aws configure`, AWS_PROFILE, or "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY). Nothing was changed.") from None
    except ClientError as error:
        info = error.response.get("Error", {})
        raise ConnectError(f"AWS refused a read ({info.get('Code')}: {info.get('Message')}); check the "
                           "credentials and region. Nothing was changed.") from None
    except BotoCoreError as error:
        raise ConnectError(f"Could not reach AWS ({error}). Nothing was changed.") from None


class Connector:
    def __init__(self, project_dir, stage, pool_id=None, force=False, session=None,
                 environ=None, ask=None, out=print, session_minutes=SESSION_MINUTES,
                 rate_limit=RATE_LIMIT, burst_limit=BURST_LIMIT, alarm_email=None, waf_rate_limit=None):
        if waf_rate_limit is not None and not (isinstance(waf_rate_limit, int) and 10 <= waf_rate_limit <= 2000000000):
            raise ConnectError("--waf takes the requests to /auth/ one IP may make in 5 minutes: a whole number "
                               f"from 10 (WAF's minimum) to 2000000000, not {waf_rate_limit!r}.")
        self.waf_rate_limit = waf_rate_limit
        if not (isinstance(rate_limit, (int, float)) and isinstance(burst_limit, int)
                and 0 < rate_limit <= 10000 and 0 < burst_limit <= 5000):
            raise ConnectError("The API's throttling needs a rate limit above 0 (requests per second, at most "
                               f"10000) and a burst limit from 1 to 5000, not {rate_limit!r} and {burst_limit!r}.")
        self.throttle = {"throttlingRateLimit": float(rate_limit), "throttlingBurstLimit": burst_limit}
        low, high = SESSION_MINUTES_RANGE
        if not (isinstance(session_minutes, int) and low <= session_minutes <= high):
            raise ConnectError(f"The sign-in session must last {low} to {high} minutes (Cognito's limits), "
                               f"not {session_minutes!r}.")
        self.client_settings = {**CLIENT_SETTINGS, "AuthSessionValidity": session_minutes}
        self.project_dir = project_dir
        self.stage = stage
        self.pool_id_arg = pool_id
        self.force = force
        self.session = session
        self.environ = os.environ if environ is None else environ
        self.ask = ask
        self.out = out
        self.alarm_email = alarm_email
        self.done = []

    # ------------------------------------------------------------------ reading

    def _config(self):
        path = os.path.join(self.project_dir, ".chalice", "config.json")
        config = _read_json(path, "Chalice's config")
        stage = (config.get("stages") or {}).get(self.stage)
        if stage is None:
            raise ConnectError(f"Stage '{self.stage}' is not in .chalice/config.json: add it, "
                               f"`chalice deploy --stage {self.stage}`, then run this again.")
        env = {**(config.get("environment_variables") or {}), **(stage.get("environment_variables") or {})}
        if env.get("COGNITO_ENDPOINT_URL"):
            raise ConnectError(f"Stage '{self.stage}' is the offline dev stack (it sets COGNITO_ENDPOINT_URL); "
                               "connect a deployed stage such as dev or prod.")
        for name in ("COGNITO_CLIENT_SECRET", "AUTHSIGNAL_SECRET_KEY"):
            if env.get(name):
                raise ConnectError(f"Stage '{self.stage}' has the secret {name} in .chalice/config.json: remove it; "
                                   f"this command keeps secrets in SSM and sets {name}_PARAM instead.")
        for name in ("AUTHSIGNAL_TENANT_ID", "AUTHSIGNAL_API_URL"):
            if not str(env.get(name) or "").strip():
                raise ConnectError(f"Stage '{self.stage}' has no {name}: add it to the stage's environment_variables "
                                   "in .chalice/config.json (Authsignal portal > Settings > API keys). "
                                   "Nothing was changed.")
        for name, value in sorted(env.items()):
            problem = isinstance(value, str) and settings.placeholder_problem(
                name, value, f"the stage '{self.stage}' environment_variables in .chalice/config.json")
            if problem:
                raise ConnectError(problem + f" Then `chalice deploy --stage {self.stage}` and run this again. "
                                   "Nothing was changed.")
        return path, config, env

    def _clients(self, region):
        session = self.session or boto3.session.Session()
        if session.get_credentials() is None:
            raise ConnectError(
                "No AWS credentials found: configure them (`aws configure`, AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for the account you deployed to. Nothing was changed.")
        return {name: session.client(name, region_name=region)
                for name in ("cognito-idp", "lambda", "ssm", "apigateway", "cloudwatch", "sns", "sts", "dynamodb",
                             "wafv2")}

    def _describe_pool(self, pool_id, where):
        try:
            return self.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                if where == "--pool-id":
                    what = "check the id, or run without --pool-id to create a new pool"
                else:
                    what = ("pass --pool-id, or remove COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID from the "
                            f"stage '{self.stage}' in .chalice/config.json to create a new pool")
                raise ConnectError(f"User pool {pool_id} ({where}) does not exist in {self.region}: {what}. "
                                   "Nothing was changed.") from None
            raise

    def _find_pool_by_name(self, name):
        found, token = [], None
        while True:
            page = self.idp.list_user_pools(MaxResults=60, **({"NextToken": token} if token else {}))
            found += [p["Id"] for p in page.get("UserPools", []) if p.get("Name") == name]
            token = page.get("NextToken")
            if not token:
                return found

    def _find_client(self, pool_id, client_id, name):
        if client_id:
            try:
                return self.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        token = None
        while True:
            page = self.idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60,
                                                   **({"NextToken": token} if token else {}))
            for client in page.get("UserPoolClients", []):
                if client.get("ClientName") == name:
                    return self.idp.describe_user_pool_client(
                        UserPoolId=pool_id, ClientId=client["ClientId"])["UserPoolClient"]
            token = page.get("NextToken")
            if not token:
                return None

    def _parameter(self, name):
        try:
            return self.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ParameterNotFound":
                return None
            raise

    def _authsignal_key(self, param, existing):
        given = (self.environ.get("AUTHSIGNAL_SECRET_KEY") or "").strip()
        problem = given and settings.placeholder_problem(
            "AUTHSIGNAL_SECRET_KEY", given, "AUTHSIGNAL_SECRET_KEY in this shell")
        if problem:
            raise ConnectError(problem + " Nothing was changed.")
        if given:
            return given
        if existing is not None:
            return existing
        if self.ask is not None:
            given = (self.ask(f"Authsignal secret key (stored as SSM SecureString {param}): ") or "").strip()
        problem = given and settings.placeholder_problem("AUTHSIGNAL_SECRET_KEY", given, "the prompt")
        if problem:
            raise ConnectError(problem + " Nothing was changed.")
        if not given:
            raise ConnectError(
                f"The Authsignal secret key is not in SSM ({param}) yet: set AUTHSIGNAL_SECRET_KEY in this shell "
                "(Authsignal portal > Settings > API keys) or run interactively to be asked. Nothing was changed.")
        return given

    # ------------------------------------------------------------------ the run

    def plan(self):
        """Every read and check; raises ConnectError before any change."""
        self.config_path, self.config, env = self._config()
        self.env = env
        deployed = deployed_resources(self.project_dir, self.stage)
        self.all_functions = deployed["functions"]
        self.functions = deployed_functions(self.project_dir, self.stage)
        self.region = next(iter(self.functions.values())).split(":")[3]
        app_name = self.config.get("app_name", "app")
        self.name = f"{app_name}-{self.stage}"
        clients = self._clients(self.region)
        self.idp, self.lam, self.ssm = clients["cognito-idp"], clients["lambda"], clients["ssm"]
        self.apigateway = clients["apigateway"]
        self.dynamodb = clients["dynamodb"]
        self.limits_table = env.get("LIMITS_TABLE") or limits_table.table_name(app_name, self.stage)
        limits_table.ensure_table(self.dynamodb, self.limits_table, dry_run=True)  # a refused read stops here
        account = next(iter(self.functions.values())).split(":")[4]
        api_function = self.all_functions.get("api_handler", f":{self.name}").split(":")[-1]
        self.stage_alarms = StageAlarms(clients["cloudwatch"], clients["sns"], stage=self.stage, region=self.region,
                                        account=account, api_function=api_function, email=self.alarm_email)
        self.stage_alarms.plan()
        self.rest_api_id = deployed["rest_api_id"]
        self.api_stage = self.config.get("api_gateway_stage", "api")
        self.stage_throttle = None
        if self.rest_api_id:
            try:
                settings_now = self.apigateway.get_stage(restApiId=self.rest_api_id, stageName=self.api_stage)
            except ClientError as error:
                if error.response["Error"]["Code"] != "NotFoundException":
                    raise
                raise ConnectError(f"API {self.rest_api_id} (stage {self.api_stage}) is in the deployed file but not "
                                   f"in the account: run `chalice deploy --stage {self.stage}` again.") from None
            self.stage_throttle = (settings_now.get("methodSettings") or {}).get("*/*") or {}
        self.stage_waf = None
        if self.waf_rate_limit is not None:
            if not self.rest_api_id:
                raise ConnectError(f"--waf needs the stage's API, and .chalice/deployed has none for '{self.stage}': "
                                   f"run `chalice deploy --stage {self.stage}` first. Nothing was changed.")
            partition = next(iter(self.functions.values())).split(":")[1]
            self.stage_waf = StageWaf(
                clients["wafv2"], name=f"{self.name}-auth", limit=self.waf_rate_limit,
                stage_arn=f"arn:{partition}:apigateway:{self.region}::/restapis/{self.rest_api_id}/stages/{self.api_stage}")
            self.stage_waf.plan()
        for name, arn in self.functions.items():
            try:
                self.lam.get_function_configuration(FunctionName=arn)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ResourceNotFoundException":
                    raise ConnectError(f"Function {name} ({arn}) is in the deployed file but not in the account: "
                                       f"run `chalice deploy --stage {self.stage}` again.") from None
                raise
        recorded = env.get("COGNITO_USER_POOL_ID")
        self.pool = None
        if self.pool_id_arg:
            self.pool = self._describe_pool(self.pool_id_arg, "--pool-id")
        elif recorded:
            self.pool = self._describe_pool(recorded, "COGNITO_USER_POOL_ID of the stage")
        else:
            named = self._find_pool_by_name(self.name)
            if len(named) > 1:
                raise ConnectError(f"Several user pools are named {self.name} ({', '.join(named)}): "
                                   "pick one with --pool-id.")
            if named:
                self.pool = self._describe_pool(named[0], "found by name")
        wanted = {trigger: self.functions[name] for trigger, name in TRIGGERS.items()}
        if self.pool is not None:
            if "email" not in (self.pool.get("UsernameAttributes") or []):
                raise ConnectError(f"User pool {self.pool['Id']} does not use email as the sign-in name "
                                   "(UsernameAttributes), which the app needs and Cognito cannot change later: "
                                   "run without --pool-id to create a pool.")
            current = self.pool.get("LambdaConfig") or {}
            others = {t: current[t] for t in wanted if current.get(t) and current[t] != wanted[t]}
            if others and not self.force:
                listed = "; ".join(f"{t} -> {arn}" for t, arn in sorted(others.items()))
                raise ConnectError(f"User pool {self.pool['Id']} is already wired to other functions ({listed}). "
                                   "Re-run with --force to replace them. Nothing was changed.")
            self.replaced = others
        else:
            self.replaced = {}
        self.wanted = wanted
        same_pool = self.pool is not None and recorded == self.pool["Id"]
        self.client = None
        if self.pool is not None:
            self.client = self._find_client(self.pool["Id"], env.get("COGNITO_CLIENT_ID") if same_pool else None,
                                            self.name)
            if self.client is not None and not self.client.get("ClientSecret"):
                raise ConnectError(f"App client {self.client['ClientId']} ({self.name}) has no secret, and Cognito "
                                   "cannot add one: delete that client and run this again.")
        self.client_param = env.get("COGNITO_CLIENT_SECRET_PARAM") or f"/{app_name}/{self.stage}/cognito-client-secret"
        self.authsignal_param = (env.get("AUTHSIGNAL_SECRET_KEY_PARAM")
                                 or f"/{app_name}/{self.stage}/authsignal-secret-key")
        self.report = self._existing_users_report(env) if self.pool is not None else []
        self.stored_client_secret = self._parameter(self.client_param)
        self.stored_authsignal_key = self._parameter(self.authsignal_param)
        self.authsignal_key = self._authsignal_key(self.authsignal_param, self.stored_authsignal_key)

    def apply(self):
        if self.pool is None:
            created = self.idp.create_user_pool(
                PoolName=self.name,
                UsernameAttributes=["email"],
                UsernameConfiguration={"CaseSensitive": False},
                AutoVerifiedAttributes=[],  # Authsignal proves the email; Cognito sends no mail
                Schema=[{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
                AdminCreateUserConfig={"AllowAdminCreateUserOnly": False},
                AccountRecoverySetting={"RecoveryMechanisms": [{"Name": "admin_only", "Priority": 1}]},
                MfaConfiguration="OFF",
                DeletionProtection="ACTIVE",  # `python -m triggers disconnect` turns it off, deliberately
                LambdaConfig=dict(self.wanted),
                UserPoolTags={"app": self.config.get("app_name", ""), "stage": self.stage},
            )["UserPool"]
            self.pool = self.idp.describe_user_pool(UserPoolId=created["Id"])["UserPool"]
            self.done.append(f"created user pool {self.pool['Id']} ({self.name}), email sign-in, "
                             "deletion protection on, triggers connected")
        pool_id = self.pool["Id"]
        pool_arn = self.pool.get("Arn") or self._pool_arn(pool_id)

        current = self.pool.get("LambdaConfig") or {}
        merged = {**current, **self.wanted}
        if merged != current:
            self.idp.update_user_pool(**update_pool_request(self.pool, merged))
            for trigger in self.wanted:
                if current.get(trigger) != self.wanted[trigger]:
                    was = f" (was {current[trigger]})" if current.get(trigger) else ""
                    self.done.append(f"connected {trigger} -> {self.wanted[trigger]}{was}")

        client_settings = {**self.client_settings, "TokenValidityUnits": token_validity_units(self.client)}
        if self.client is None:
            self.client = self.idp.create_user_pool_client(
                UserPoolId=pool_id, ClientName=self.name, GenerateSecret=True,
                **client_settings)["UserPoolClient"]
            self.done.append(f"created app client {self.client['ClientId']} (secret, CUSTOM_AUTH + refresh only; "
                             f"users may write only {CLIENT_SETTINGS['WriteAttributes']}, never their email)")
        elif _client_differences(self.client, client_settings):
            differences = _client_differences(self.client, client_settings)
            self.idp.update_user_pool_client(**_client_request(self.client, client_settings))
            self.done.append(f"updated app client {self.client['ClientId']}: " + "; ".join(
                _describe_difference(k, *v) for k, v in differences.items()))

        self._ensure_group(pool_id)

        for name, arn in self.functions.items():
            self._allow_cognito(name, arn, pool_id, pool_arn)

        self._put_secret(self.client_param, self.client["ClientSecret"], self.stored_client_secret,
                         "the app client's secret")
        self._put_secret(self.authsignal_param, self.authsignal_key, self.stored_authsignal_key,
                         "the Authsignal secret key")

        self._throttle_api()
        if self.stage_waf is not None:
            self.stage_waf.apply(self.done)
        self.stage_alarms.apply(self.done)
        self._gateway_responses()
        self.done += limits_table.ensure_table(self.dynamodb, self.limits_table)
        values = {
            "COGNITO_USER_POOL_ID": pool_id,
            "COGNITO_CLIENT_ID": self.client["ClientId"],
            "COGNITO_CLIENT_SECRET_PARAM": self.client_param,
            "AUTHSIGNAL_SECRET_KEY_PARAM": self.authsignal_param,
            "LIMITS_TABLE": self.limits_table,
        }
        cleanup = str(self.env.get("CLEANUP_UNVERIFIED_USERS", "")).strip().lower() == "true"
        partition, _, _, account = pool_arn.split(":")[1:5]
        table_arn = f"arn:{partition}:dynamodb:{self.region}:{account}:table/{self.limits_table}"
        policies = stage_policies(self.all_functions, pool_arn, values, cleanup, table_arn)
        self._write_policies(policies)
        self._record(values, {name: policy_file(self.stage, name) for name in policies})
        return pool_id

    def _existing_users_report(self, env):
        """What the app will and will not do to the users an adopted pool already has."""
        count = self.pool.get("EstimatedNumberOfUsers") or 0
        if not count:
            return []
        try:
            members = self.idp.list_users_in_group(UserPoolId=self.pool["Id"], GroupName=PENDING_GROUP,
                                                   Limit=60).get("Users", [])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            members = []
        unverified = sum(1 for u in members
                         if {a["Name"]: a["Value"] for a in u.get("Attributes", [])}.get("email_verified") != "true")
        switch = "on" if (env.get("CLEANUP_UNVERIFIED_USERS") or "").strip().lower() == "true" else "off"
        client = self.client["ClientId"] if self.client else "(created now)"
        return [
            f"User pool {self.pool['Id']} already has about {count} user(s). What stage '{self.stage}' will and will "
            "not do to them:",
            f"- sign in any of them who proves their email with Authsignal, through app client {client}; that "
            "client may never change a user's email",
            "- PreSignUp confirms only sign-ups through that client; other clients of the pool keep the pool's own "
            "confirmation, and admin-created or federated users are left as they are",
            f"- the cleanup job is {switch} for this stage (CLEANUP_UNVERIFIED_USERS=true turns it on); on, it deletes "
            f"only members of group {PENDING_GROUP} (users this app signed up while it was on) still unverified "
            f"after 24 hours: {len(members)}{'+' if len(members) == 60 else ''} member(s) now, {unverified} of them "
            "unverified. It never deletes admin-created, federated, other clients' or verified users.",
        ]

    def _ensure_group(self, pool_id):
        try:
            self.idp.get_group(UserPoolId=pool_id, GroupName=PENDING_GROUP)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self.idp.create_group(UserPoolId=pool_id, GroupName=PENDING_GROUP, Description=PENDING_GROUP_DESCRIPTION)
            self.done.append(f"created group {PENDING_GROUP} (marks this app's own sign-ups: the only users the "
                             "cleanup job may delete)")

    def _pool_arn(self, pool_id):
        partition, _, _, account = next(iter(self.functions.values())).split(":")[1:5]
        return f"arn:{partition}:cognito-idp:{self.region}:{account}:userpool/{pool_id}"

    def _throttle_api(self):
        if self.rest_api_id is None:
            return  # a stage without an API (Chalice deploys one whenever the app has routes)
        have = {k: self.stage_throttle.get(k) for k in self.throttle}
        if have == self.throttle:
            return
        self.apigateway.update_stage(restApiId=self.rest_api_id, stageName=self.api_stage, patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(self.throttle["throttlingRateLimit"])},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(self.throttle["throttlingBurstLimit"])},
        ])
        self.done.append(f"throttled API {self.rest_api_id} stage {self.api_stage}: "
                         f"{self.throttle['throttlingRateLimit']:g} requests/s, burst {self.throttle['throttlingBurstLimit']}")

    def _gateway_responses(self):
        """API Gateway's own answers in the API's error shape with its headers (chalicelib.http),
        the authorizer's refusals as 401s among them. `chalice deploy` re-imports the API without
        them: run connect again after each deploy."""
        if self.rest_api_id is None:
            return
        from chalicelib.http import gateway_responses

        changed = []
        for response_type, wanted in gateway_responses().items():
            try:
                have = self.apigateway.get_gateway_response(restApiId=self.rest_api_id, responseType=response_type)
            except ClientError:
                have = {}
            status = {"statusCode": str(wanted["statusCode"])} if "statusCode" in wanted else {}
            if ((status and str(have.get("statusCode")) != status["statusCode"])
                    or (have.get("responseParameters") or {}) != wanted["responseParameters"]
                    or (have.get("responseTemplates") or {}) != wanted["responseTemplates"]):
                self.apigateway.put_gateway_response(restApiId=self.rest_api_id, responseType=response_type,
                                                     responseParameters=wanted["responseParameters"],
                                                     responseTemplates=wanted["responseTemplates"], **status)
                changed.append(response_type)
        if changed:
            self.apigateway.create_deployment(restApiId=self.rest_api_id, stageName=self.api_stage,
                                              description="connect: the authorizer's gateway responses")
            self.done.append(f"set API {self.rest_api_id}'s gateway responses ({', '.join(changed)}): API Gateway's "
                             "own answers in the API's error shape, a refused access token a 401; redeployed stage "
                             f"{self.api_stage}")

    def _write_policies(self, policies):
        for name, document in policies.items():
            path = os.path.join(self.project_dir, ".chalice", policy_file(self.stage, name))
            text = json.dumps(document, indent=2) + "\n"
            try:
                with open(path) as handle:
                    if handle.read() == text:
                        continue
            except FileNotFoundError:
                pass
            with open(path, "w") as handle:
                handle.write(text)
            self.policies_changed = True
            self.done.append(f"wrote {name}'s IAM policy for stage {self.stage} (.chalice/{policy_file(self.stage, name)})")

    def _allow_cognito(self, name, arn, pool_id, pool_arn):
        try:
            policy = json.loads(self.lam.get_policy(FunctionName=arn)["Policy"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            policy = {"Statement": []}  # a function without any resource policy yet
        if _invoke_statement_present(policy, pool_arn):
            return
        sid = "cognito-" + pool_id.replace("_", "-")
        if any(s.get("Sid") == sid for s in policy.get("Statement", [])):
            self.lam.remove_permission(FunctionName=arn, StatementId=sid)
        self.lam.add_permission(FunctionName=arn, StatementId=sid, Action="lambda:InvokeFunction",
                                Principal=COGNITO_PRINCIPAL, SourceArn=pool_arn)
        self.done.append(f"allowed {COGNITO_PRINCIPAL} to invoke {name} from {pool_arn}")

    def _put_secret(self, name, value, stored, what):
        if stored == value:
            return
        self.ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True,
                               Description=f"{what} ({self.name})")
        self.done.append(f"{'stored' if stored is None else 'updated'} {what} in SSM as SecureString {name}")

    def _record(self, values, policy_files):
        stage = self.config["stages"][self.stage]
        env = stage.setdefault("environment_variables", {})
        changed = {k: v for k, v in values.items() if env.get(k) != v}
        functions = stage.setdefault("lambda_functions", {})
        files = {name: file for name, file in policy_files.items()
                 if (functions.get(name) or {}).get("iam_policy_file") != file}
        for name, file in files.items():
            functions.setdefault(name, {})["iam_policy_file"] = file
        if files:
            self.done.append(f"recorded the stage's policy files under stages.{self.stage}.lambda_functions")
        if not changed and not files:
            self.config_changed = self.policies_changed
            return
        env.update(changed)
        with open(self.config_path, "w") as handle:
            json.dump(self.config, handle, indent=2)
            handle.write("\n")
        self.config_changed = True
        if changed:
            self.done.append("recorded in .chalice/config.json (stage %s): %s" % (
                self.stage, ", ".join(f"{k}={v}" for k, v in changed.items())))

    def run(self):
        read_only(self.plan)
        self.config_changed = False
        self.policies_changed = False
        for line in self.report:
            self.out(line)
        try:
            pool_id = self.apply()
        except (ClientError, BotoCoreError) as error:
            done = "".join(f"\n- {line}" for line in self.done) or " nothing"
            raise ConnectError(f"AWS refused a change ({error}). Done before it:{done}\n"
                               "Fix the cause and run this command again: it picks up where it stopped.") from None
        if not self.done:
            self.out(f"Nothing to do: user pool {pool_id} and app client {self.client['ClientId']} are already "
                     f"connected to the four triggers of stage '{self.stage}'.")
            return self.done
        for line in self.done:
            self.out("- " + line)
        if self.config_changed:
            self.out(f"The stage's settings or policies changed: run `chalice deploy --stage {self.stage}` "
                     "again so the functions pick them up.")
        return self.done


def ask_secret(prompt):
    """Ask on the terminal, without echo; None when there is no terminal."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(prompt)
