"""Delete users who never verified their email, for a public demo site.

A new email is signed up on its first sign-in attempt, verified only once the user
answers the challenge. Anyone can type any address, so accounts that never got
verified pile up; the scheduled job in app.py removes them after `MAX_AGE`.
"""
import datetime

from chalicelib import settings

MAX_AGE = datetime.timedelta(hours=24)
# One run stays well inside the function's timeout; the next run takes the rest.
MAX_DELETIONS_PER_RUN = 1000


def _unverified_and_old(user, cutoff):
    attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
    return attributes.get("email_verified") != "true" and user["UserCreateDate"] < cutoff


def delete_unverified_users(client, user_pool_id, now=None, max_age=MAX_AGE, page_size=60,
                            limit=MAX_DELETIONS_PER_RUN):
    """Delete the pool's users whose email is unverified and who are older than `max_age`.

    `client` is a boto3 `cognito-idp` client. Lists every page first, then deletes, so
    deleting never shifts the pages being read. Returns the deleted usernames."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cutoff = now - max_age
    doomed, token = [], None
    while len(doomed) < limit:
        page = client.list_users(UserPoolId=user_pool_id, Limit=page_size,
                                 AttributesToGet=["email_verified"],
                                 **({"PaginationToken": token} if token else {}))
        doomed += [u["Username"] for u in page.get("Users", []) if _unverified_and_old(u, cutoff)]
        token = page.get("PaginationToken")
        if not token:
            break
    deleted = []
    for username in doomed[:limit]:
        try:
            client.admin_delete_user(UserPoolId=user_pool_id, Username=username)
        except client.exceptions.UserNotFoundException:
            continue  # gone already (deleted by hand, or a concurrent run)
        deleted.append(username)
    return deleted


def run(log):
    """The scheduled job: the stage's pool, from the same settings as the rest of the app."""
    import boto3

    config = settings.load()
    client = boto3.client("cognito-idp", region_name=config.region, endpoint_url=config.cognito_endpoint_url)
    deleted = delete_unverified_users(client, config.user_pool_id)
    log.info("Deleted %d user(s) whose email stayed unverified for %s", len(deleted), MAX_AGE)
    return len(deleted)
