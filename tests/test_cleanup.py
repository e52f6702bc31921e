"""The demo-site job that deletes this app's sign-ups that never proved their email, against
the dev stack's Cognito emulator over real HTTP, as an adopted pool: it also holds
admin-created, federated, another client's unconfirmed and verified users, and users our
client signed up while the job was off. Only this app's unverified, old sign-ups may go."""
import datetime
import uuid

import boto3
import pytest
import requests

from chalicelib import cleanup, cognito_gateway
from tests.security_helpers import User

pytestmark = pytest.mark.devstack
DAY = datetime.timedelta(hours=24)
MINUTE = datetime.timedelta(minutes=1)


@pytest.fixture
def cognito(devstack, local_env):
    return boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=devstack.cognito_url)


def new_email(kind):
    return f"cleanup-{kind}-{uuid.uuid4().hex[:10]}@example.com"


def exists(cognito, pool_id, username):
    try:
        cognito.admin_get_user(UserPoolId=pool_id, Username=username)
        return True
    except cognito.exceptions.UserNotFoundException:
        return False


def in_group(cognito, pool_id):
    return {u["Username"] for u in cleanup.pending_users(cognito, pool_id)}


@pytest.fixture
def population(devstack, cognito, local_env):
    """One user of each kind; {kind: username (sub)}."""
    pool_id, client_id = local_env["COGNITO_USER_POOL_ID"], local_env["COGNITO_CLIENT_ID"]
    users = {}

    def sub_of(email):
        return cognito.admin_get_user(UserPoolId=pool_id, Username=email)["Username"]

    for kind in ("app-unverified", "app-unverified-2"):  # started a sign-in through the app, never proved
        email = new_email(kind)
        User(devstack, email).start()
        users[kind] = sub_of(email)
    email = new_email("app-verified")
    User(devstack, email).sign_in()
    users["app-verified"] = sub_of(email)
    email = new_email("app-verified-then-changed")  # proved once; an admin changed the address since
    User(devstack, email).sign_in()
    users["app-verified-then-changed"] = sub_of(email)
    cognito.admin_update_user_attributes(UserPoolId=pool_id, Username=email,
                                         UserAttributes=[{"Name": "email", "Value": new_email("changed")}])
    users["admin-created"] = cognito.admin_create_user(UserPoolId=pool_id, Username=new_email("admin"))["User"]["Username"]
    federated = requests.post(devstack.cognito_url + "/_dev/users", timeout=5, json={
        "email": new_email("federated"), "status": "EXTERNAL_PROVIDER", "ageSeconds": 3 * 86400})
    users["federated"] = federated.json()["Username"]
    other = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="another-app",
                                            GenerateSecret=True)["UserPoolClient"]
    email = new_email("other-client")
    users["other-client-unconfirmed"] = cognito.sign_up(
        ClientId=other["ClientId"], Username=email, Password="Unused-Passw0rd!",
        SecretHash=cognito_gateway.secret_hash(email, other["ClientId"], other["ClientSecret"]))["UserSub"]
    email = new_email("before-the-switch")  # our client, but signed up while the job was off: no mark
    users["our-client-unmarked"] = cognito.sign_up(
        ClientId=client_id, Username=email, Password="Unused-Passw0rd!",
        SecretHash=cognito_gateway.secret_hash(email, client_id, local_env["COGNITO_CLIENT_SECRET"]))["UserSub"]
    return users


def test_deletes_only_this_apps_unverified_sign_ups(cognito, local_env, population, devstack):
    pool_id = local_env["COGNITO_USER_POOL_ID"]
    marked = in_group(cognito, pool_id)
    assert {population["app-unverified"], population["app-unverified-2"]} <= marked
    assert not marked & {population[k] for k in population if not k.startswith("app-unverified")}
    created = max(cognito.admin_get_user(UserPoolId=pool_id, Username=u)["UserCreateDate"]
                  for u in population.values())
    calls_before = devstack.stats("cognito")["calls"].get("ListUsersInGroup", 0)

    # A day minus a minute after the last sign-up: too young, nobody of ours goes.
    young = cleanup.delete_unverified_users(cognito, pool_id, now=created + DAY - MINUTE, page_size=1)
    assert all(exists(cognito, pool_id, u) for u in population.values())
    assert devstack.stats("cognito")["calls"]["ListUsersInGroup"] - calls_before >= 2  # followed the pages

    deleted = cleanup.delete_unverified_users(cognito, pool_id, now=created + DAY + MINUTE, page_size=1)
    for kind, username in population.items():
        assert exists(cognito, pool_id, username) is (not kind.startswith("app-unverified")), kind
    assert {population["app-unverified"], population["app-unverified-2"]} <= set(deleted)
    assert not set(young) & {population["app-unverified"], population["app-unverified-2"]}


def test_limit_caps_one_run(cognito, local_env, devstack):
    pool_id = local_env["COGNITO_USER_POOL_ID"]
    emails = [new_email("limit") for _ in range(2)]
    for email in emails:
        User(devstack, email).start()
    later = datetime.datetime.now(datetime.timezone.utc) + DAY + MINUTE
    assert len(cleanup.delete_unverified_users(cognito, pool_id, now=later, limit=1)) == 1
    assert sum(exists(cognito, pool_id, email) for email in emails) >= 1


SCHEDULED_EVENT = {"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                   "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}}


@pytest.mark.parametrize("switch", ["", "false"])
def test_nothing_at_all_while_the_stage_has_not_turned_it_on(cognito, local_env, devstack, monkeypatch, switch):
    import app

    email = new_email("switched-off")
    User(devstack, email).start()
    monkeypatch.setattr(cleanup, "MAX_AGE", datetime.timedelta(0))  # every candidate is old enough
    monkeypatch.setenv("CLEANUP_UNVERIFIED_USERS", switch)
    assert app.delete_unverified_users(SCHEDULED_EVENT, None) == {"deleted": 0}
    assert exists(cognito, local_env["COGNITO_USER_POOL_ID"], email)
    # The same run with the switch on deletes it: the job itself works.
    monkeypatch.setenv("CLEANUP_UNVERIFIED_USERS", "true")
    assert app.delete_unverified_users(SCHEDULED_EVENT, None)["deleted"] >= 1
    assert not exists(cognito, local_env["COGNITO_USER_POOL_ID"], email)


def test_the_scheduled_handler_leaves_young_sign_ups(cognito, local_env, devstack):
    import app

    email = new_email("young")
    User(devstack, email).start()
    assert isinstance(app.delete_unverified_users(SCHEDULED_EVENT, None)["deleted"], int)
    assert exists(cognito, local_env["COGNITO_USER_POOL_ID"], email)  # minutes old, not a day


def test_sign_ups_while_the_job_is_off_are_never_marked(client, cognito, local_env, monkeypatch):
    import json

    from chalicelib import settings
    real_load = settings.load
    monkeypatch.setattr(settings, "load", lambda: real_load()._replace(cleanup_unverified_users=False))
    email = new_email("job-off")
    response = client.http.post("/auth/start", body=json.dumps({"email": email}).encode(),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.body
    sub = cognito.admin_get_user(UserPoolId=local_env["COGNITO_USER_POOL_ID"], Username=email)["Username"]
    assert sub not in in_group(cognito, local_env["COGNITO_USER_POOL_ID"])
