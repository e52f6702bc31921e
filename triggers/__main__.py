"""`python -m triggers connect --stage <s>`: wire a deployed stage to its user pool;
`python -m triggers disconnect --stage <s>`: undo that.

Run it from the project folder after `chalice deploy --stage <s>`.
"""
import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m triggers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    connect = commands.add_parser(
        "connect",
        help="create or adopt the user pool and app client, connect the four triggers, "
             "store the secrets in SSM and record the ids in the stage",
        description="Run after `chalice deploy --stage <s>`. Safe to re-run: a second run changes nothing. "
                    "The Authsignal secret key is read from AUTHSIGNAL_SECRET_KEY or asked for "
                    "(only when it is not in SSM yet); it never goes into .chalice/config.json.")
    connect.add_argument("--stage", required=True, help="the Chalice stage you deployed (dev, prod, ...)")
    connect.add_argument("--pool-id", help="adopt this existing user pool instead of creating one")
    connect.add_argument("--force", action="store_true",
                         help="replace triggers that the pool already sends to other functions")
    connect.add_argument("--session-minutes", type=int, default=10,
                         help="how long a sign-in session (one challenge round) lives, 3 to 15 (default: 10)")
    connect.add_argument("--rate-limit", type=float, default=10,
                         help="API stage throttling: steady requests per second, all clients together (default: 10)")
    connect.add_argument("--burst-limit", type=int, default=20,
                         help="API stage throttling: requests allowed at once above the rate (default: 20)")
    connect.add_argument("--waf", type=int, metavar="N", dest="waf_rate_limit",
                         help="put AWS WAF in front of the API: at most N requests to /auth/ per client IP in any "
                              "5 minutes (100 is a good start; WAF costs about $6 a month plus $0.60 per million "
                              "requests)")
    connect.add_argument("--alarm-email", help="email the stage's alarms to this address (AWS asks it to confirm)")
    connect.add_argument("--project-dir", default=os.getcwd(), help="the Chalice project (default: here)")
    disconnect = commands.add_parser(
        "disconnect",
        help="undo what connect did for a stage: run after `chalice delete --stage <s>`",
        description="Deletes the user pool that connect created (asking first when it has users; its deletion "
                    "protection is turned off for that), never a pool it adopted (only the four triggers and "
                    "the app client leave it), the stage's SSM parameters, the Cognito invoke permissions, "
                    "the stage's policy files and the ids recorded in .chalice/config.json.")
    disconnect.add_argument("--stage", required=True, help="the Chalice stage (dev, prod, ...)")
    disconnect.add_argument("--delete-users", action="store_true",
                            help="delete a created pool even when it has users, without asking")
    disconnect.add_argument("--region", help="where the stage's SSM parameters are, when no pool is recorded")
    disconnect.add_argument("--project-dir", default=os.getcwd(), help="the Chalice project (default: here)")
    args = parser.parse_args(argv)
    if args.command == "disconnect":
        return _disconnect(args)

    from triggers.connect import ConnectError, Connector, ask_secret

    try:
        connector = Connector(os.path.abspath(args.project_dir), args.stage, pool_id=args.pool_id,
                              force=args.force, ask=ask_secret, session_minutes=args.session_minutes,
                              rate_limit=args.rate_limit, burst_limit=args.burst_limit,
                              alarm_email=args.alarm_email, waf_rate_limit=args.waf_rate_limit)
        connector.run()
    except ConnectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _disconnect(args):
    from triggers.connect import ConnectError
    from triggers.disconnect import Disconnector

    def ask(prompt):
        return input(prompt) if sys.stdin.isatty() else None

    try:
        Disconnector(os.path.abspath(args.project_dir), args.stage, region=args.region,
                     delete_users=args.delete_users, ask=ask).run()
    except ConnectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
