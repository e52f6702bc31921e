"""The stage's alarms and dashboard, written once for both deployment paths.

`connect` puts them with boto3 (PutMetricAlarm, PutDashboard) and `disconnect` deletes them;
triggers/cloudformation.json carries the same definitions as resources, generated from here:

    python -m triggers.alarms --write-template      (a test fails when the template differs)

Strings hold CloudFormation's `${...}` placeholders: `AppStage` (the Chalice stage the
functions were packaged for: their APP_STAGE), `AlarmTopic` (the SNS topic's ARN),
`APIHandler` (the API function's name) and `AWS::Region`. The template wraps them in
Fn::Sub; `connect` substitutes the real values.
"""
import json
import os
import re
import sys

from chalicelib.metrics import NAMESPACE
from triggers.waf import holds, template_with_waf

PERIOD = 300
# Below this share of /auth/finish answers signing someone in (with at least MIN_FINISHES in
# 15 minutes), something is wrong for everyone, not one person who mistyped a code.
SUCCESS_RATIO = 0.5
MIN_FINISHES = 10
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cloudformation.json")
TEMPLATE_KEYS = {"trigger-errors": "TriggerErrorsAlarm", "api-errors": "ApiErrorsAlarm",
                 "misconfigured": "MisconfiguredAlarm", "sign-in-success": "SignInSuccessAlarm",
                 "api-function-errors": "ApiFunctionErrorsAlarm"}
STAGE = [{"Name": "Stage", "Value": "${AppStage}"}]


def _metric(metric_id, name, dimensions=STAGE, stat="Sum", period=PERIOD):
    return {"Id": metric_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
        "Period": period, "Stat": stat}}


def _math(expression, label):
    return {"Id": "e1", "Expression": expression, "Label": label, "ReturnData": True}


def _alarm(suffix, description, metrics, threshold, operator="GreaterThanOrEqualToThreshold", periods=1):
    return {
        "AlarmName": "cognito-authsignal-${AppStage}-" + suffix,
        "AlarmDescription": description,
        "Metrics": metrics,
        "Threshold": threshold,
        "ComparisonOperator": operator,
        "EvaluationPeriods": periods,
        "TreatMissingData": "notBreaching",
        "AlarmActions": ["${AlarmTopic}"],
        "OKActions": ["${AlarmTopic}"],
    }


def alarms():
    outcome = [*STAGE, {"Name": "Outcome", "Value": "signed_in"}]
    server_errors = [*STAGE, {"Name": "StatusClass", "Value": "5xx"}]
    return [
        _alarm("trigger-errors", "A Cognito trigger raised or did not answer within Cognito's 5 s: sign-ins fail. "
               "Read the trigger's log (TriggerError) or the API's (TriggerTimeout).",
               [_metric("m1", "TriggerError"), _metric("m2", "TriggerTimeout"),
                _math("FILL(m1, 0) + FILL(m2, 0)", "trigger errors and timeouts")], 1),
        _alarm("api-errors", "More than 5% of the API's answers were 5xx for 10 minutes.",
               [_metric("m1", "Responses", server_errors), _metric("m2", "Responses"),
                _math("IF(m2 > 0, FILL(m1, 0) / m2, 0)", "share of 5xx answers")], 0.05,
               operator="GreaterThanThreshold", periods=2),
        _alarm("api-function-errors", "The API function crashed or timed out (Lambda's own Errors metric).",
               [{"Id": "m1", "ReturnData": True, "MetricStat": {
                   "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors",
                              "Dimensions": [{"Name": "FunctionName", "Value": "${APIHandler}"}]},
                   "Period": PERIOD, "Stat": "Sum"}}], 1),
        _alarm("misconfigured", "Authsignal refused our key or answered as a misconfigured tenant, or a setting is "
               "missing: every sign-in fails until an operator fixes it (the log names what).",
               [_metric("m1", "AuthsignalMisconfigured"),
                _metric("m2", "AuthStart", [*STAGE, {"Name": "Outcome", "Value": "not_configured"}]),
                _math("FILL(m1, 0) + FILL(m2, 0)", "misconfigurations")], 1),
        _alarm("sign-in-success", f"Fewer than {SUCCESS_RATIO:.0%} of the answers to /auth/finish signed someone in "
               f"over 15 minutes (with at least {MIN_FINISHES} of them).",
               [_metric("m1", "AuthFinish", outcome, period=900), _metric("m2", "AuthFinish", period=900),
                _math(f"IF(m2 >= {MIN_FINISHES}, FILL(m1, 0) / m2, 1)", "share of sign-ins that succeeded")],
               SUCCESS_RATIO, operator="LessThanThreshold"),
    ]


def _widget(title, metrics, x, y, stat="Sum"):
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
        "title": title, "region": "${AWS::Region}", "stat": stat, "period": PERIOD, "view": "timeSeries",
        "metrics": metrics}}


def dashboard():
    stage = ["Stage", "${AppStage}"]
    start = [[NAMESPACE, "AuthStart", *stage, "Outcome", o] for o in
             ("challenge_issued", "invalid_input", "blocked", "rate_limited", "unavailable", "not_configured")]
    finish = [[NAMESPACE, "AuthFinish", *stage, "Outcome", o] for o in
              ("signed_in", "wrong_answer", "expired", "blocked", "unavailable", "not_configured")]
    functions = ("pre_sign_up", "define_auth_challenge", "create_auth_challenge", "verify_auth_challenge_response")
    durations = [[NAMESPACE, "TriggerDuration", *stage, "Function", f] for f in functions]
    calls = [[NAMESPACE, f"{service}Duration", *stage, "Function", f] for service in ("Authsignal", "Cognito")
             for f in ("create_auth_challenge", "verify_auth_challenge_response")]
    methods = [[NAMESPACE, "MethodProven", *stage, "Method", m] for m in
               ("EMAIL_OTP", "EMAIL_MAGIC_LINK", "SMS", "AUTHENTICATOR_APP", "PASSKEY", "OTHER")]
    accounts = [[NAMESPACE, "SignUps", *stage], [NAMESPACE, "CleanupDeletions", *stage],
                [NAMESPACE, "TriggerError", *stage], [NAMESPACE, "TriggerTimeout", *stage],
                [NAMESPACE, "BudgetExhausted", *stage]]
    return {"widgets": [
        _widget("/auth/start by outcome", start, 0, 0),
        _widget("/auth/finish by outcome", finish, 12, 0),
        _widget("Trigger duration (p99, ms)", durations, 0, 6, stat="p99"),
        _widget("Authsignal and Cognito calls in triggers (p99, ms)", calls, 12, 6, stat="p99"),
        _widget("Methods proven", methods, 0, 12),
        _widget("Sign-ups, cleanup, trigger errors, timeouts, budget exhausted", accounts, 12, 12),
    ]}


def dashboard_name():
    return "cognito-authsignal-${AppStage}"


def substitute(value, values):
    """`value` with every ${name} replaced from `values` (what connect puts with boto3)."""
    if isinstance(value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m.group(1)]), value)
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, values) for key, item in value.items()}
    return value


def _cfn(value):
    if isinstance(value, str):
        return {"Fn::Sub": value} if "${" in value else value
    if isinstance(value, list):
        return [_cfn(item) for item in value]
    if isinstance(value, dict):
        return {key: _cfn(item) for key, item in value.items()}
    return value


def template_resources():
    """The alarms, the dashboard and the topic as the template's resources."""
    resources = {TEMPLATE_KEYS[spec["AlarmName"].rsplit("${AppStage}-", 1)[1]]:
                 {"Type": "AWS::CloudWatch::Alarm", "Properties": _cfn(spec)} for spec in alarms()}
    resources["Dashboard"] = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": _cfn(dashboard_name()),
        "DashboardBody": {"Fn::Sub": json.dumps(dashboard(), separators=(",", ":"))}}}
    resources["AlarmTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {
        "TopicName": _cfn("cognito-authsignal-${AppStage}-alarms")}}
    resources["AlarmEmailSubscription"] = {"Type": "AWS::SNS::Subscription", "Condition": "HasAlarmEmail",
                                           "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                                          "Endpoint": {"Ref": "AlarmEmail"}}}
    return resources


def template_with_alarms(template):
    """`template` with its alarm parameters, condition and resources as this module defines them."""
    template = json.loads(json.dumps(template))
    template.setdefault("Parameters", {}).update({
        "AppStage": {"Type": "String", "Default": "prod", "AllowedPattern": "^[A-Za-z0-9_-]{1,64}$",
                     "Description": "The Chalice stage this stack was packaged for (`chalice package --stage`): "
                                    "its metrics carry it, and the alarms read them by it."},
        "AlarmEmail": {"Type": "String", "Default": "",
                       "Description": "An address to email when an alarm fires (optional; confirm the mail AWS sends)."},
    })
    template.setdefault("Conditions", {})["HasAlarmEmail"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    template["Resources"].update(template_resources())
    return template


# Compared with what CloudWatch describes, so that a second `connect` changes nothing.
_COMPARED = ("AlarmDescription", "Metrics", "Threshold", "ComparisonOperator", "EvaluationPeriods",
             "TreatMissingData", "AlarmActions", "OKActions")


class StageAlarms:
    """The stage's SNS topic (and email subscription), alarms and dashboard, through boto3:
    read in plan(), changed only where they differ in apply(), deleted by remove()."""

    def __init__(self, cloudwatch, sns, *, stage, region, account, api_function, email=None):
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        self.cloudwatch, self.sns, self.email = cloudwatch, sns, email
        topic_name = f"cognito-authsignal-{stage}-alarms"
        self.topic_arn = f"arn:{partition}:sns:{region}:{account}:{topic_name}"
        self.topic_name = topic_name
        self.values = {"AppStage": stage, "AlarmTopic": self.topic_arn, "APIHandler": api_function,
                       "AWS::Region": region}
        self.alarms = substitute(alarms(), self.values)
        self.dashboard_name = substitute(dashboard_name(), self.values)
        self.dashboard_body = json.dumps(substitute(dashboard(), self.values), separators=(",", ":"))

    def plan(self):
        from botocore.exceptions import ClientError

        names = [spec["AlarmName"] for spec in self.alarms]
        self.existing = {a["AlarmName"]: a for a in self.cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
        try:
            self.sns.get_topic_attributes(TopicArn=self.topic_arn)
            self.topic_exists = True
            subscriptions = self.sns.list_subscriptions_by_topic(TopicArn=self.topic_arn)["Subscriptions"]
            self.emails = {s["Endpoint"] for s in subscriptions if s.get("Protocol") == "email"}
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotFound":
                raise
            self.topic_exists, self.emails = False, set()
        try:
            self.dashboard_now = self.cloudwatch.get_dashboard(DashboardName=self.dashboard_name)["DashboardBody"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFound":
                raise
            self.dashboard_now = None

    def apply(self, done):
        if not self.topic_exists:
            self.sns.create_topic(Name=self.topic_name)
            done.append(f"created SNS topic {self.topic_name} for the stage's alarms")
        if self.email and self.email not in self.emails:
            self.sns.subscribe(TopicArn=self.topic_arn, Protocol="email", Endpoint=self.email)
            done.append("subscribed the alarm email to the topic (confirm the mail AWS sends)")
        for spec in self.alarms:
            have = self.existing.get(spec["AlarmName"])
            if have is None or not holds(have, spec, _COMPARED):
                self.cloudwatch.put_metric_alarm(**spec)
                done.append(f"{'created' if have is None else 'updated'} alarm {spec['AlarmName']}")
        if self.dashboard_now is None or json.loads(self.dashboard_now) != json.loads(self.dashboard_body):
            self.cloudwatch.put_dashboard(DashboardName=self.dashboard_name, DashboardBody=self.dashboard_body)
            done.append(f"{'created' if self.dashboard_now is None else 'updated'} dashboard {self.dashboard_name}")

    def remove(self, done):
        present = [spec["AlarmName"] for spec in self.alarms if spec["AlarmName"] in self.existing]
        if present:
            self.cloudwatch.delete_alarms(AlarmNames=present)
            done.append(f"deleted {len(present)} alarm(s) of the stage")
        if self.dashboard_now is not None:
            self.cloudwatch.delete_dashboards(DashboardNames=[self.dashboard_name])
            done.append(f"deleted dashboard {self.dashboard_name}")
        if self.topic_exists:
            self.sns.delete_topic(TopicArn=self.topic_arn)
            done.append(f"deleted SNS topic {self.topic_name}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--write-template"]:
        print("usage: python -m triggers.alarms --write-template", file=sys.stderr)
        return 2
    with open(TEMPLATE) as handle:
        template = json.load(handle)
    with open(TEMPLATE, "w") as handle:
        json.dump(template_with_waf(template_with_alarms(template)), handle, indent=2)
        handle.write("\n")
    print(f"wrote the alarms, the dashboard, the topic and the WAF web ACL into {TEMPLATE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
