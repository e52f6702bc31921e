"""CLI: python -m devstack.authsignal --port 8001 [--host 127.0.0.1] [--project-dir .] [--stage local]
       [--default-outcome CHALLENGE] [--rule EMAIL=OUTCOME ...] [--custom-domain ORIGIN]
       [--json-content-type TYPE] [--first-enrolment either|now|at_track]"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .prebuilt_ui import ALL_METHODS, parse_methods
from .server import make_server, serve
from .tenant import FIRST_ENROLMENT, OUTCOMES, Tenant


def stage_environment(project_dir: Path, stage: str) -> dict:
    """Top-level environment_variables of .chalice/config.json, overlaid by the stage's."""
    path = project_dir / ".chalice" / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    env = dict(config.get("environment_variables") or {})
    env.update((config.get("stages") or {}).get(stage, {}).get("environment_variables") or {})
    return env


def print_mail(message: dict) -> None:
    # The dev mailbox: the one place an OTP or a sign-in link is shown, by design.
    # One write per line, so that concurrent request log lines never split it.
    what = f'code={message["code"]}' if message.get("code") else f'link={message.get("link")}'
    channel = "" if message.get("channel", "EMAIL") == "EMAIL" else f' channel={message["channel"]}'
    sys.stdout.write(f'[mailbox] to={message["to"]}{channel} subject="{message["subject"]}" {what}\n')
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.authsignal", description=__doc__)
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--project-dir", type=Path, default=Path("."))
    parser.add_argument("--stage", default="local")
    parser.add_argument("--secret-key", help="default: the stage's AUTHSIGNAL_SECRET_KEY")
    parser.add_argument("--tenant-id", help="default: the stage's AUTHSIGNAL_TENANT_ID")
    parser.add_argument("--token-ttl", type=int, default=600, help="token lifetime in seconds")
    parser.add_argument("--default-outcome", default="CHALLENGE", choices=OUTCOMES,
                        help="the tenant action's default outcome (default CHALLENGE)")
    parser.add_argument("--rule", action="append", default=[], metavar="EMAIL=OUTCOME",
                        help=f"a dev rule: track for EMAIL answers OUTCOME ({', '.join(OUTCOMES)})")
    parser.add_argument("--methods", default=",".join(ALL_METHODS),
                        help="the methods the dev tenant turns on, comma-separated (default: all)")
    parser.add_argument("--rp-id", default="localhost",
                        help="the passkeys' relying party ID (a domain: the app's host)")
    parser.add_argument("--custom-domain", metavar="ORIGIN",
                        help="serve the pre-built UI's URLs on this origin, a tenant's custom domain "
                             "(it must reach this emulator, e.g. http://localhost:PORT)")
    parser.add_argument("--json-content-type", default="application/json",
                        help="Content-Type of the server API's JSON answers, e.g. "
                             "'application/json; charset=utf-8' (the SDK parses only the exact default)")
    parser.add_argument("--first-enrolment", default="either", choices=FIRST_ENROLMENT,
                        help="when a bare track token may enrol a user's first authenticator: while the "
                             "user has none now, had none at track, or either (default; Authsignal's "
                             "documentation does not say which)")
    args = parser.parse_args(argv)

    env = stage_environment(args.project_dir, args.stage)
    secret_key = args.secret_key or env.get("AUTHSIGNAL_SECRET_KEY")
    tenant_id = args.tenant_id or env.get("AUTHSIGNAL_TENANT_ID") or ""
    if not secret_key:
        parser.error(
            f"no secret key: pass --secret-key or set AUTHSIGNAL_SECRET_KEY in stage "
            f"'{args.stage}' of {args.project_dir / '.chalice' / 'config.json'}"
        )
    if args.token_ttl < 1:
        parser.error("--token-ttl must be at least 1")
    try:
        methods = parse_methods(args.methods)
    except ValueError as exc:
        parser.error(f"--methods: {exc}")
    rules = {}
    for rule in args.rule:
        email, _, outcome = rule.rpartition("=")
        rules[email] = outcome
    try:
        tenant = Tenant(default_outcome=args.default_outcome, rules=rules, custom_domain=args.custom_domain,
                        first_enrolment=args.first_enrolment)
    except ValueError as exc:
        parser.error(str(exc))

    try:
        server = make_server(
            args.host,
            args.port,
            secret_key=secret_key,
            tenant_id=tenant_id,
            project_dir=args.project_dir.resolve(),
            token_ttl=args.token_ttl,
            mail_sink=print_mail,
            tenant=tenant,
            methods=methods,
            rp_id=args.rp_id,
            json_content_type=args.json_content_type,
        )
    except OSError as error:  # one line, not a traceback: e.g. the port was taken
        raise SystemExit(f"authsignal: cannot listen on {args.host}:{args.port}: {error.strerror}") from None

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"READY {server.base_url}", flush=True)
    try:
        serve(server)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
