"""Shared fixtures: the offline dev stack on free ports, and helpers that act as a user would."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from devstack.run import endpoint_overrides  # noqa: E402


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DevStack:
    app_url: str
    authsignal_url: str
    cognito_url: str
    project_dir: str
    env: dict
    log: list

    def local_env(self):
        """The local stage's environment variables, pointed at this stack."""
        with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
            config = json.load(handle)
        return {**config["environment_variables"],
                **config["stages"]["local"]["environment_variables"], **self.env}

    def mailbox(self, email):
        response = requests.get(f"{self.authsignal_url}/_dev/mailbox", params={"email": email}, timeout=5)
        response.raise_for_status()
        return response.json()

    def complete_challenge(self, challenge_url, email, code=None):
        """Do what the challenge page does: open it (sends the code), read the mail, submit."""
        page = requests.get(challenge_url, timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        if code is None:
            code = self.mailbox(email)[-1]["code"]
        token = parse_qs(urlsplit(challenge_url).query)["token"][0]
        answer = requests.post(f"{self.authsignal_url}/challenge/verify",
                               json={"token": token, "code": code}, timeout=5)
        return answer

    def token_for(self, challenge_url, email):
        answer = self.complete_challenge(challenge_url, email)
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def stats(self, which):
        url = self.cognito_url if which == "cognito" else self.authsignal_url
        return requests.get(f"{url}/_dev/stats", timeout=5).json()

    def fault(self, which, operation, fault, count=1):
        url = self.cognito_url if which == "cognito" else self.authsignal_url
        response = requests.post(f"{url}/_dev/faults", json={"operation": operation, "fault": fault, "count": count}, timeout=5)
        response.raise_for_status()


@contextlib.contextmanager
def running_devstack(*extra_args, project_dir=None, env=None):
    """`python -m devstack` on free ports with `extra_args`; stopped on exit."""
    ports = {"app": free_port(), "authsignal": free_port(), "cognito": free_port()}
    command = [sys.executable, "-m", "devstack", "--no-autoreload",
               "--app-port", str(ports["app"]), "--authsignal-port", str(ports["authsignal"]),
               "--cognito-port", str(ports["cognito"]), *extra_args]
    if project_dir:
        command += ["--linked-project", project_dir]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1, start_new_session=True)
    log, ready = [], threading.Event()

    def relay():
        for line in process.stdout:
            log.append(line)
            if line.startswith("DEVSTACK READY"):
                ready.set()
    threading.Thread(target=relay, daemon=True).start()
    deadline = time.monotonic() + 90
    while not ready.is_set():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("dev stack did not start:\n" + "".join(log[-40:]))
        time.sleep(0.1)
    stack = DevStack(
        app_url=f"http://127.0.0.1:{ports['app']}",
        authsignal_url=f"http://127.0.0.1:{ports['authsignal']}",
        cognito_url=f"http://127.0.0.1:{ports['cognito']}",
        project_dir=project_dir or os.path.join(ROOT, ".devstack", "project"),
        env={**endpoint_overrides("127.0.0.1", ports["authsignal"], ports["cognito"]), **(env or {})},
        log=log,
    )
    try:
        yield stack
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def devstack():
    """`python -m devstack` on free ports, as a user runs it; stopped after the session."""
    with running_devstack() as stack:
        yield stack


def production_sdk_url():
    """The Web SDK URL that dev and prod pages use (the pinned CDN file)."""
    with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
        return json.load(handle)["environment_variables"]["AUTHSIGNAL_SDK_URL"]


@pytest.fixture(scope="session")
def browser_stack():
    """A second dev stack whose page loads the Web SDK from the production URL, for the
    browser tests (they answer that URL themselves). Its linked project has its own folder,
    so it never disturbs the `devstack` fixture's."""
    sdk_url = production_sdk_url()
    project_dir = os.path.join(ROOT, ".devstack", f"project-browser-{os.getpid()}")
    with running_devstack("--sdk-url", sdk_url, project_dir=project_dir,
                          env={"AUTHSIGNAL_SDK_URL": sdk_url}) as stack:
        yield stack
    shutil.rmtree(project_dir, ignore_errors=True)


@pytest.fixture
def local_env(devstack, monkeypatch):
    """This process's environment set to the local stage, for calling triggers directly."""
    for name, value in devstack.local_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "devstack")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "devstack")
    return devstack.local_env()


@pytest.fixture
def client(devstack):
    """Chalice's test client on the local stage, talking to this stack's emulators."""
    from chalice.test import Client

    import app
    with Client(app.app, stage_name="local", project_dir=devstack.project_dir) as test_client:
        yield test_client


@pytest.fixture
def email():
    """A fresh address per test, so tests never share users."""
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(autouse=True)
def fresh_boto3_session():
    """boto3's default session keeps the `os.environ` it first saw, and chalice.test swaps
    `os.environ` for a copy during calls: drop the session so no test inherits a stale one."""
    yield
    if "boto3" in sys.modules:
        sys.modules["boto3"].DEFAULT_SESSION = None
