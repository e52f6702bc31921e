"""Run the dev stack from a test or a benchmark: free ports, a handle, and the steps a user takes.

    with harness.running("--set", "AUTH_START_MIN_SECONDS=0") as stack:
        token = stack.token_for(challenge_url, email)
"""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

from devstack.run import ROOT, endpoint_overrides, local_stage_env

START_TIMEOUT_SECONDS = 90


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DevStack:
    app_url: str
    authsignal_url: str
    cognito_url: str
    dynamodb_url: str
    project_dir: str
    env: dict
    log: list
    process: subprocess.Popen = None  # `python -m devstack` itself, for tests that signal it

    def local_env(self):
        """The local stage's environment variables, as this stack's app sees them."""
        return {**local_stage_env(), **self.env}

    def _url(self, which):
        return self.cognito_url if which == "cognito" else self.authsignal_url

    def mailbox(self, email):
        response = requests.get(f"{self.authsignal_url}/_dev/mailbox", params={"email": email}, timeout=5)
        response.raise_for_status()
        return response.json()

    def complete_challenge(self, challenge_url, email, code=None):
        """Do what the challenge page does: open it (sends the code), read the mail, submit."""
        page = requests.get(challenge_url, timeout=5)
        if page.status_code != 200 or not page.headers["Content-Type"].startswith("text/html"):
            raise AssertionError(f"challenge page answered {page.status_code}")
        if code is None:
            code = self.mailbox(email)[-1]["code"]
        token = parse_qs(urlsplit(challenge_url).query)["token"][0]
        return requests.post(f"{self.authsignal_url}/challenge/verify",
                             json={"token": token, "code": code}, timeout=5)

    def token_for(self, challenge_url, email):
        answer = self.complete_challenge(challenge_url, email)
        if answer.status_code != 200:
            raise AssertionError(f"challenge not completed: {answer.status_code} {answer.text}")
        return answer.json()["token"]

    def stats(self, which):
        return requests.get(f"{self._url(which)}/_dev/stats", timeout=5).json()

    def fault(self, which, operation, fault, count=1):
        response = requests.post(f"{self._url(which)}/_dev/faults", timeout=5,
                                 json={"operation": operation, "fault": fault, "count": count})
        response.raise_for_status()


@contextlib.contextmanager
def running(*extra_args, project_dir=None):
    """`python -m devstack` on free ports with `extra_args`; stopped on exit.

    `--set NAME=VALUE` arguments are reflected in the handle's `env`."""
    ports = {"app": free_port(), "authsignal": free_port(), "cognito": free_port(), "dynamodb": free_port()}
    project_dir = project_dir or os.path.join(ROOT, ".devstack", "project")
    command = [sys.executable, "-m", "devstack", "--no-autoreload", "--linked-project", project_dir,
               "--app-port", str(ports["app"]), "--authsignal-port", str(ports["authsignal"]),
               "--cognito-port", str(ports["cognito"]), "--dynamodb-port", str(ports["dynamodb"]),
               "--metrics-file", os.path.join(project_dir, "metrics.jsonl"),
               *extra_args]
    settings = dict(value.split("=", 1) for flag, value in zip(extra_args, extra_args[1:]) if flag == "--set")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1, start_new_session=True)
    log, ready = [], threading.Event()

    def relay():
        for line in process.stdout:
            log.append(line)
            if line.startswith("DEVSTACK READY"):
                ready.set()
    threading.Thread(target=relay, daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dev stack did not start:\n" + "".join(log[-40:]))
        yield DevStack(
            app_url=f"http://127.0.0.1:{ports['app']}",
            authsignal_url=f"http://127.0.0.1:{ports['authsignal']}",
            cognito_url=f"http://127.0.0.1:{ports['cognito']}",
            dynamodb_url=f"http://127.0.0.1:{ports['dynamodb']}",
            project_dir=project_dir,
            env={**endpoint_overrides("127.0.0.1", ports["authsignal"], ports["cognito"],
                                      "--custom-domain" in extra_args, ports["dynamodb"]), **settings},
            log=log,
            process=process,
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
