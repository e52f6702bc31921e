"""`chalice local` without the dev stack: the page says what to run or set, not a bare JSON 500."""
import json
import os
import subprocess
import time

import pytest
import requests
from chalice.test import Client

import app
from devstack.harness import free_port
from devstack.run import ROOT, chalice_command, endpoint_overrides, linked_project, local_stage_env

SECRETS = [value for name, value in local_stage_env().items() if "SECRET" in name]


@pytest.fixture
def project_without_emulators(tmp_path):
    """The local stage, with its emulators' ports pointing where nothing listens."""
    return linked_project(endpoint_overrides("127.0.0.1", free_port(), free_port()), str(tmp_path / "project"))


def assert_page_says(response, *phrases):
    assert response.status_code == 503, response.body
    assert response.headers["Content-Type"].startswith("text/html")
    text = response.body.decode()
    for phrase in phrases:
        assert phrase in text, text
    assert "not_configured" not in text and "Traceback" not in text
    for secret in SECRETS:
        assert secret not in text


def test_local_stage_without_the_emulators_says_to_run_make_dev(project_without_emulators, monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    with Client(app.app, stage_name="local", project_dir=project_without_emulators) as client:
        response = client.http.get("/")
    authsignal = json.load(open(os.path.join(project_without_emulators, ".chalice", "config.json")))[
        "stages"]["local"]["environment_variables"]["AUTHSIGNAL_API_URL"]
    assert_page_says(response, "make dev", "not running", authsignal)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_dev_stage_names_the_missing_setting(monkeypatch):
    """Plain `chalice local` runs the dev stage: placeholders and no region."""
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "COGNITO_REGION"):
        monkeypatch.delenv(name, raising=False)
    with Client(app.app, stage_name="dev", project_dir=ROOT) as client:
        response = client.http.get("/")
    assert_page_says(response, "COGNITO_REGION", "make dev")


def test_a_deployed_stage_still_tells_callers_nothing(project_without_emulators, monkeypatch):
    """In Lambda the detail stays in the log: the local stage's loopback endpoints are refused there."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "cognito-authsignal-local")
    with Client(app.app, stage_name="local", project_dir=project_without_emulators) as client:
        response = client.http.get("/")
    assert response.status_code == 500
    assert json.loads(response.body)["error"]["code"] == "not_configured"
    assert "make dev" not in response.body.decode()


def test_plain_chalice_local_over_http(tmp_path):
    """The command itself, as the issue ran it: `chalice local` with its default stage."""
    port = free_port()
    command = chalice_command("127.0.0.1", port, autoreload=False)
    stage = command.index("--stage")
    del command[stage:stage + 2]  # chalice's default: dev
    env = {name: value for name, value in os.environ.items()
           if name not in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "chalice local did not start"
                time.sleep(0.1)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
    assert response.status_code == 503 and response.headers["Content-Type"].startswith("text/html")
    assert "make dev" in response.text and "COGNITO_REGION" in response.text
    assert "make dev" in output  # the terminal running it says so too
