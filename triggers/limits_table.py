"""The limits table (chalicelib.limits), as `connect`, the template and the dev stack make it.

On demand (no capacity to size or pay for while idle), one string key `k`, and TTL on `expires`
so that old windows' counters delete themselves.
"""

KEY = "k"
TTL_ATTRIBUTE = "expires"
DEFINITION = {
    "AttributeDefinitions": [{"AttributeName": KEY, "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def table_name(app_name, stage):
    return f"{app_name}-{stage}-limits"


def ensure_table(dynamodb, name, dry_run=False):
    """Create the table and turn its TTL on where missing (describe first: safe to re-run).
    Returns what was (or, with dry_run, would be) changed, as sentences."""
    changes = []
    try:
        dynamodb.describe_table(TableName=name)
    except dynamodb.exceptions.ResourceNotFoundException:
        changes.append(f"create DynamoDB table {name} (on demand) for the sign-in limits")
        if not dry_run:
            dynamodb.create_table(TableName=name, **DEFINITION)
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        else:
            return changes + [f"turn on TTL ({TTL_ATTRIBUTE}) on {name}"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        changes.append(f"turn on TTL ({TTL_ATTRIBUTE}) on {name}")
        if not dry_run:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": TTL_ATTRIBUTE})
    return changes
