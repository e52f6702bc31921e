"""Settings: lazy, validated, with a message that names what is missing."""
import pytest

from chalicelib import settings

LOCAL = {
    "COGNITO_USER_POOL_ID": "us-east-1_DevStack01",
    "COGNITO_CLIENT_ID": "client",
    "COGNITO_REGION": "us-east-1",
    "COGNITO_ENDPOINT_URL": "http://127.0.0.1:8002",
    "AUTHSIGNAL_API_URL": "http://127.0.0.1:8001/v1",
    "AUTHSIGNAL_TENANT_ID": "tenant",
    "AUTHSIGNAL_UI_ORIGIN": "http://127.0.0.1:8001",
    "AUTHSIGNAL_SDK_URL": "http://127.0.0.1:8001/sdk.js",
}
DEPLOYED = {**LOCAL, "AUTHSIGNAL_API_URL": "https://eu.api.authsignal.com/v1",
            "AUTHSIGNAL_UI_ORIGIN": "https://mfa.authsignal.com", "AUTHSIGNAL_SDK_URL": "https://cdn.example/sdk.js"}
del DEPLOYED["COGNITO_ENDPOINT_URL"]


@pytest.fixture
def env(monkeypatch):
    for name in list(LOCAL) + ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AUTHSIGNAL_ACTION",
                               "AUTHSIGNAL_SECRET_KEY", "AUTHSIGNAL_SECRET_KEY_PARAM"]:
        monkeypatch.delenv(name, raising=False)

    def set_all(values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_all


def test_importing_reads_nothing(env):
    # Chalice's test client sets stage variables only during a call: import must not need them.
    import importlib
    importlib.reload(settings)


def test_local_settings_load(env):
    env(LOCAL)
    config = settings.load()
    assert config.cognito_endpoint_url == "http://127.0.0.1:8002"
    assert config.authsignal_action == "cognitoAuth"


@pytest.mark.parametrize("missing", ["COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "AUTHSIGNAL_API_URL",
                                     "AUTHSIGNAL_TENANT_ID", "AUTHSIGNAL_UI_ORIGIN", "AUTHSIGNAL_SDK_URL"])
def test_a_missing_setting_is_named(env, missing):
    env({k: v for k, v in LOCAL.items() if k != missing})
    with pytest.raises(settings.SettingsError, match=missing):
        settings.load()


def test_region_falls_back_to_the_lambda_region(env):
    values = {k: v for k, v in DEPLOYED.items() if k != "COGNITO_REGION"}
    env({**values, "AWS_REGION": "eu-west-1"})
    assert settings.load().region == "eu-west-1"


def test_deployed_lambda_refuses_loopback_endpoints(env):
    env({**LOCAL, "AWS_LAMBDA_FUNCTION_NAME": "cognito-authsignal-prod-create_auth_challenge"})
    with pytest.raises(settings.SettingsError, match="loopback"):
        settings.load()


def test_deployed_settings_load_with_a_regional_authsignal_url(env):
    env({**DEPLOYED, "AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert settings.load().authsignal_api_url == "https://eu.api.authsignal.com/v1"


@pytest.mark.parametrize("url", ["https://api.authsignal.com/v1", "https://ca.api.authsignal.com/v1",
                                 "https://au.api.authsignal.com/v1", "https://eu.api.authsignal.com/v1",
                                 "https://uk.api.authsignal.com/v1"])
def test_each_of_the_five_authsignal_regions_is_accepted(env, url):
    env({**DEPLOYED, "AUTHSIGNAL_API_URL": url, "AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert settings.load().authsignal_api_url == url


@pytest.mark.parametrize("url", ["https://api.authsignal.example/v1", "https://us.api.authsignal.com/v1",
                                 "http://eu.api.authsignal.com/v1",
                                 "https://EU.api.authsignal.com/v1", "https://uk.api.authsignal.com",
                                 "https://jp.api.authsignal.com/v1"])
def test_unknown_authsignal_region_is_refused(env, url):
    env({**DEPLOYED, "AUTHSIGNAL_API_URL": url})
    with pytest.raises(settings.SettingsError, match="AUTHSIGNAL_API_URL must be one of") as refused:
        settings.load()
    assert "https://uk.api.authsignal.com/v1" in str(refused.value)


def test_cognito_endpoint_is_only_for_the_dev_stack(env):
    env({**DEPLOYED, "COGNITO_ENDPOINT_URL": "https://cognito.example"})
    with pytest.raises(settings.SettingsError, match="COGNITO_ENDPOINT_URL"):
        settings.load()


def test_secret_from_env(env, monkeypatch):
    monkeypatch.setenv("AUTHSIGNAL_SECRET_KEY", "s3cret")
    assert settings.secret("AUTHSIGNAL_SECRET_KEY", "us-east-1") == "s3cret"


def test_missing_secret_names_both_ways_to_set_it(env):
    with pytest.raises(settings.SettingsError, match="AUTHSIGNAL_SECRET_KEY_PARAM"):
        settings.secret("AUTHSIGNAL_SECRET_KEY", "us-east-1")


def test_secret_from_ssm_parameter_store(env, monkeypatch):
    """Over real HTTP to a moto server standing in for SSM."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/cognito-authsignal/test/authsignal", Value="from-ssm", Type="SecureString")
        monkeypatch.setenv("AUTHSIGNAL_SECRET_KEY_PARAM", "/cognito-authsignal/test/authsignal")
        settings._ssm_parameter.cache_clear()
        assert settings.secret("AUTHSIGNAL_SECRET_KEY", "us-east-1") == "from-ssm"
    finally:
        server.stop()
        settings._ssm_parameter.cache_clear()


@pytest.mark.parametrize("value", ["REPLACE-with-your-tenant-id", "replace with your tenant", "...", "<tenant>",
                                   "changeme", "your-tenant-id", "TODO", "xxxx", "real-id REPLACE-me"])
def test_placeholders_are_refused_with_where_to_put_the_real_value(env, value):
    env({**DEPLOYED, "AUTHSIGNAL_TENANT_ID": value})
    with pytest.raises(settings.SettingsError) as error:
        settings.load()
    assert "AUTHSIGNAL_TENANT_ID is still a placeholder" in str(error.value)
    assert "environment_variables in .chalice/config.json" in str(error.value)


def test_real_looking_values_pass_the_placeholder_check(env):
    env({**DEPLOYED, "AUTHSIGNAL_TENANT_ID": "3f1c9e0a-replaceable-7b2d"})
    assert settings.load().authsignal_tenant_id == "3f1c9e0a-replaceable-7b2d"


def test_a_trigger_takes_the_pool_and_region_from_its_event(env):
    # Between `connect` and the second deploy the stage has no pool or client id yet.
    env({k: v for k, v in DEPLOYED.items() if k not in ("COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "COGNITO_REGION")})
    event = {"region": "eu-west-2", "userPoolId": "eu-west-2_Abc", "callerContext": {"clientId": "cid"}}
    config = settings.load(event)
    assert (config.user_pool_id, config.region) == ("eu-west-2_Abc", "eu-west-2")
    assert config.client_id == ""  # the event names the caller's client, not this app's
    with pytest.raises(settings.SettingsError, match="COGNITO_REGION"):
        settings.load()  # the API handler has no event to take them from


@pytest.mark.parametrize("value,on", [(None, False), ("", False), ("false", False), ("true", True), ("TRUE", True)])
def test_the_cleanup_is_off_unless_the_stage_turns_it_on(env, monkeypatch, value, on):
    env(LOCAL)
    monkeypatch.delenv("CLEANUP_UNVERIFIED_USERS", raising=False)
    if value is not None:
        monkeypatch.setenv("CLEANUP_UNVERIFIED_USERS", value)
    assert settings.load().cleanup_unverified_users is on


@pytest.mark.parametrize("value", ["yes", "1", "on", "ture"])
def test_a_cleanup_switch_that_is_not_true_or_false_is_refused(env, monkeypatch, value):
    env(LOCAL)
    monkeypatch.setenv("CLEANUP_UNVERIFIED_USERS", value)
    with pytest.raises(settings.SettingsError, match="CLEANUP_UNVERIFIED_USERS"):
        settings.load()


def test_the_deployed_stages_leave_the_cleanup_off():
    import json
    import os

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".chalice", "config.json")) as f:
        config = json.load(f)
    for stage in ("dev", "prod"):
        variables = {**config["environment_variables"], **config["stages"][stage]["environment_variables"]}
        assert variables.get("CLEANUP_UNVERIFIED_USERS", "false") != "true", stage


def test_ui_origins_are_a_space_separated_list_of_origins(env):
    env({**DEPLOYED, "AUTHSIGNAL_UI_ORIGIN": " https://auth.example.com  https://MFA.authsignal.com:443/ "})
    config = settings.load()
    assert config.authsignal_ui_origins == ("https://auth.example.com", "https://mfa.authsignal.com")
    assert config.ui_origin_of("https://auth.example.com/challenge?token=t") == "https://auth.example.com"
    assert config.ui_origin_of("https://mfa.authsignal.com:443/x?token=t") == "https://mfa.authsignal.com"
    for foreign in ("https://evil.example.com/x?token=t", "http://auth.example.com/x?token=t",
                    "https://auth.example.com:8443/x", "javascript:alert(1)", "not a url", ""):
        assert config.ui_origin_of(foreign) is None


@pytest.mark.parametrize("value, message", [
    ("https://mfa.authsignal.com/challenge", "no path"),
    ("mfa.authsignal.com", "no path"),
    ("https://auth.example.com http://auth.example.com", "must use https"),
    ("http://127.0.0.1:8001", "must use https"),  # loopback http only in the dev stack
])
def test_deployed_ui_origins_must_be_https_origins(env, value, message):
    env({**DEPLOYED, "AUTHSIGNAL_UI_ORIGIN": value})
    with pytest.raises(settings.SettingsError, match=message):
        settings.load()


def test_the_dev_stack_may_frame_a_loopback_http_origin(env):
    env({**LOCAL, "AUTHSIGNAL_UI_ORIGIN": "http://127.0.0.1:8001 http://localhost:9001"})
    assert settings.load().authsignal_ui_origins == ("http://127.0.0.1:8001", "http://localhost:9001")


def test_token_issuer_deployed_is_cognitos_url(env):
    env({"COGNITO_USER_POOL_ID": "eu-west-1_AbC123", "COGNITO_CLIENT_ID": "client"})
    issuer = settings.token_issuer()
    assert issuer.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    assert issuer.jwks_url == issuer.issuer + "/.well-known/jwks.json" and issuer.client_id == "client"


def test_token_issuer_local_is_the_emulators(env):
    env(LOCAL)
    assert settings.token_issuer().issuer == "http://127.0.0.1:8002/us-east-1_DevStack01"


@pytest.mark.parametrize("changes,named", [
    ({"COGNITO_ENDPOINT_URL": "https://cognito.example.com"}, "COGNITO_ENDPOINT_URL"),
    ({"AWS_LAMBDA_FUNCTION_NAME": "cognito-authsignal-prod-cognito_access_token"}, "loopback"),
    ({"COGNITO_USER_POOL_ID": "nounderscore"}, "COGNITO_USER_POOL_ID"),
])
def test_token_issuer_refuses(env, changes, named):
    env({**LOCAL, **changes})
    with pytest.raises(settings.SettingsError, match=named):
        settings.token_issuer()
