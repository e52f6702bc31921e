"""The demo-site job that deletes users who never verified their email, against the
dev stack's Cognito emulator over real HTTP (ListUsers pages, AdminDeleteUser)."""
import datetime
import uuid

import boto3
import pytest

from chalicelib import cleanup, cognito_gateway

pytestmark = pytest.mark.devstack
DAY = datetime.timedelta(hours=24)


@pytest.fixture
def cognito(devstack, local_env):
    return boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)


def sign_up(cognito, env, verified=False):
    email = f"cleanup-{uuid.uuid4().hex[:10]}@example.com"
    client_id, secret = env["COGNITO_CLIENT_ID"], env["COGNITO_CLIENT_SECRET"]
    cognito.sign_up(ClientId=client_id, Username=email, Password="Unused-Passw0rd!",
                    SecretHash=cognito_gateway.secret_hash(email, client_id, secret))
    if verified:
        cognito.admin_update_user_attributes(UserPoolId=env["COGNITO_USER_POOL_ID"], Username=email,
                                             UserAttributes=[{"Name": "email_verified", "Value": "true"}])
    return email


def exists(cognito, pool_id, email):
    try:
        cognito.admin_get_user(UserPoolId=pool_id, Username=email)
        return True
    except cognito.exceptions.UserNotFoundException:
        return False


def test_deletes_only_unverified_users_older_than_a_day(cognito, local_env, devstack):
    pool_id = local_env["COGNITO_USER_POOL_ID"]
    unverified = [sign_up(cognito, local_env) for _ in range(3)]
    verified = sign_up(cognito, local_env, verified=True)
    created = cognito.admin_get_user(UserPoolId=pool_id, Username=unverified[-1])["UserCreateDate"]
    calls_before = devstack.stats("cognito")["calls"].get("ListUsers", 0)

    # A day minus a minute after sign-up: too young, nobody of ours goes.
    young = cleanup.delete_unverified_users(cognito, pool_id, now=created + DAY - datetime.timedelta(minutes=1),
                                            page_size=2)
    assert all(exists(cognito, pool_id, email) for email in [*unverified, verified])
    assert devstack.stats("cognito")["calls"]["ListUsers"] - calls_before >= 2  # followed the pages

    # A day and a minute later: the three unverified go, the verified one stays.
    deleted = cleanup.delete_unverified_users(cognito, pool_id, now=created + DAY + datetime.timedelta(minutes=1),
                                              page_size=2)
    assert not any(exists(cognito, pool_id, email) for email in unverified)
    assert exists(cognito, pool_id, verified)
    assert len(deleted) >= 3 and not set(young) & set(deleted)


def test_limit_caps_one_run(cognito, local_env):
    pool_id = local_env["COGNITO_USER_POOL_ID"]
    emails = [sign_up(cognito, local_env) for _ in range(2)]
    later = datetime.datetime.now(datetime.timezone.utc) + DAY + datetime.timedelta(minutes=1)
    assert len(cleanup.delete_unverified_users(cognito, pool_id, now=later, limit=1)) == 1
    assert sum(exists(cognito, pool_id, email) for email in emails) >= 1


def test_scheduled_handler_runs_against_the_stage_pool(cognito, local_env):
    import app

    fresh = sign_up(cognito, local_env)
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}}
    result = app.delete_unverified_users(event, None)
    assert isinstance(result["deleted"], int)
    assert exists(cognito, local_env["COGNITO_USER_POOL_ID"], fresh)  # minutes old, not a day
