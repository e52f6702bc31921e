"""The Cognito user-pool API, through boto3's `cognito-idp` client.

Every call from the backend carries SECRET_HASH: the app client has a secret and
the browser never talks to Cognito. boto3 is imported on first use.
"""
import base64

from chalicelib import settings

# Triggers run inside Cognito's calls, so a sign-in call may take a few seconds;
# past that, the user gets a clear 503 instead of a hanging page.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 8
# Inside a trigger, the admin call shares Cognito's 5 s budget with Authsignal.
TRIGGER_TIMEOUT_SECONDS = 1.5


class CognitoError(Exception):
    """Cognito answered with an error; `code` is its exception name."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CognitoUnavailable(Exception):
    """Cognito could not be reached or did not answer in time."""


_clients = {}


def _client(region, endpoint_url, timeout):
    key = (region, endpoint_url, timeout)
    if key not in _clients:
        import boto3
        from botocore.config import Config

        _clients[key] = boto3.client(
            "cognito-idp",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout),
                read_timeout=timeout,
                # A retried InitiateAuth would send the user a second challenge.
                retries={"total_max_attempts": 1},
            ),
        )
    return _clients[key]


def _call(client, operation, **params):
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    try:
        return getattr(client, operation)(**params)
    except ParamValidationError:
        # botocore checks lengths and patterns before sending; Cognito would refuse the same.
        raise CognitoError("InvalidParameterException", "invalid parameter") from None
    except ClientError as error:
        info = error.response.get("Error", {})
        raise CognitoError(info.get("Code", "Unknown"), info.get("Message", "")) from None
    except BotoCoreError as error:
        raise CognitoUnavailable(type(error).__name__) from None


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
        self.client = _client(config.region, config.cognito_endpoint_url, READ_TIMEOUT_SECONDS)

    def _hash(self, username):
        return secret_hash(username, self.config.client_id, self.client_secret)

    def start_custom_auth(self, email):
        return _call(
            self.client,
            "initiate_auth",
            AuthFlow="CUSTOM_AUTH",
            ClientId=self.config.client_id,
            AuthParameters={"USERNAME": email, "SECRET_HASH": self._hash(email)},
        )

    def sign_up(self, email):
        import secrets

        # Nobody ever types this password: CUSTOM_AUTH is the only way in.
        password = secrets.token_urlsafe(32) + "aA1!"
        return _call(
            self.client,
            "sign_up",
            ClientId=self.config.client_id,
            SecretHash=self._hash(email),
            Username=email,
            Password=password,
            # No UserAttributes: the pool's username attribute is email, so Cognito sets
            # `email` from Username, and the app client may not write `email` itself.
        )

    def answer_challenge(self, email, session, answer):
        return _call(
            self.client,
            "respond_to_auth_challenge",
            ClientId=self.config.client_id,
            ChallengeName="CUSTOM_CHALLENGE",
            Session=session,
            ChallengeResponses={
                "USERNAME": email,
                "ANSWER": answer,
                "SECRET_HASH": self._hash(email),
            },
        )

    def refresh(self, username, refresh_token):
        # With email as the username attribute, the hash takes the internal
        # username (the sub), not the email.
        return _call(
            self.client,
            "initiate_auth",
            AuthFlow="REFRESH_TOKEN_AUTH",
            ClientId=self.config.client_id,
            AuthParameters={
                "REFRESH_TOKEN": refresh_token,
                "SECRET_HASH": self._hash(username),
            },
        )

    def revoke(self, refresh_token):
        return _call(
            self.client,
            "revoke_token",
            Token=refresh_token,
            ClientId=self.config.client_id,
            ClientSecret=self.client_secret,
        )

    def get_user(self, access_token):
        return _call(self.client, "get_user", AccessToken=access_token)


def mark_email_verified(region, user_pool_id, username, endpoint_url=None):
    """Called by the Verify trigger once the user has proven the email."""
    client = _client(region, endpoint_url, TRIGGER_TIMEOUT_SECONDS)
    _call(
        client,
        "admin_update_user_attributes",
        UserPoolId=user_pool_id,
        Username=username,
        UserAttributes=[{"Name": "email_verified", "Value": "true"}],
    )
