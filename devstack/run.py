"""The offline dev stack in one command: Authsignal and Cognito emulators, DynamoDB, and `chalice local`.

    python -m devstack [--app-port 8000] [--authsignal-port 8001] [--cognito-port 8002] [--dynamodb-port 8003]
                       [--set NAME=VALUE ...] [--linked-project DIR]
                       [--default-outcome OUTCOME] [--rule EMAIL=OUTCOME ...] [--methods M1,M2]
                       [--custom-domain] [--json-content-type TYPE]

Each service is a child process whose output is shown with a prefix. Ctrl-C (or
SIGTERM or SIGHUP, however often they come, or any child dying) stops them all.
DynamoDB (the limits' store: chalicelib.limits) is moto's server, with the limits table made
as `connect` makes it. A
port that is taken stops it before anything starts, with one line naming the port.
With other ports than the defaults, `chalice local` runs from `.devstack/project`, a
copy of the project made of links and a config whose endpoints point at those ports
(Chalice's stage variables override the process environment, so that is the one
place to change them).
`--set NAME=VALUE` changes one of the local stage's variables for the app and its
triggers (the browser tests load the Web SDK from its production URL; the benchmark
turns off the /auth/start floor); it also goes through that linked copy.
`--default-outcome` and `--rule` configure the Authsignal emulator's dev tenant (what
`track` answers; also settable at run time with `POST /_dev/tenant`).
"""
import argparse
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGE = "local"
PROJECT_ENTRIES = ("app.py", "chalicelib", "triggers", "static", "vendor", "requirements.txt")
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 5  # from SIGTERM to SIGKILL, for all services together
POLL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SERVICE_NAMES = {"app": "the app (chalice local)", "authsignal": "the Authsignal emulator",
                 "cognito": "the Cognito emulator", "dynamodb": "DynamoDB (moto's server)"}


def custom_domain(authsignal_port):
    """The dev tenant's "custom domain": the emulator itself under another host name, so
    another origin serves its pre-built UI."""
    return f"http://localhost:{authsignal_port}"


def endpoint_overrides(host, authsignal_port, cognito_port, with_custom_domain=False, dynamodb_port=None):
    authsignal = f"http://{host}:{authsignal_port}"
    ui_origins = [authsignal] + ([custom_domain(authsignal_port)] if with_custom_domain else [])
    return {
        **({"DYNAMODB_ENDPOINT_URL": f"http://{host}:{dynamodb_port}"} if dynamodb_port else {}),
        "COGNITO_ENDPOINT_URL": f"http://{host}:{cognito_port}",
        "AUTHSIGNAL_API_URL": f"{authsignal}/v1",
        "AUTHSIGNAL_UI_ORIGIN": " ".join(ui_origins),
        "AUTHSIGNAL_SDK_URL": f"{authsignal}/sdk/@authsignal/browser@1.16.0/dist/index.min.js",
    }


def local_stage_env():
    """The local stage's variables as Chalice gives them to the app: the top-level
    `environment_variables` of .chalice/config.json, overlaid by the stage's."""
    with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
        config = json.load(handle)
    return {**config["environment_variables"], **config["stages"][STAGE]["environment_variables"]}


def linked_project(overrides, target=None):
    """A project directory that differs from ROOT only in the local stage's endpoints."""
    target = target or os.path.join(ROOT, ".devstack", "project")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, ".chalice"))
    for entry in PROJECT_ENTRIES:
        os.symlink(os.path.join(ROOT, entry), os.path.join(target, entry))
    with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
        config = json.load(handle)
    config["stages"][STAGE]["environment_variables"].update(overrides)
    with open(os.path.join(target, ".chalice", "config.json"), "w") as handle:
        json.dump(config, handle, indent=2)
    return target


class StopRequested(Exception):
    """A stop signal came while the stack was starting."""


class StopFlag:
    """Which stop signal came, if any; the main thread polls it.

    The handler only records the signal. Python runs it in the main thread between two
    bytecodes, possibly while that thread holds a lock: setting a threading.Event from
    it deadlocked when a second signal came during the first's Event.set (GNU make
    forwards the signal its process group already got, so two come at once), and
    SIGINT's KeyboardInterrupt could cut the services' shutdown short."""

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame):
        self.signum = signum

    def install(self):
        for signum in STOP_SIGNALS:
            signal.signal(signum, self)

    def check(self):
        if self.signum is not None:
            raise StopRequested


class Service:
    def __init__(self, name, command, cwd=ROOT, env=None, metrics=None):
        self.name = name
        self.metrics = metrics
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,
        )
        self.ready = threading.Event()
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self):
        for line in self.process.stdout:
            if line.startswith("READY "):
                self.ready.set()
            # The emulators tag their own lines when run alone; tag each line once.
            text = line.removeprefix(f"[{self.name}] ").removeprefix(f"{self.name}: ")
            if self.metrics:
                self.metrics.offer(text)
            try:
                print(f"[{self.name}] {text}", end="", flush=True)
            except OSError:
                pass  # our terminal is gone (SIGHUP): keep reading, or the service blocks on a full pipe

    def wait_ready(self, stop, check=None):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            stop.check()
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}")
            if self.ready.is_set() or (check and check()):
                return
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"{self.name} did not start within {READY_TIMEOUT_SECONDS} s")

    def _signal(self, signum):
        try:
            os.killpg(self.process.pid, signum)  # its own group: chalice's reloader has a worker
        except ProcessLookupError:
            pass

    def terminate(self):
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)

    def wait_or_kill(self, deadline):
        try:
            self.process.wait(max(0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Not reaped yet, so its pid (the group's id) cannot have been reused.
            self._signal(signal.SIGKILL)
            self.process.wait()


def stop_all(services):
    """SIGTERM to every service at once, then SIGKILL to any still running after STOP_TIMEOUT_SECONDS."""
    for service in services:
        service.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for service in services:
        service.wait_or_kill(deadline)


def port_problem(host, ports):
    """One line on the first of `ports` ({service: port}) that cannot be listened on, or None.
    Checked before anything starts: `chalice local` on a busy port dies with a traceback."""
    seen = {}
    for name, port in ports.items():
        if port in seen:
            return (f"Port {port} is given to both {SERVICE_NAMES[seen[port]]} and {SERVICE_NAMES[name]}: "
                    f"pick another with --{name}-port PORT.")
        seen[port] = name
        # As the servers bind (SO_REUSEADDR): only a listening socket makes this fail.
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as error:
                reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
                env = f"{name.upper()}_PORT"
                return (f"Port {port} on {host} for {SERVICE_NAMES[name]} {reason}: stop what holds it, or "
                        f"pick another port with --{name}-port PORT (make dev {env}=PORT).")
    return None


def _answers(url):
    def check():
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False
    return check


# `chalice local`, with a listen backlog of 128 instead of socketserver's default 5: with
# 5, fifty browsers signing in at once got connection resets. With autoreload, chalice
# re-runs sys.argv as its worker, so sys.argv becomes this same command line again.
# The event's sourceIp is the TCP peer, as API Gateway sets it (chalice local always says
# 127.0.0.1): the per-client limits can then be tried from 127.0.0.2, 127.0.0.3, ...
CHALICE_LOCAL = (
    "import sys; from chalice import local; from chalice.cli import cli; "
    "local.ThreadedHTTPServer.request_queue_size = 128; "
    "parse = local.ChaliceRequestHandler._parse_payload; "
    "local.ChaliceRequestHandler._parse_payload = lambda self: (setattr("
    "self.local_gateway.event_converter, 'LOCAL_SOURCE_IP', self.client_address[0]), parse(self))[1]; "
    "args = sys.argv[1:]; sys.argv = list(sys.orig_argv); "
    "cli.main(args=args, prog_name='chalice', obj={})"
)


def _setting(text):
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def authsignal_options(args):
    options = [f"--rule={rule}" for rule in args.rule]
    if args.methods:
        options.append(f"--methods={args.methods}")
    if args.default_outcome:
        options.append(f"--default-outcome={args.default_outcome}")
    if args.custom_domain:
        options.append(f"--custom-domain={custom_domain(args.authsignal_port)}")
    if args.json_content_type:
        options.append(f"--json-content-type={args.json_content_type}")
    return options


def cognito_options(args):
    options = []
    if args.session_length is not None:
        options.append(f"--session-length={args.session_length}")
    if args.initiate_auth_client_metadata:
        options.append("--initiate-auth-client-metadata")
    if args.prevent_user_existence_errors:
        options.append("--prevent-user-existence-errors")
    return options


def chalice_command(host, port, autoreload):
    command = [sys.executable, "-c", CHALICE_LOCAL, "local",
               "--stage", STAGE, "--host", host, "--port", str(port)]
    return command + ([] if autoreload else ["--no-autoreload"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--app-port", type=int, default=int(os.environ.get("APP_PORT", 8000)))
    parser.add_argument("--authsignal-port", type=int, default=int(os.environ.get("AUTHSIGNAL_PORT", 8001)))
    parser.add_argument("--cognito-port", type=int, default=int(os.environ.get("COGNITO_PORT", 8002)))
    parser.add_argument("--dynamodb-port", type=int, default=int(os.environ.get("DYNAMODB_PORT", 8003)))
    parser.add_argument("--no-autoreload", action="store_true", help="don't restart the app on code changes")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", type=_setting,
                        help="override a local-stage variable for the app and its triggers")
    parser.add_argument("--default-outcome", help="the dev tenant action's default outcome "
                        "(CHALLENGE, ALLOW, BLOCK or REVIEW_REQUIRED; default CHALLENGE)")
    parser.add_argument("--rule", action="append", default=[], metavar="EMAIL=OUTCOME",
                        help="a dev tenant rule: track for EMAIL answers OUTCOME")
    parser.add_argument("--methods", help="the methods the dev tenant turns on, comma-separated "
                        "(EMAIL_OTP, EMAIL_MAGIC_LINK, SMS, AUTHENTICATOR_APP, PASSKEY; default all)")
    parser.add_argument("--custom-domain", action="store_true",
                        help="the dev tenant serves its UI on a second origin (http://localhost:<authsignal "
                        "port>) and the app's AUTHSIGNAL_UI_ORIGIN lists both")
    parser.add_argument("--json-content-type", help="the Authsignal emulator answers its server API with "
                        "this Content-Type, e.g. 'application/json; charset=utf-8'")
    parser.add_argument("--session-length", type=int, help="characters in each Cognito Session "
                        "(20 to 4096; default 4096, the longest botocore allows)")
    parser.add_argument("--initiate-auth-client-metadata", action="store_true",
                        help="InitiateAuth's ClientMetadata reaches Define and Create (unconfirmed on AWS)")
    parser.add_argument("--prevent-user-existence-errors", action="store_true",
                        help="the app client's PreventUserExistenceErrors is ENABLED (the app needs LEGACY: "
                        "shows what an operator sees when it is not)")
    parser.add_argument("--linked-project", help="where to put the linked project copy (default: .devstack/project)")
    parser.add_argument("--metrics-file", help="where this run keeps the app's metric lines for `make metrics` "
                        "(default: .devstack/metrics.jsonl)")
    args = parser.parse_args(argv)

    python = sys.executable
    overrides = endpoint_overrides(args.host, args.authsignal_port, args.cognito_port, args.custom_domain,
                                   args.dynamodb_port)
    overrides.update(args.set)
    stage = local_stage_env()
    defaults = all(stage.get(name) == value for name, value in overrides.items())
    stop = StopFlag()
    stop.install()
    problem = port_problem(args.host, {"app": args.app_port, "authsignal": args.authsignal_port,
                                       "cognito": args.cognito_port, "dynamodb": args.dynamodb_port})
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 1
    services = []
    from devstack.metrics import DEFAULT_FILE, MetricsFile

    metrics = MetricsFile(args.metrics_file or DEFAULT_FILE)
    try:
        services.append(Service("authsignal", [
            python, "-m", "devstack.authsignal", "--host", args.host,
            "--port", str(args.authsignal_port), "--project-dir", ROOT, "--stage", STAGE,
            *authsignal_options(args)]))
        from chalicelib.cleanup import PENDING_GROUP  # the dev pool is set up as `connect` sets up one
        from triggers.connect import CLIENT_SETTINGS

        services.append(Service("cognito", [
            python, "-m", "devstack.cognito", "--host", args.host, "--port", str(args.cognito_port),
            "--project-dir", ROOT, "--stage", STAGE,
            "--write-attributes=" + ",".join(CLIENT_SETTINGS["WriteAttributes"]), "--group=" + PENDING_GROUP,
            *cognito_options(args),
            *[f"--env={name}={value}" for name, value in overrides.items()]], metrics=metrics))
        services.append(Service("dynamodb", [
            python, "-m", "devstack.dynamodb", "--host", args.host, "--port", str(args.dynamodb_port),
            "--table", {**stage, **overrides}["LIMITS_TABLE"], "--region", stage.get("COGNITO_REGION", "us-east-1")]))
        for service in services:
            service.wait_ready(stop)
        app_dir = ROOT if defaults else linked_project(overrides, args.linked_project)
        # The app's admin calls (the cleanup's group) are signed; the emulator accepts any key,
        # and a real one never needs to reach it.
        app = Service("app", chalice_command(args.host, args.app_port, not args.no_autoreload), cwd=app_dir,
                      env={"AWS_ACCESS_KEY_ID": "devstack", "AWS_SECRET_ACCESS_KEY": "devstack"}, metrics=metrics)
        services.append(app)
        app_url = f"http://{args.host}:{args.app_port}"
        app.wait_ready(stop, check=_answers(app_url + "/config"))
        authsignal_url = f"http://{args.host}:{args.authsignal_port}"
        # WebAuthn needs a domain as relying party ID: open the page as localhost.
        page_url = app_url.replace("127.0.0.1", "localhost")
        dialog = (f"  Authsignal's dialog:  {custom_domain(args.authsignal_port)}  (the dev tenant's custom "
                  "domain: passkeys work in it)\n" if args.custom_domain else "")
        print(
            "\n  Offline dev stack is up. Ctrl-C stops it.\n"
            f"  App (sign-in page):   {page_url}/  (passkeys need the name localhost)\n"
            f"  Authsignal emulator:  {authsignal_url}  (mailbox: {authsignal_url}/_dev/mailbox?email=...)\n"
            f"{dialog}"
            f"  Cognito emulator:     http://{args.host}:{args.cognito_port}\n"
            f"  DynamoDB (limits):    http://{args.host}:{args.dynamodb_port}  (moto)\n"
            "  One-time codes are printed below as [authsignal] [mailbox] lines.\n", flush=True)
        print(f"DEVSTACK READY app={app_url} authsignal={authsignal_url} "
              f"cognito=http://{args.host}:{args.cognito_port} dynamodb=http://{args.host}:{args.dynamodb_port}",
              flush=True)
        while stop.signum is None:
            dead = [s for s in services if s.process.poll() is not None]
            if dead:
                print(f"{dead[0].name} exited (code {dead[0].process.returncode}); stopping.", flush=True)
                return 1
            time.sleep(POLL_SECONDS)
        return 0
    except StopRequested:
        return 0
    except RuntimeError as error:
        print(f"Dev stack failed to start: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_all(services)


if __name__ == "__main__":
    sys.exit(main())
