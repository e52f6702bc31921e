"""AWS WAF in front of the API (issue 21): one web ACL definition for the template and for
`connect --waf`.

A regional web ACL with one rate-based rule: at most N requests to the sign-in routes (URI paths
holding `/auth/`, the stage prefix included) per client IP in any 5 minutes; over it WAF answers
429 with the app's error shape before API Gateway or Lambda see the request. The app's own
limits (chalicelib.limits) count addresses and sign-ups, which WAF cannot see.

    python -m triggers.alarms --write-template   also writes WebAcl and WebAclAssociation
"""
import json

DEFAULT_RATE_LIMIT = 100
WINDOW_SECONDS = 300
RULE_NAME = "auth-rate-per-ip"
BODY_KEY = "rate_limited"
# WAF prefixes the headers of a custom response with x-amzn-waf-, so no Retry-After: the text says.
MESSAGE = "Too many requests from your network. Wait five minutes and try again."


def web_acl(name, limit, metric_name):
    """The web ACL's properties: CloudFormation's AWS::WAFv2::WebACL and wafv2's CreateWebACL
    take the same shape (`name`, `limit` and `metric_name` may be CloudFormation expressions)."""
    return {
        "Name": name,
        "Scope": "REGIONAL",
        "Description": "Per-IP rate limit on the sign-in routes, before a request reaches the API function",
        "DefaultAction": {"Allow": {}},
        "CustomResponseBodies": {BODY_KEY: {
            "ContentType": "APPLICATION_JSON",
            "Content": json.dumps({"error": {"code": "rate_limited", "message": MESSAGE}}, separators=(",", ":"))}},
        "Rules": [{
            "Name": RULE_NAME,
            "Priority": 0,
            "Action": {"Block": {"CustomResponse": {"ResponseCode": 429, "CustomResponseBodyKey": BODY_KEY}}},
            "Statement": {"RateBasedStatement": {
                "Limit": limit, "EvaluationWindowSec": WINDOW_SECONDS, "AggregateKeyType": "IP",
                "ScopeDownStatement": {"ByteMatchStatement": {
                    "FieldToMatch": {"UriPath": {}}, "PositionalConstraint": "CONTAINS", "SearchString": "/auth/",
                    "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}}}},
            "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                 "MetricName": "AuthRatePerIp"},
        }],
        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                             "MetricName": metric_name},
    }


def template_with_waf(template):
    """`template` with its WAF parameter, condition and resources as this module defines them."""
    template = json.loads(json.dumps(template))
    template.setdefault("Parameters", {})["WafRateLimit"] = {
        "Type": "Number", "Default": DEFAULT_RATE_LIMIT, "MinValue": 0, "MaxValue": 2000000000,
        "Description": "AWS WAF in front of the API: at most this many requests to /auth/* per client IP in any "
                       "5 minutes (0: no web ACL, and no WAF cost)."}
    template.setdefault("Conditions", {})["HasWaf"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "WafRateLimit"}, 0]}]}
    name = {"Fn::Sub": "${AWS::StackName}-auth"}
    template["Resources"]["WebAcl"] = {"Type": "AWS::WAFv2::WebACL", "Condition": "HasWaf",
                                       "Properties": web_acl(name, {"Ref": "WafRateLimit"}, name)}
    template["Resources"]["WebAclAssociation"] = {"Type": "AWS::WAFv2::WebACLAssociation", "Condition": "HasWaf",
                                                  "Properties": {
        "ResourceArn": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/"
                                   "${RestAPI.Stage}"},
        "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]}}}
    return template


def holds(have, wanted, keys):
    """Whether `have` (as AWS describes a resource) holds `wanted`'s value under each of `keys`:
    what AWS adds of its own does not count as a difference (connect's describe-then-change)."""
    return all(_project(have.get(key), wanted[key]) == wanted[key] for key in keys)


def _project(value, like):
    """`value` cut to the keys of `like`, recursively."""
    if isinstance(like, dict) and isinstance(value, dict):
        return {key: _project(value.get(key), item) for key, item in like.items()}
    if isinstance(like, list) and isinstance(value, list) and len(like) == len(value):
        return [_project(v, item) for v, item in zip(value, like)]
    if isinstance(like, str) and isinstance(value, bytes):  # a blob (SearchString): boto3 answers bytes
        return value.decode("utf-8", "replace")
    return value


class StageWaf:
    """`connect --waf N`: the stage's web ACL (`<app>-<stage>-auth`) and its association with the
    API stage, through boto3: read in plan(), changed only where they differ in apply()."""

    COMPARED = ("DefaultAction", "CustomResponseBodies", "Rules", "VisibilityConfig", "Description")

    def __init__(self, wafv2, *, name, limit, stage_arn):
        self.wafv2, self.name, self.stage_arn = wafv2, name, stage_arn
        self.wanted = web_acl(name, limit, name)

    def _find(self):
        marker = None
        while True:
            page = self.wafv2.list_web_acls(Scope="REGIONAL", **({"NextMarker": marker} if marker else {}))
            for summary in page.get("WebACLs", []):
                if summary["Name"] == self.name:
                    return summary
            marker = page.get("NextMarker")
            if not marker or not page.get("WebACLs"):
                return None

    def plan(self):
        summary = self._find()
        self.acl, self.lock = None, None
        if summary:
            answer = self.wafv2.get_web_acl(Name=self.name, Scope="REGIONAL", Id=summary["Id"])
            self.acl, self.lock = answer["WebACL"], answer["LockToken"]
        self.associated = None
        if self.stage_arn:  # none for disconnect after `chalice delete`: the API took the association along
            found = self.wafv2.get_web_acl_for_resource(ResourceArn=self.stage_arn).get("WebACL")
            self.associated = found.get("ARN") if found else None

    def apply(self, done):
        if self.acl is None:
            self.acl = self.wafv2.create_web_acl(**self.wanted)["Summary"]
            done.append(f"created WAF web ACL {self.name}: at most "
                        f"{self.wanted['Rules'][0]['Statement']['RateBasedStatement']['Limit']} requests to /auth/ "
                        f"per IP in 5 minutes")
        elif not holds(self.acl, self.wanted, self.COMPARED):
            self.wafv2.update_web_acl(Id=self.acl["Id"], LockToken=self.lock,
                                      **{k: v for k, v in self.wanted.items() if k != "Name"}, Name=self.name)
            done.append(f"updated WAF web ACL {self.name}")
        if self.associated != self.acl["ARN"]:
            self.wafv2.associate_web_acl(WebACLArn=self.acl["ARN"], ResourceArn=self.stage_arn)
            done.append(f"associated WAF web ACL {self.name} with the API stage")

    def remove(self, done):
        if self.associated and self.acl is not None and self.associated == self.acl["ARN"]:
            self.wafv2.disassociate_web_acl(ResourceArn=self.stage_arn)
        if self.acl is not None:
            self.wafv2.delete_web_acl(Name=self.name, Scope="REGIONAL", Id=self.acl["Id"], LockToken=self.lock)
            done.append(f"deleted WAF web ACL {self.name}")
