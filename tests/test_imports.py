"""Cold starts: importing the app, the page route, PreSignUp and Define load no AWS or HTTP SDK,
and no JWT library (the authorizer imports PyJWT and cryptography when a protected route is called)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ["boto3", "botocore", "requests", "authsignal", "jwt", "cryptography"]


def loaded_after(code):
    """Run `code` in a fresh interpreter and list which heavy modules it imported."""
    script = f"import sys\n{code}\nimport json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_app_loads_no_sdk():
    assert loaded_after("import app") == []


def test_page_route_and_cheap_triggers_load_no_sdk():
    code = """
import os, json
config = json.load(open('.chalice/config.json'))
os.environ.update(config['environment_variables'])
os.environ.update(config['stages']['local']['environment_variables'])
# Outside Lambda the page checks that the emulators answer: give it a listening socket for them.
import socket
emulators = socket.create_server(('127.0.0.1', 0))
os.environ['AUTHSIGNAL_API_URL'] = 'http://127.0.0.1:%d/v1' % emulators.getsockname()[1]
os.environ['COGNITO_ENDPOINT_URL'] = 'http://127.0.0.1:%d' % emulators.getsockname()[1]
import app
# An API Gateway proxy event, as Lambda hands it over (chalice.test would import botocore itself).
request = {'resource': '/', 'path': '/', 'httpMethod': 'GET', 'headers': {'Host': 'x'},
           'multiValueHeaders': {}, 'queryStringParameters': None, 'multiValueQueryStringParameters': None,
           'pathParameters': None, 'stageVariables': None, 'body': None, 'isBase64Encoded': False,
           'requestContext': {'resourcePath': '/', 'httpMethod': 'GET', 'path': '/api/', 'stage': 'api'}}
page = app.app(request, None)
assert page['statusCode'] == 200 and 'Sign in' in page['body'], page
import triggers
event = {'version': '1', 'triggerSource': 'DefineAuthChallenge_Authentication', 'region': 'us-east-1',
         'userPoolId': 'p', 'userName': 'u', 'callerContext': {}, 'request': {'userAttributes': {}, 'session': []},
         'response': {'challengeName': None, 'issueTokens': None, 'failAuthentication': None}}
assert triggers.define_auth_challenge(event, None)['response']['challengeName'] == 'CUSTOM_CHALLENGE'
event = {'version': '1', 'triggerSource': 'PreSignUp_SignUp', 'region': 'us-east-1', 'userPoolId': 'p',
         'userName': 'u', 'callerContext': {'clientId': os.environ['COGNITO_CLIENT_ID']}, 'request': {'userAttributes': {}},
         'response': {'autoConfirmUser': False, 'autoVerifyEmail': False, 'autoVerifyPhone': False}}
assert triggers.pre_sign_up(event, None)['response']['autoConfirmUser'] is True
"""
    assert loaded_after(code) == []


def test_create_trigger_does_load_the_authsignal_sdk():
    # The check above could pass by never loading anything; this shows it can see an import.
    assert "authsignal" in loaded_after("from chalicelib import authsignal_gateway\nimport authsignal.client")


ENV_CREDENTIALS_CALL = """
import os, socket
os.environ.update(AWS_ACCESS_KEY_ID='ASIALAMBDA', AWS_SECRET_ACCESS_KEY='s', AWS_SESSION_TOKEN='t',
                  AWS_USE_FIPS_ENDPOINT='true')
from chalicelib import aws_json
assert aws_json.endpoint('ssm', 'eu-west-1') == 'https://ssm-fips.eu-west-1.amazonaws.com'
sock = socket.socket(); sock.bind(('127.0.0.1', 0)); port = sock.getsockname()[1]; sock.close()
try:  # signed, refused, retried: the whole path of a Lambda's SSM read
    aws_json.call(f'http://127.0.0.1:{port}', 'AmazonSSM.GetParameter', {}, 0.2, 0.2, sign=('eu-west-1', 'ssm'),
                  safe=True, random=lambda: 0)
except aws_json.AwsUnavailable:
    pass
"""


def test_a_signed_call_with_the_lambdas_env_credentials_loads_no_sdk():
    # Lambda sets the role's credentials in the environment: botocore's chain is never asked.
    assert loaded_after(ENV_CREDENTIALS_CALL) == []


def test_without_env_credentials_botocores_chain_is_asked():
    # The check above could pass by never looking: without the variables, botocore is loaded.
    code = ENV_CREDENTIALS_CALL.replace("AWS_ACCESS_KEY_ID='ASIALAMBDA', AWS_SECRET_ACCESS_KEY='s', ", "")
    code = "import os\nos.environ.update(AWS_EC2_METADATA_DISABLED='true', AWS_CONFIG_FILE='/dev/null', " \
           "AWS_SHARED_CREDENTIALS_FILE='/dev/null')\n" + code.replace(
               "except aws_json.AwsUnavailable:", "except aws_json.AwsUnavailable:  # AwsNoCredentials")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        code = f"os.environ.pop({name!r}, None)\n" + code
    assert "botocore" in loaded_after("import os\n" + code)


def test_the_authorizer_loads_pyjwt_only_when_called():
    code = """
import os
os.environ.update(COGNITO_USER_POOL_ID='us-east-1_Pool0001', COGNITO_CLIENT_ID='c')
import app
from chalice.app import AuthRequest
assert 'jwt' not in sys.modules
answer = app.cognito_access_token({'type': 'TOKEN', 'authorizationToken': 'Bearer a.b.c',
                                   'methodArn': 'arn:aws:execute-api:us-east-1:1:a/api/GET/api/me'}, None)
assert answer['policyDocument']['Statement'][0]['Effect'] == 'Deny'
"""
    assert loaded_after(code) == ["jwt", "cryptography"]
