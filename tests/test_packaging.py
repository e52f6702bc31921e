"""`chalice package` builds, and the zip carries what the Lambdas read at run time."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHALICE = os.path.join(os.path.dirname(sys.executable), "chalice")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([CHALICE, "package", "--stage", "prod", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        names = set(archive.namelist())
        index = archive.read("static/index.html").decode()
    with open(out / "sam.json") as handle:
        template = json.load(handle)
    return {"names": names, "index": index, "template": template, "zip": out / "deployment.zip"}


def test_zip_holds_the_app_the_triggers_and_the_page(package):
    names = package["names"]
    for required in ["app.py", "chalicelib/signin.py", "triggers/__init__.py",
                     "static/index.html", "static/app.js", "static/app.css", "chalicelib/authsignal_client.py",
                     "humps/__init__.py"]:
        assert required in names, required
    assert "{{WEB_SDK_URL}}" in package["index"]


def test_zip_leaves_out_dev_only_code_boto3_and_the_sdks(package):
    # The gateways talk HTTP on the standard library: no SDK or HTTP library to ship.
    for name in package["names"]:
        top = name.split("/")[0]
        assert top not in {"devstack", "tests", "node_modules", "boto3", "botocore", "vendor",
                           "authsignal", "requests", "urllib3"}, name


def test_zip_is_small(package):
    assert os.path.getsize(package["zip"]) < 2 * 1024 * 1024


def test_every_trigger_is_a_function_with_its_handler(package):
    functions = {resource["Properties"]["Handler"] for resource in package["template"]["Resources"].values()
                 if resource["Type"] == "AWS::Serverless::Function"}
    assert {"app.app", "triggers.pre_sign_up", "triggers.define_auth_challenge",
            "triggers.create_auth_challenge", "triggers.verify_auth_challenge_response"} <= functions


def test_every_trigger_times_out_inside_cognitos_5_seconds(package):
    # Cognito re-invokes a trigger after 5 s; a longer Lambda timeout only lets the abandoned attempt run on.
    triggers = [resource["Properties"] for resource in package["template"]["Resources"].values()
                if resource["Type"] == "AWS::Serverless::Function"
                and resource["Properties"]["Handler"].startswith("triggers.")]
    assert len(triggers) == 4
    for function in triggers:
        assert function["Timeout"] <= 5, function["Handler"]
