"""The Cognito user-pool API, through a small AWS JSON 1.1 client (`chalicelib.aws_json`).

Every call from the backend carries SECRET_HASH: the app client has a secret and
the browser never talks to Cognito. The app client's calls need no AWS signature; the
Verify trigger's admin call is signed (SigV4) with the function's role credentials.
"""
import base64

from chalicelib import settings  # aws_json (http.client, ssl) on the first call: importing the app stays light

TARGET = "AWSCognitoIdentityProviderService."
# Triggers run inside Cognito's calls, so a sign-in call may take a few seconds;
# past that, the user gets a clear 503 instead of a hanging page.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 8
# Inside a trigger (the Verify's admin call), also cut to the trigger's network budget
# (chalicelib.budget): Cognito waits 5 s for the whole trigger.
TRIGGER_CONNECT_TIMEOUT_SECONDS = 0.5
TRIGGER_TIMEOUT_SECONDS = 1.5
# botocore refuses these before sending (its minimum lengths); Cognito would refuse the same.
MIN_LENGTHS = {"Session": 20}
# Which operations may be repeated after Cognito may have acted on them (any retryable failure,
# as botocore retries); the others are retried only after a throttle or a connection that never
# opened. Why, per operation: docs/design.md, "AWS calls: retries".
SAFE_TO_REPEAT = {
    "InitiateAuth": True,  # each call starts a new session; the triggers' effects are repeatable
    "SignUp": True,  # a repeat after a lost success answers UsernameExists, which start() expects
    "RespondToAuthChallenge": False,  # it uses up the Session: a repeat would be "used once"
    "GetUser": True,
    "RevokeToken": True,
    "AdminUpdateUserAttributes": True,  # sets email_verified to true: the same state again
    "AdminAddUserToGroup": True,
    "AdminRemoveUserFromGroup": True,
}


class CognitoError(Exception):
    """Cognito answered with an error; `code` is its exception name."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CognitoUnavailable(Exception):
    """Cognito could not be reached or did not answer in time."""


class CognitoNotConfigured(CognitoUnavailable):
    """A signed call found no AWS credentials; the message says what to set (never a key)."""


def _call(region, endpoint_url, operation, params, connect_timeout, read_timeout, signed=False):
    from chalicelib import aws_json

    for name, minimum in MIN_LENGTHS.items():
        if name in params and len(params[name]) < minimum:
            raise CognitoError("InvalidParameterException", "invalid parameter")
    try:
        return aws_json.call(
            endpoint_url or aws_json.endpoint("cognito-idp", region), TARGET + operation, params,
            connect_timeout, read_timeout, sign=(region, "cognito-idp") if signed else None,
            safe=SAFE_TO_REPEAT.get(operation, False),
        )
    except aws_json.AwsError as error:
        raise CognitoError(error.code, error.message) from None
    except aws_json.AwsNoCredentials as error:
        raise CognitoNotConfigured(f"Cognito {operation} was not sent: {error}") from None
    except aws_json.AwsUnavailable as error:
        raise CognitoUnavailable(str(error)) from None


def secret_hash(username, client_id, client_secret):
    import hashlib  # with hmac: OpenSSL's libcrypto, which the page and the cheap triggers never need
    import hmac

    digest = hmac.new(
        client_secret.encode(), (username + client_id).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class UserPoolClient:
    """The app client's calls, each signed with its SECRET_HASH."""

    def __init__(self, config):
        self.config = config
        self.client_secret = settings.secret("COGNITO_CLIENT_SECRET", config.region)

    def _hash(self, username):
        return secret_hash(username, self.config.client_id, self.client_secret)

    def _call(self, operation, **params):
        return _call(self.config.region, self.config.cognito_endpoint_url, operation, params,
                     CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)

    def start_custom_auth(self, email):
        return self._call(
            "InitiateAuth",
            AuthFlow="CUSTOM_AUTH",
            ClientId=self.config.client_id,
            AuthParameters={"USERNAME": email, "SECRET_HASH": self._hash(email)},
        )

    def sign_up(self, email):
        import secrets

        # Nobody ever types this password: CUSTOM_AUTH is the only way in.
        password = secrets.token_urlsafe(32) + "aA1!"
        return self._call(
            "SignUp",
            ClientId=self.config.client_id,
            SecretHash=self._hash(email),
            Username=email,
            Password=password,
            # No UserAttributes: the pool's username attribute is email, so Cognito sets
            # `email` from Username, and the app client may not write `email` itself.
        )

    def answer_challenge(self, username, session, answer):
        # `username` is ChallengeParameters.USERNAME (the internal username), as the AWS
        # SDKs send it; the hash is over the same name.
        return self._call(
            "RespondToAuthChallenge",
            ClientId=self.config.client_id,
            ChallengeName="CUSTOM_CHALLENGE",
            Session=session,
            ChallengeResponses={
                "USERNAME": username,
                "ANSWER": answer,
                "SECRET_HASH": self._hash(username),
            },
        )

    def refresh(self, username, refresh_token):
        # With email as the username attribute, the hash takes the internal
        # username (the sub), not the email.
        return self._call(
            "InitiateAuth",
            AuthFlow="REFRESH_TOKEN_AUTH",
            ClientId=self.config.client_id,
            AuthParameters={
                "REFRESH_TOKEN": refresh_token,
                "SECRET_HASH": self._hash(username),
            },
        )

    def revoke(self, refresh_token):
        return self._call(
            "RevokeToken",
            Token=refresh_token,
            ClientId=self.config.client_id,
            ClientSecret=self.client_secret,
        )

    def get_user(self, access_token):
        return self._call("GetUser", AccessToken=access_token)

    def add_to_group(self, username, group):
        """An admin call (the cleanup's marker): signed with the API function's role."""
        return _call(self.config.region, self.config.cognito_endpoint_url, "AdminAddUserToGroup",
                     {"UserPoolId": self.config.user_pool_id, "Username": username, "GroupName": group},
                     CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, signed=True)


def mark_email_verified(region, user_pool_id, username, endpoint_url=None):
    """Called by the Verify trigger once the user has proven the email."""
    _call(
        region,
        endpoint_url,
        "AdminUpdateUserAttributes",
        {
            "UserPoolId": user_pool_id,
            "Username": username,
            "UserAttributes": [{"Name": "email_verified", "Value": "true"}],
        },
        TRIGGER_CONNECT_TIMEOUT_SECONDS,
        TRIGGER_TIMEOUT_SECONDS,
        signed=True,
    )


def remove_from_group(region, user_pool_id, username, group, endpoint_url=None):
    """Called by the Verify trigger: a user who proved their email leaves the cleanup's group."""
    _call(region, endpoint_url, "AdminRemoveUserFromGroup",
          {"UserPoolId": user_pool_id, "Username": username, "GroupName": group},
          TRIGGER_CONNECT_TIMEOUT_SECONDS, TRIGGER_TIMEOUT_SECONDS, signed=True)
