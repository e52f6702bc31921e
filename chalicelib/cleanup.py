"""Delete the sign-ups of this app that never proved their email, for a public demo site.

Off unless the stage sets `CLEANUP_UNVERIFIED_USERS=true`. Anyone can type any address, and
the app signs a new address up on its first sign-in attempt, so on a public demo accounts
nobody proved pile up; the scheduled job in app.py removes them after `MAX_AGE`.

How the job knows a user is one of *this app's* sign-ups: while the switch is on, the API
puts each user it signs up into the pool group `PENDING_GROUP`, and the Verify trigger takes
them out once they prove their email. Only an IAM caller can change group membership (a
user's access token cannot, unlike attributes it may write), another client's sign-ups,
admin-created and federated users never enter it, and it needs no change to the pool's
schema (custom attributes can never be removed). So the job deletes only members of that
group that are still unverified, `CONFIRMED` (our PreSignUp confirmed them) and older than
`MAX_AGE`; members found verified are taken out of the group instead. Users signed up while
the switch was off are never in the group, and never deleted.
"""
import datetime

from chalicelib import settings

PENDING_GROUP = "passwordless-unverified-signups"
PENDING_GROUP_DESCRIPTION = ("Signed up by the passwordless sign-in app and not yet proven their email; "
                             "its cleanup job deletes members left unverified for 24 hours")
MAX_AGE = datetime.timedelta(hours=24)
# One run stays well inside the function's timeout; the next run takes the rest.
MAX_DELETIONS_PER_RUN = 1000


def _attributes(user):
    return {a["Name"]: a["Value"] for a in user.get("Attributes", [])}


def pending_users(client, user_pool_id, page_size=60):
    """Every member of the group, each page read before anything is changed."""
    users, token = [], None
    while True:
        page = client.list_users_in_group(UserPoolId=user_pool_id, GroupName=PENDING_GROUP, Limit=page_size,
                                          **({"NextToken": token} if token else {}))
        users += page.get("Users", [])
        token = page.get("NextToken")
        if not token:
            return users


def delete_unverified_users(client, user_pool_id, now=None, max_age=MAX_AGE, page_size=60,
                            limit=MAX_DELETIONS_PER_RUN):
    """Delete this app's sign-ups that are unverified and older than `max_age`.

    `client` is a boto3 `cognito-idp` client. Lists every page first, then changes, so
    changing never shifts the pages being read. Returns the deleted usernames."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cutoff = now - max_age
    try:
        members = pending_users(client, user_pool_id, page_size)
    except client.exceptions.ResourceNotFoundException:
        return []  # no group yet: nobody was signed up while the job was on
    deleted = []
    for user in members:
        if _attributes(user).get("email_verified") == "true":
            # Proved since (the Verify trigger normally takes them out itself).
            _quietly(client.admin_remove_user_from_group, client, UserPoolId=user_pool_id,
                     Username=user["Username"], GroupName=PENDING_GROUP)
            continue
        if user.get("UserStatus") != "CONFIRMED" or user["UserCreateDate"] >= cutoff or len(deleted) >= limit:
            continue
        if _quietly(client.admin_delete_user, client, UserPoolId=user_pool_id, Username=user["Username"]):
            deleted.append(user["Username"])
    return deleted


def _quietly(call, client, **params):
    try:
        call(**params)
        return True
    except client.exceptions.UserNotFoundException:
        return False  # gone already (deleted by hand, or a concurrent run)


def run(log):
    """The scheduled job: the stage's pool, from the same settings as the rest of the app."""
    config = settings.load()
    if not config.cleanup_unverified_users:
        log.info("Cleanup of unverified sign-ups is off (CLEANUP_UNVERIFIED_USERS is not true): nothing deleted")
        return 0
    import boto3

    client = boto3.client("cognito-idp", region_name=config.region, endpoint_url=config.cognito_endpoint_url)
    deleted = delete_unverified_users(client, config.user_pool_id, max_age=MAX_AGE)
    log.info("Deleted %d sign-up(s) of this app whose email stayed unverified for %s", len(deleted), MAX_AGE)
    return len(deleted)
