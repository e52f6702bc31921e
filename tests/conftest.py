"""Shared fixtures: the offline dev stack on free ports, and helpers that act as a user would."""
import contextlib
import json
import os
import shutil
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from devstack import harness  # noqa: E402
from devstack.harness import free_port  # noqa: E402,F401  (tests import it from here)


@contextlib.contextmanager
def running_devstack(*extra_args, project_dir=None):
    """`python -m devstack` on free ports; a test fails, not errors, when it cannot start."""
    try:
        with harness.running(*extra_args, project_dir=project_dir) as stack:
            yield stack
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def package(tmp_path_factory):
    """The deployment package `chalice package --stage prod` builds, and its SAM template."""
    import subprocess
    import zipfile

    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    result = subprocess.run([chalice, "package", "--stage", "prod", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        names = set(archive.namelist())
        index = archive.read("static/index.html").decode()
    with open(out / "sam.json") as handle:
        template = json.load(handle)
    return {"names": names, "index": index, "template": template, "zip": out / "deployment.zip"}


@pytest.fixture(scope="session")
def devstack():
    """`python -m devstack` on free ports, as a user runs it; stopped after the session."""
    project_dir = os.path.join(ROOT, ".devstack", f"project-{os.getpid()}")  # one per xdist worker
    with running_devstack(project_dir=project_dir) as stack:
        yield stack
    shutil.rmtree(project_dir, ignore_errors=True)


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
    with running_devstack("--set", f"AUTHSIGNAL_SDK_URL={sdk_url}", project_dir=project_dir) as stack:
        yield stack
    shutil.rmtree(project_dir, ignore_errors=True)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, driven by Playwright) for every browser test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def custom_domain_stack():
    """A dev stack whose tenant serves its UI on a second origin (a custom domain), with the
    app's AUTHSIGNAL_UI_ORIGIN listing both; the page loads the SDK as browser_stack's does."""
    project_dir = os.path.join(ROOT, ".devstack", f"project-domain-{os.getpid()}")
    with running_devstack("--custom-domain", "--set", f"AUTHSIGNAL_SDK_URL={production_sdk_url()}",
                          project_dir=project_dir) as stack:
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


@pytest.fixture(scope="module")
def emu():
    """The Authsignal emulator alone, one per test module (tests/test_authsignal_*.py)."""
    from tests.test_authsignal_emulator import Emulator

    emulator = Emulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def sdk(emu):
    """The real `authsignal` SDK pointed at `emu`."""
    return emu.client()


CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    """No credentials anywhere botocore's chain looks: no variables, empty config files, no
    instance metadata (its probe would wait on a timeout). Returns the two (empty) files."""
    from chalicelib import aws_credentials

    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text("")
    credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws_credentials.forget()
    yield config, credentials
    aws_credentials.forget()


@pytest.fixture
def aws_profile(no_aws_credentials, monkeypatch):
    """Only a named profile in temporary config files, selected by AWS_PROFILE (as a developer
    has after `aws configure --profile`); no credential variables. Returns its keys."""
    config, credentials = no_aws_credentials
    keys = {"aws_access_key_id": "AKIAPROFILEONLY0001", "aws_secret_access_key": "profile-secret-never-logged"}
    config.write_text("[profile passwordless-dev]\nregion = us-east-1\n")
    credentials.write_text("[passwordless-dev]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    monkeypatch.setenv("AWS_PROFILE", "passwordless-dev")
    return keys
