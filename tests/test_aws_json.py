"""The small AWS JSON 1.1 client: botocore is the oracle for its signatures and its reading of
error answers; a real HTTP server on loopback for its connections and timeouts."""
import contextlib
import datetime
import http.server
import json
import select
import threading

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import JSONParser

from chalicelib import aws_json, outbound
from tests.conftest import free_port

TARGET = "AWSCognitoIdentityProviderService.InitiateAuth"


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, body) of `script`; counts connections."""

    protocol_version = "HTTP/1.1"  # keep-alive, as AWS endpoints answer

    def setup(self):
        super().setup()
        self.server.connections += 1

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(dict(self.headers))
        status, body, *then = self.server.script.pop(0) if self.server.script else (200, b"{}")
        if status == "hang":
            self.server.release.wait(10)
            return
        self.send_response(status)
        self.send_header("Content-Type", aws_json.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if then == ["close"]:  # as an idle timeout would, with no "Connection: close" said
            self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(*script):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.daemon_threads = True
    server.script, server.requests, server.connections = list(script), [], 0
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def call(url, **kwargs):
    return aws_json.call(url, TARGET, {"AuthFlow": "CUSTOM_AUTH"}, 1, 1, **kwargs)


def test_a_success_is_the_json_object():
    with serving((200, b'{"ChallengeName": "CUSTOM_CHALLENGE", "Session": "s"}')) as (server, url):
        assert call(url) == {"ChallengeName": "CUSTOM_CHALLENGE", "Session": "s"}
        sent = server.requests[0]
        assert sent["X-Amz-Target"] == TARGET and sent["Content-Type"] == aws_json.CONTENT_TYPE
        assert "Authorization" not in sent  # the app client's calls go unsigned, as botocore sends them


ERROR_ANSWERS = [
    (400, b'{"__type": "NotAuthorizedException", "message": "Incorrect username or password."}'),
    (400, b'{"__type": "com.amazonaws.cognito#TooManyRequestsException", "Message": "Rate exceeded"}'),
    (400, b'{"__type": "UserLambdaValidationException:http://internal", "message": "x"}'),
    (400, b"not json at all"),
    (400, b""),
    (500, b'{"__type": "InternalErrorException", "message": "An internal error occurred."}'),
    (500, b"<html><body>Service Unavailable</body></html>"),
    (503, b""),
    (502, b'{"message": "Bad gateway"}'),
    (302, b""),
]


@pytest.mark.parametrize("status,body", ERROR_ANSWERS)
def test_errors_read_as_botocore_reads_them(status, body):
    expected = JSONParser().parse({"status_code": status, "headers": {}, "body": body}, None)["Error"]
    with serving((status, body)) as (_, url):
        with pytest.raises(aws_json.AwsError) as raised:
            call(url, max_attempts=1)  # the first answer, as read (retries: tests/test_aws_retry.py)
    assert (raised.value.code, raised.value.message) == (expected["Code"], expected["Message"])


def test_a_kept_alive_connection_is_reused():
    with serving() as (server, url):
        call(url)
        call(url)
        assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_not_failed():
    with serving((200, b'{"first": true}', "close")) as (server, url):
        assert call(url) == {"first": True}
        conn = outbound._local.connections[("http", url.split("//")[1])]
        assert select.select([conn.sock], [], [], 5)[0]  # the server's FIN has arrived
        assert call(url) == {}
        assert server.connections == 2


def test_refused_connection_is_unavailable():
    with pytest.raises(aws_json.AwsUnavailable):
        call(f"http://127.0.0.1:{free_port()}")


def test_no_answer_within_the_read_timeout_is_unavailable_and_not_retried():
    with serving(("hang", b"")) as (server, url):
        with pytest.raises(aws_json.AwsUnavailable, match="TimeoutError|timeout"):
            aws_json.call(url, TARGET, {}, 1, 0.3)
        assert len(server.requests) == 1


@pytest.mark.parametrize("token", [None, "session-token-from-the-lambda-role"])
def test_sigv4_matches_botocore(monkeypatch, token):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    body = json.dumps({"UserPoolId": "eu-west-1_abc", "Username": "u-1",
                       "UserAttributes": [{"Name": "email_verified", "Value": "true"}]}).encode()
    headers = {"Host": "cognito-idp.eu-west-1.amazonaws.com", "Content-Type": aws_json.CONTENT_TYPE,
               "X-Amz-Target": "AWSCognitoIdentityProviderService.AdminUpdateUserAttributes"}
    now = datetime.datetime(2026, 11, 29, 1, 2, 3, tzinfo=datetime.timezone.utc)
    ours = aws_json.sigv4_headers(body, headers, "eu-west-1", "cognito-idp", now=now)

    request = AWSRequest(method="POST", url="https://cognito-idp.eu-west-1.amazonaws.com/",
                         data=body, headers=dict(headers))
    request.context["timestamp"] = now.strftime("%Y%m%dT%H%M%SZ")
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
                       "cognito-idp", "eu-west-1")
    signer._modify_request_before_signing(request)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(string_to_sign, request)
    assert ours["Authorization"].endswith("Signature=" + expected)
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == token


def test_a_signed_call_without_credentials_sends_nothing_and_says_what_to_set(no_aws_credentials):
    with serving() as (server, url):
        with pytest.raises(aws_json.AwsNoCredentials, match="AWS_PROFILE") as raised:
            call(url, sign=("us-east-1", "cognito-idp"))
        assert server.requests == []
    assert isinstance(raised.value, aws_json.AwsUnavailable)  # callers that only know outages still catch it


def test_endpoints(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                 "AWS_USE_FIPS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert aws_json.endpoint("cognito-idp", "eu-west-1") == "https://cognito-idp.eu-west-1.amazonaws.com"
    assert aws_json.endpoint("ssm", "cn-north-1") == "https://ssm.cn-north-1.amazonaws.com.cn"  # more: test_aws_endpoints
