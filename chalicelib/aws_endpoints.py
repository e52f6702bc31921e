"""Endpoints of the services the Lambda code calls (cognito-idp, ssm, dynamodb), as botocore resolves them.

botocore reads a per-service rule set (endpoint-rule-set-1.json) and partitions.json; for these
three services, outside dual-stack, the rules come down to this table (tests/test_aws_endpoints.py
compares it with botocore's resolver for every partition, with and without FIPS):

- a configured endpoint first: `AWS_ENDPOINT_URL_<SERVICE ID>`, then `AWS_ENDPOINT_URL`, unless
  `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`; FIPS does not apply to it;
- otherwise `https://<service>[-fips].<region>.<partition's DNS suffix>`, where GovCloud's
  SSM and DynamoDB endpoints are FIPS already (no `-fips` host).
Dual-stack is left out: its hosts differ region by region (per-region overrides in the rules).
"""
import os
import re

# partitions.json: (region pattern, DNS suffix), first match wins; other regions are `aws`'s.
_PARTITIONS = (
    (re.compile(r"^cn-\w+-\d+$"), "amazonaws.com.cn"),
    (re.compile(r"^us-gov-\w+-\d+$"), "amazonaws.com"),
    (re.compile(r"^eusc-de-\w+-\d+$"), "amazonaws.eu"),
    (re.compile(r"^us-iso-\w+-\d+$"), "c2s.ic.gov"),
    (re.compile(r"^us-isob-\w+-\d+$"), "sc2s.sgov.gov"),
    (re.compile(r"^eu-isoe-\w+-\d+$"), "cloud.adc-e.uk"),
    (re.compile(r"^us-isof-\w+-\d+$"), "csp.hci.ic.gov"),
)
# The env var botocore reads: AWS_ENDPOINT_URL_ + the service id, upper case, spaces as "_".
SERVICE_ENV = {"cognito-idp": "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "ssm": "AWS_ENDPOINT_URL_SSM",
               "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB"}
# (service, partition suffix, region prefix) whose standard endpoint is already FIPS.
_FIPS_BY_DEFAULT = {("ssm", "us-gov-"), ("dynamodb", "us-gov-")}


def _true(name, environ):
    return environ.get(name, "").strip().lower() == "true"


def configured(service, environ=None):
    """The endpoint set in the environment for `service`, or None."""
    environ = os.environ if environ is None else environ
    if _true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", environ):
        return None
    return environ.get(SERVICE_ENV[service]) or environ.get("AWS_ENDPOINT_URL") or None


def endpoint(service, region, environ=None):
    """The URL botocore would send `service` calls to in `region` (no trailing slash)."""
    environ = os.environ if environ is None else environ
    url = configured(service, environ)
    if url:
        return url.rstrip("/")
    suffix = next((dns for pattern, dns in _PARTITIONS if pattern.match(region)), "amazonaws.com")
    fips = _true("AWS_USE_FIPS_ENDPOINT", environ)
    if fips and any(service == s and region.startswith(prefix) for s, prefix in _FIPS_BY_DEFAULT):
        fips = False
    return f"https://{service}{'-fips' if fips else ''}.{region}.{suffix}"
