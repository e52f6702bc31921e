"""Undo what `python -m triggers connect` did for a stage (run after `chalice delete`).

- A pool that `connect` created (tagged with the app and the stage) is deleted, after
  turning its deletion protection off; when it has users, only after you confirm.
- A pool it adopted is never deleted: the four triggers are taken out of its
  LambdaConfig (its other settings and triggers stay) and the app client is deleted.
- The stage's SSM parameters, the Cognito invoke permissions (when the functions still
  exist), the policy files it wrote and the ids it recorded in `.chalice/config.json`.

This module imports boto3; the Lambda code paths never import it.
"""
import json
import os

from botocore.exceptions import BotoCoreError, ClientError

from triggers import limits_table
from triggers.alarms import StageAlarms
from triggers.waf import StageWaf
from triggers.connect import TRIGGERS, ConnectError, Connector, policy_file, read_only, update_pool_request

RECORDED = ("COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID")


class Disconnector(Connector):
    def __init__(self, project_dir, stage, region=None, delete_users=False, session=None, ask=None, out=print):
        super().__init__(project_dir, stage, session=session, ask=ask, out=out)
        self.region_arg = region
        self.delete_users = delete_users

    def plan(self):
        self.config_path, self.config, env = self._config()
        app_name = self.config.get("app_name", "app")
        self.name = f"{app_name}-{self.stage}"
        pool_id = env.get("COGNITO_USER_POOL_ID")
        self.region = self.region_arg or (pool_id.split("_")[0] if pool_id else None)
        if not self.region:
            raise ConnectError(f"Stage '{self.stage}' records no COGNITO_USER_POOL_ID: there is nothing that "
                               "`connect` recorded to undo (pass --region to clean up its SSM parameters anyway).")
        clients = self._clients(self.region)
        self.idp, self.lam, self.ssm = clients["cognito-idp"], clients["lambda"], clients["ssm"]
        account = clients["sts"].get_caller_identity()["Account"]
        self.stage_alarms = StageAlarms(clients["cloudwatch"], clients["sns"], stage=self.stage, region=self.region,
                                        account=account, api_function=self.name)
        self.stage_alarms.plan()
        self.pool = None
        if pool_id:
            try:
                self.pool = self.idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        tags = (self.pool or {}).get("UserPoolTags") or {}
        self.created = tags.get("app") == app_name and tags.get("stage") == self.stage
        self.client_id = env.get("COGNITO_CLIENT_ID")
        self.params = [name for name in (env.get("COGNITO_CLIENT_SECRET_PARAM"), env.get("AUTHSIGNAL_SECRET_KEY_PARAM"))
                       if name and self._parameter(name) is not None]
        # The limits table holds only counters: deleted if it is the one `connect` makes for this stage.
        self.dynamodb = clients["dynamodb"]
        self.table = limits_table.table_name(app_name, self.stage)
        try:
            self.dynamodb.describe_table(TableName=self.table)
        except self.dynamodb.exceptions.ResourceNotFoundException:
            self.table = None
        # The web ACL `connect --waf` made, found by its name (the API, and so the association,
        # is gone after `chalice delete`).
        self.stage_waf = StageWaf(clients["wafv2"], name=f"{self.name}-auth", limit=10, stage_arn=None)
        self.stage_waf.plan()
        self.users = 0
        if self.pool is not None and self.created:
            self.users = len(self.idp.list_users(UserPoolId=self.pool["Id"], Limit=1).get("Users", []))
            if self.users and not self.delete_users:
                answer = self.ask(f"User pool {self.pool['Id']} ({self.name}) still has users. Type its id to "
                                  "delete it with every user, or anything else to stop: ") if self.ask else None
                if (answer or "").strip() != self.pool["Id"]:
                    raise ConnectError(f"User pool {self.pool['Id']} has users and was not deleted. To delete it "
                                       "with them, run again and type its id, or pass --delete-users. "
                                       "Nothing was changed.")

    def apply(self):
        if self.pool is not None:
            pool_id = self.pool["Id"]
            ours = {f":function:{self.name}-{name}" for name in TRIGGERS.values()}
            for trigger, arn in (self.pool.get("LambdaConfig") or {}).items():
                if trigger in TRIGGERS and any(arn.endswith(suffix) for suffix in ours):
                    self._revoke(arn, "cognito-" + pool_id.replace("_", "-"))
            if self.created:
                if self.pool.get("DeletionProtection") == "ACTIVE":
                    request = update_pool_request(self.pool, self.pool.get("LambdaConfig") or {})
                    self.idp.update_user_pool(**{**request, "DeletionProtection": "INACTIVE"})
                    self.done.append(f"turned deletion protection off on user pool {pool_id}")
                self.idp.delete_user_pool(UserPoolId=pool_id)
                self.done.append(f"deleted user pool {pool_id} ({self.name}) with its app client"
                                 + (" and its users" if self.users else ""))
            else:
                self._unwire(pool_id)
        for name in self.params:
            self.ssm.delete_parameter(Name=name)
            self.done.append(f"deleted SSM parameter {name}")
        self.stage_waf.remove(self.done)
        if self.table:
            self.dynamodb.delete_table(TableName=self.table)
            self.done.append(f"deleted DynamoDB table {self.table} (the sign-in limits' counters)")
        self.stage_alarms.remove(self.done)
        self._forget()

    def _unwire(self, pool_id):
        """An adopted pool stays; only what `connect` added to it goes."""
        ours = {f":function:{self.name}-{name}" for name in TRIGGERS.values()}
        current = self.pool.get("LambdaConfig") or {}
        kept = {t: arn for t, arn in current.items()
                if not (t in TRIGGERS and any(arn.endswith(suffix) for suffix in ours))}
        if kept != current:
            self.idp.update_user_pool(**update_pool_request(self.pool, kept))
            self.done.append(f"disconnected the triggers from user pool {pool_id} (adopted: kept, with its users)")
        if self.client_id:
            try:
                client = self.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=self.client_id)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
            else:
                if client["UserPoolClient"].get("ClientName") == self.name:
                    self.idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=self.client_id)
                    self.done.append(f"deleted app client {self.client_id} ({self.name})")

    def _revoke(self, arn, sid):
        try:
            self.lam.remove_permission(FunctionName=arn, StatementId=sid)
            self.done.append(f"removed Cognito's permission to invoke {arn.split(':')[6]}")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise  # gone with `chalice delete` already

    def _forget(self):
        stage = self.config["stages"][self.stage]
        env = stage.get("environment_variables") or {}
        forgotten = [name for name in RECORDED if name in env]
        for name in forgotten:
            del env[name]
        functions = stage.get("lambda_functions") or {}
        for name in list(functions):
            if functions[name].get("iam_policy_file") == policy_file(self.stage, name):
                path = os.path.join(self.project_dir, ".chalice", policy_file(self.stage, name))
                if os.path.exists(path):
                    os.remove(path)
                del functions[name]["iam_policy_file"]
                if not functions[name]:
                    del functions[name]
                forgotten.append(f"lambda_functions.{name}.iam_policy_file")
        if "lambda_functions" in stage and not stage["lambda_functions"]:
            del stage["lambda_functions"]
        if forgotten:
            with open(self.config_path, "w") as handle:
                json.dump(self.config, handle, indent=2)
                handle.write("\n")
            self.done.append(f"removed from stage '{self.stage}' in .chalice/config.json (and the policy files): "
                             + ", ".join(forgotten))

    def run(self):
        read_only(self.plan)
        try:
            self.apply()
        except (ClientError, BotoCoreError) as error:
            done = "".join(f"\n- {line}" for line in self.done) or " nothing"
            raise ConnectError(f"AWS refused a change ({error}). Done before it:{done}\n"
                               "Fix the cause and run this command again.") from None
        if not self.done:
            self.out(f"Nothing to do: stage '{self.stage}' has nothing that `connect` made.")
        for line in self.done:
            self.out("- " + line)
        return self.done
