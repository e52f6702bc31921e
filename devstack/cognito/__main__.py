"""python -m devstack.cognito --port 8002 --project-dir . --stage local"""

import argparse
import json
import os
import signal
import sys
from typing import Dict, List, Optional

from .lambdas import TriggerRunner
from .pool import MAX_SESSION_LENGTH, MIN_SESSION_LENGTH, PoolConfig, UserPool
from .server import Emulator, attach, make_server
from .tokens import TokenSigner

REQUIRED = ("COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "COGNITO_CLIENT_SECRET")


def stage_environment(project_dir: str, stage: str, overrides: List[str]) -> Dict[str, str]:
    """Top-level + stage ``environment_variables`` of .chalice/config.json, then --env."""
    with open(os.path.join(project_dir, ".chalice", "config.json")) as f:
        config = json.load(f)
    env = dict(config.get("environment_variables") or {})
    stages = config.get("stages") or {}
    if stage not in stages:
        raise SystemExit("cognito: stage %r is not in .chalice/config.json" % stage)
    env.update(stages[stage].get("environment_variables") or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit("cognito: --env wants KEY=VALUE, got %r" % item)
        env[key] = value
    env["__app_name__"] = config.get("app_name", "app")
    return env


def _names(value: Optional[str]) -> Optional[List[str]]:
    return None if value is None else [name for name in value.split(",") if name]


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.cognito",
                                     description="Offline Cognito user-pool emulator.")
    parser.add_argument("--port", type=int, default=8002, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--project-dir", default=".", help="the Chalice project")
    parser.add_argument("--stage", default="local")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="override a stage environment variable (repeatable)")
    parser.add_argument("--prevent-user-existence-errors", action="store_true",
                        help="PreventUserExistenceErrors ENABLED instead of LEGACY")
    parser.add_argument("--write-attributes", metavar="A,B,...",
                        help="the app client's WriteAttributes (default: never set, so every "
                             "standard attribute is writable, as for a client created without it)")
    parser.add_argument("--read-attributes", metavar="A,B,...", help="the app client's ReadAttributes")
    parser.add_argument("--group", action="append", default=[], metavar="NAME",
                        help="a group the pool starts with (repeatable)")
    parser.add_argument("--session-validity-minutes", type=float, default=10.0,
                        help="AuthSessionValidity (Cognito allows 3 to 15; default 10)")
    parser.add_argument("--strict-username", action="store_true",
                        help="RespondToAuthChallenge accepts only the internal username, not the email")
    parser.add_argument("--session-length", type=int, default=MAX_SESSION_LENGTH,
                        help="characters in each Session (%d to %d, botocore's limits; default the "
                             "longest)" % (MIN_SESSION_LENGTH, MAX_SESSION_LENGTH))
    parser.add_argument("--initiate-auth-client-metadata", action="store_true",
                        help="InitiateAuth's ClientMetadata reaches the first round's Define and Create "
                             "(unconfirmed on AWS; default: it reaches neither)")
    args = parser.parse_args(argv)
    if not MIN_SESSION_LENGTH <= args.session_length <= MAX_SESSION_LENGTH:
        parser.error("--session-length must be from %d to %d" % (MIN_SESSION_LENGTH, MAX_SESSION_LENGTH))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    project_dir = os.path.abspath(args.project_dir)
    env = stage_environment(project_dir, args.stage, args.env)
    app_name = env.pop("__app_name__")
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise SystemExit("cognito: stage %r lacks %s" % (args.stage, ", ".join(missing)))
    pool_id = env["COGNITO_USER_POOL_ID"]
    region = env.get("COGNITO_REGION") or pool_id.split("_", 1)[0] or "us-east-1"

    try:
        server = make_server(args.host, args.port)
    except OSError as error:  # one line, not a traceback: e.g. the port was taken
        raise SystemExit("cognito: cannot listen on %s:%d: %s" % (args.host, args.port, error.strerror)) from None
    port = server.server_address[1]
    host = "127.0.0.1" if args.host in ("", "0.0.0.0") else args.host
    url = "http://%s:%d" % (host, port)

    # The triggers run in this process, as Lambda would run them: with the stage's
    # variables. They call the Admin APIs back on this emulator, so they need the real
    # URL (the config's may name a different port) and some credentials to sign with.
    if not any(item.startswith("COGNITO_ENDPOINT_URL=") for item in args.env):
        env["COGNITO_ENDPOINT_URL"] = url
    os.environ.update(env)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "devstack")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "devstack")
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.setdefault("AWS_REGION", region)
    os.chdir(project_dir)  # Lambda's working directory is the package root

    triggers = TriggerRunner.from_project(project_dir, args.stage, app_name, region)
    config = PoolConfig(pool_id=pool_id, client_id=env["COGNITO_CLIENT_ID"],
                        client_secret=env["COGNITO_CLIENT_SECRET"], region=region,
                        app_name=app_name,
                        prevent_user_existence_errors=args.prevent_user_existence_errors,
                        write_attributes=_names(args.write_attributes),
                        read_attributes=_names(args.read_attributes), groups=args.group,
                        session_validity=args.session_validity_minutes * 60,
                        strict_username=args.strict_username, session_length=args.session_length,
                        initiate_auth_client_metadata=args.initiate_auth_client_metadata)
    signer = TokenSigner("%s/%s" % (url, pool_id), config.client_id)
    attach(server, Emulator(UserPool(config, triggers, signer)))

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)

    print("READY %s" % url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
