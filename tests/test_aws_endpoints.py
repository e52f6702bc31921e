"""Our endpoint for cognito-idp and ssm is botocore's, for every partition and each switch."""
import boto3
import pytest
from botocore.config import Config

from chalicelib import aws_endpoints

REGIONS = ["us-east-1", "eu-west-1", "ca-west-1", "mx-central-1", "cn-north-1", "us-gov-west-1", "us-gov-east-1",
           "eusc-de-east-1", "us-iso-east-1", "us-isob-east-1", "us-isof-south-1", "eu-isoe-west-1"]
_SESSION = boto3.session.Session()  # its service models load once; the environment is read per client
SWITCHES = ["AWS_USE_FIPS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM",
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]
CASES = [
    {},
    {"AWS_USE_FIPS_ENDPOINT": "true"},
    {"AWS_USE_FIPS_ENDPOINT": "TRUE"},
    {"AWS_USE_FIPS_ENDPOINT": "false"},
    {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
    {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_USE_FIPS_ENDPOINT": "true"},
    {"AWS_ENDPOINT_URL_SSM": "https://ssm.example/", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
    {"AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": "http://127.0.0.1:8002"},
    {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
]


def botocore_endpoint(service, region):
    """What a boto3 client made from this environment sends the operation to."""
    client = _SESSION.client(service, region_name=region, aws_access_key_id="x",
                                            aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}))
    operation = client.meta.service_model.operation_model({"ssm": "GetParameter", "dynamodb": "UpdateItem"}.get(service, "InitiateAuth"))
    resolved = client._ruleset_resolver.construct_endpoint(operation_model=operation, call_args={},
                                                           request_context={})
    return resolved.url.rstrip("/")


@pytest.mark.parametrize("service", ["cognito-idp", "ssm", "dynamodb"])
@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("switches", CASES, ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()) or "none")
def test_our_endpoint_is_botocores(monkeypatch, service, region, switches):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    for name, value in switches.items():
        monkeypatch.setenv(name, value)
    assert aws_endpoints.endpoint(service, region) == botocore_endpoint(service, region)
