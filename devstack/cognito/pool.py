"""One user pool with one app client: users, custom-auth sessions and tokens.

Concurrency rule: every read or write of the state happens under ``self._lock``, and the
lock is never held while a trigger runs (triggers call the Admin APIs back on this
emulator, from another request thread).
"""

import base64
import copy
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from . import params
from .accounts import AccountOperations
from .errors import INCORRECT, CognitoError, invalid_parameter, not_authorized, status_for
from .lambdas import TriggerRunner
from .tokens import TokenSigner

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SDK_VERSION = "aws-sdk-unknown-unknown"
SCOPE = "aws.cognito.signin.user.admin"
MAX_ROUNDS = 8  # a safety net; Cognito's own cap is undocumented
CUSTOM_CHALLENGE = "CUSTOM_CHALLENGE"
AUTH_FLOWS = ("USER_SRP_AUTH", "REFRESH_TOKEN_AUTH", "REFRESH_TOKEN", "CUSTOM_AUTH",
              "ADMIN_NO_SRP_AUTH", "USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_AUTH")
# What RevokeToken's model declares (reference); what it answers for an unknown or
# revoked token is unconfirmed: by default nothing (RFC 7009), or one of these by option.
REVOKE_ERRORS = ("UnauthorizedException", "InvalidParameterException", "UnsupportedOperationException",
                 "UnsupportedTokenTypeException", "TooManyRequestsException", "InternalErrorException")
# botocore's limits for RespondToAuthChallenge's Session.
MIN_SESSION_LENGTH, MAX_SESSION_LENGTH = 20, 4096
# Session ids that were used or expired are kept this long to answer with the precise
# message, then forgotten.
SESSION_RETENTION = 3600


@dataclass
class PoolConfig:
    pool_id: str
    client_id: str
    client_secret: str
    region: str
    app_name: str = "cognito-authsignal"
    prevent_user_existence_errors: bool = False
    # The app client's attribute permissions; None = never set (every standard attribute).
    write_attributes: Optional[List[str]] = None
    read_attributes: Optional[List[str]] = None
    groups: List[str] = field(default_factory=list)  # groups the pool starts with
    session_validity: float = 600.0  # AuthSessionValidity: the app's 10 minutes (SPEC 5)
    strict_username: bool = False
    session_length: int = MAX_SESSION_LENGTH
    initiate_auth_client_metadata: bool = False


@dataclass
class Settings:
    session_validity: float = 600.0
    access_token_validity: int = 3600
    refresh_token_validity: int = 30 * 24 * 3600
    prevent_user_existence_errors: bool = False
    # Whether RespondToAuthChallenge accepts the email alias as USERNAME is unconfirmed:
    # strict accepts only the internal username (ChallengeParameters.USERNAME).
    strict_username: bool = False
    revoke_unknown_token_error: Optional[str] = None
    # Real Sessions are opaque; botocore allows up to 4,096 characters, so the emulator
    # sends the longest by default: whatever carries one (the page's sealed session) must fit.
    session_length: int = MAX_SESSION_LENGTH
    # Whether InitiateAuth's ClientMetadata reaches the first round's Define and Create is
    # unconfirmed (the reference says no): off sends it nowhere, on sends it to both.
    initiate_auth_client_metadata: bool = False


@dataclass
class User:
    sub: str
    attributes: Dict[str, str]  # includes sub, email, email_verified
    status: str
    created: float
    modified: float
    enabled: bool = True

    @property
    def email(self) -> str:
        return self.attributes["email"]

    def trigger_attributes(self) -> Dict[str, str]:
        return dict(self.attributes, **{"cognito:user_status": self.status})

    def attribute_list(self, names: Optional[List[str]] = None) -> List[Dict[str, str]]:
        return [{"Name": k, "Value": v} for k, v in self.attributes.items()
                if names is None or k in names]


@dataclass
class Flow:
    """One sign-in attempt across its challenge rounds. ``sub`` is None for a user that
    does not exist (PreventUserExistenceErrors ENABLED lets such a flow run)."""
    sub: Optional[str]
    user_name: str
    client_id: str
    history: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class AuthSession:
    flow: Flow
    private_parameters: Dict[str, Any]
    challenge_metadata: Optional[str]
    expires_at: float
    used: bool = False


@dataclass
class RefreshRecord:
    sub: str
    client_id: str
    origin_jti: str
    auth_time: int
    event_id: str
    expires_at: float
    revoked: bool = False


def secret_hash(secret: str, username: str, client_id: str) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class UserPool(AccountOperations):
    EMAIL_PATTERN = EMAIL_RE

    def __init__(self, config: PoolConfig, triggers: TriggerRunner, signer: TokenSigner,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.triggers = triggers
        self.signer = signer
        self._clock = clock
        self._lock = threading.Lock()
        self.created = clock()
        self.reset_state()

    # ----------------------------------------------------------------- state admin

    def reset_state(self) -> None:
        with self._lock:
            self._users: Dict[str, User] = {}
            self._by_email: Dict[str, str] = {}
            self._sessions: Dict[str, AuthSession] = {}
            self._refresh_tokens: Dict[str, RefreshRecord] = {}
            self._revoked_origins: set = set()
            self.settings = Settings(
                session_validity=self.config.session_validity,
                prevent_user_existence_errors=self.config.prevent_user_existence_errors,
                strict_username=self.config.strict_username,
                session_length=self.config.session_length,
                initiate_auth_client_metadata=self.config.initiate_auth_client_metadata)
            self.reset_accounts_locked()

    # ----------------------------------------------------------------- common checks

    def _check_client(self, client_id: str) -> None:
        if client_id != self.config.client_id:
            raise CognitoError("ResourceNotFoundException",
                               "User pool client %s does not exist." % client_id)

    def _check_pool(self, p: Dict[str, Any]) -> None:
        pool_id = params.string(p, "UserPoolId")
        if pool_id != self.config.pool_id:
            raise CognitoError("ResourceNotFoundException",
                               "User pool %s does not exist." % pool_id)

    def _check_secret_hash(self, username: str, received: Optional[str], client=None) -> None:
        client_id = client.client_id if client else self.config.client_id
        client_secret = client.secret if client else self.config.client_secret
        if client_secret is None:
            return  # a client without a secret sends no hash
        if not received:
            raise _secret_hash_missing(client_id)
        expected = secret_hash(client_secret, username, client_id)
        if not isinstance(received, str) or not hmac.compare_digest(expected, received):
            raise not_authorized("Unable to verify secret hash for client %s" % client_id)

    def _find_locked(self, username: str) -> Optional[User]:
        """Email (case-insensitive) or internal username (sub)."""
        user = self._users.get(username)
        if user is None:
            sub = self._by_email.get(username.lower())
            user = self._users.get(sub) if sub else None
        return user

    def _admin_user_locked(self, p: Dict[str, Any]) -> User:
        user = self._find_locked(params.string(p, "Username"))
        if user is None:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        return user

    def _envelope(self, trigger_source: str, user_name: str, request: Dict[str, Any],
                  response: Dict[str, Any], client_id: Optional[str] = None) -> Dict[str, Any]:
        return {
            "version": "1",
            "triggerSource": trigger_source,
            "region": self.config.region,
            "userPoolId": self.config.pool_id,
            "userName": user_name,
            "callerContext": {"awsSdkVersion": SDK_VERSION, "clientId": client_id or self.config.client_id},
            "request": request,
            "response": response,
        }

    # ----------------------------------------------------------------- SignUp

    def sign_up(self, p: Dict[str, Any]) -> Dict[str, Any]:
        client_id = params.string(p, "ClientId")
        client = self.app_client(client_id)  # any client of the pool may sign users up
        username = params.string(p, "Username")
        self._check_secret_hash(username, params.string(p, "SecretHash", required=False), client)
        password = params.string(p, "Password", required=False)
        attributes = params.attribute_list(p, "UserAttributes")
        self.check_write(client, list(attributes))
        # Absent ones stay absent: real events carry `validationData: null` and no
        # `clientMetadata` key when the call sent none.
        validation_data = params.attribute_list(p, "ValidationData") if p.get("ValidationData") is not None else None
        client_metadata = params.string_map(p, "ClientMetadata") if p.get("ClientMetadata") is not None else None
        if not EMAIL_RE.match(username):
            raise invalid_parameter("Username should be an email.")
        if "sub" in attributes:
            raise invalid_parameter("Cannot modify the non-mutable attribute sub")
        # A client cannot vouch for its own email; only a trigger or an admin can.
        attributes.pop("email_verified", None)
        _check_password(password)

        with self._lock:
            if self._find_locked(username) is not None:
                raise _username_exists()
        sub = str(uuid.uuid4())
        user_attributes = dict(attributes, sub=sub, email=username, email_verified="false")

        confirmed = verified = False
        if self.triggers.configured("PreSignUp"):
            # The user does not exist yet: what the client sent, and no sub, status or
            # email_verified.
            event = self._envelope(
                "PreSignUp_SignUp", sub,
                request=_pre_sign_up_request(dict(attributes, email=username), validation_data, client_metadata),
                response=dict(PRE_SIGN_UP_RESPONSE), client_id=client_id)
            response = self.triggers.invoke("PreSignUp", event)["response"]
            confirmed = response.get("autoConfirmUser") is True
            verified = response.get("autoVerifyEmail") is True
        if verified:
            user_attributes["email_verified"] = "true"

        now = self._clock()
        with self._lock:
            # Checked again: a concurrent SignUp for the same email may have won the race
            # while the trigger ran.
            if self._find_locked(username) is not None:
                raise _username_exists()
            self._users[sub] = User(sub, user_attributes,
                                    "CONFIRMED" if confirmed else "UNCONFIRMED", now, now)
            self._by_email[username.lower()] = sub
        return {"UserConfirmed": confirmed, "UserSub": sub}

    # ----------------------------------------------------------------- InitiateAuth

    def initiate_auth(self, p: Dict[str, Any]) -> Dict[str, Any]:
        flow_name = params.string(p, "AuthFlow")
        client_id = params.string(p, "ClientId")
        self._check_client(client_id)
        auth = params.string_map(p, "AuthParameters")
        client_metadata = params.string_map(p, "ClientMetadata")
        if flow_name == "CUSTOM_AUTH":
            return self._start_custom_auth(client_id, auth, client_metadata)
        if flow_name in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
            return self._refresh(client_id, auth)
        if flow_name in AUTH_FLOWS:
            raise invalid_parameter("%s flow not enabled for this client" % flow_name)
        raise invalid_parameter(
            "1 validation error detected: Value '%s' at 'authFlow' failed to satisfy "
            "constraint: Member must satisfy enum value set: %s" % (flow_name, list(AUTH_FLOWS)))

    def _start_custom_auth(self, client_id: str, auth: Dict[str, str],
                           client_metadata: Dict[str, str]) -> Dict[str, Any]:
        username = auth.get("USERNAME")
        if not username:
            raise invalid_parameter("Missing required parameter USERNAME")
        self._check_secret_hash(username, auth.get("SECRET_HASH"))
        if not all(self.triggers.configured(t) for t in (
                "DefineAuthChallenge", "CreateAuthChallenge", "VerifyAuthChallengeResponse")):
            raise invalid_parameter("Custom auth lambda trigger is not configured for the user pool.")
        with self._lock:
            user = self._find_locked(username)
            if user is None:
                if not self.settings.prevent_user_existence_errors:
                    raise CognitoError("UserNotFoundException", "User does not exist.")
                flow = Flow(None, username, client_id)
            elif user.status == "UNCONFIRMED":
                raise CognitoError("UserNotConfirmedException", "User is not confirmed.")
            elif not user.enabled:
                raise not_authorized("User is disabled.")
            else:
                flow = Flow(user.sub, user.sub, client_id)
            forward = self.settings.initiate_auth_client_metadata
        return self._advance(flow, client_metadata=client_metadata if forward else None)

    def _flow_attributes(self, flow: Flow) -> Dict[str, str]:
        """The user's attributes as of now (a trigger may have just changed them)."""
        if flow.sub is None:
            return {}
        with self._lock:
            user = self._users.get(flow.sub)
            if user is None:
                raise not_authorized(INCORRECT)
            return user.trigger_attributes()

    def _flow_request(self, flow: Flow, **extra: Any) -> Dict[str, Any]:
        request: Dict[str, Any] = {"userAttributes": self._flow_attributes(flow)}
        request.update(extra)
        if self.settings.prevent_user_existence_errors:
            # The field exists only when PreventUserExistenceErrors is ENABLED.
            request["userNotFound"] = flow.sub is None
        return request

    def _advance(self, flow: Flow, client_metadata: Optional[Dict[str, str]]) -> Dict[str, Any]:
        """Run Define and act on its answer: fail, issue tokens, or Create the next round.
        `client_metadata` (None: the field is left out) reaches both Define and Create:
        RespondToAuthChallenge's always, InitiateAuth's only by option."""
        extra: Dict[str, Any] = {"session": copy.deepcopy(flow.history)}
        if client_metadata is not None:
            extra["clientMetadata"] = client_metadata
        event = self._envelope(
            "DefineAuthChallenge_Authentication", flow.user_name,
            request=self._flow_request(flow, **extra),
            response={"challengeName": None, "issueTokens": None, "failAuthentication": None})
        decision = self.triggers.invoke("DefineAuthChallenge", event)["response"]
        if decision.get("failAuthentication") is True:
            raise not_authorized(INCORRECT)
        if decision.get("issueTokens") is True:
            if flow.sub is None:
                raise not_authorized(INCORRECT)
            return {"ChallengeParameters": {}, "AuthenticationResult": self._sign_in(flow.sub)}
        if decision.get("challengeName") != CUSTOM_CHALLENGE:
            raise CognitoError("InvalidLambdaResponseException", "Unrecognizable lambda output")
        if len(flow.history) >= MAX_ROUNDS:
            raise not_authorized(INCORRECT)

        event = self._envelope(
            "CreateAuthChallenge_Authentication", flow.user_name,
            request=self._flow_request(flow, challengeName=CUSTOM_CHALLENGE, **extra),
            response={"publicChallengeParameters": None, "privateChallengeParameters": None,
                      "challengeMetadata": None})
        created = self.triggers.invoke("CreateAuthChallenge", event)["response"]
        public = created.get("publicChallengeParameters") or {}
        private = created.get("privateChallengeParameters") or {}
        metadata = created.get("challengeMetadata")
        if not _is_string_map(public) or not _is_string_map(private) or not (
                metadata is None or isinstance(metadata, str)):
            raise CognitoError("InvalidLambdaResponseException", "Unrecognizable lambda output")

        session_id = _new_session_id(self.settings.session_length)
        now = self._clock()
        with self._lock:
            self._prune_sessions_locked(now)
            self._sessions[session_id] = AuthSession(
                flow, private, metadata, now + self.settings.session_validity)
        return {"ChallengeName": CUSTOM_CHALLENGE, "Session": session_id,
                "ChallengeParameters": dict(public, USERNAME=flow.user_name)}

    def _prune_sessions_locked(self, now: float) -> None:
        stale = [sid for sid, s in self._sessions.items()
                 if s.expires_at + SESSION_RETENTION < now]
        for sid in stale:
            del self._sessions[sid]

    # ----------------------------------------------------------------- RespondToAuthChallenge

    def respond_to_auth_challenge(self, p: Dict[str, Any]) -> Dict[str, Any]:
        client_id = params.string(p, "ClientId")
        self._check_client(client_id)
        challenge = params.string(p, "ChallengeName")
        if challenge != CUSTOM_CHALLENGE:
            raise invalid_parameter("Unsupported challenge %s for this client" % challenge)
        responses = params.string_map(p, "ChallengeResponses")
        client_metadata = params.string_map(p, "ClientMetadata")
        session_id = params.string(p, "Session", required=False)
        username = responses.get("USERNAME")
        if not username:
            raise invalid_parameter("Missing required parameter USERNAME")
        self._check_secret_hash(username, responses.get("SECRET_HASH"))
        answer = responses.get("ANSWER")
        if answer is None:
            raise invalid_parameter("Missing required parameter ANSWER")
        if not session_id:
            raise invalid_parameter("Missing required parameter Session")

        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.flow.client_id != client_id:
                raise not_authorized("Invalid session for the user.")
            if session.used:
                raise not_authorized(
                    "Invalid session for the user, session can only be used once.")
            if self._clock() >= session.expires_at:
                raise not_authorized("Invalid session for the user, session is expired.")
            if not self._session_belongs_to_locked(session, username):
                raise not_authorized("Invalid session for the user.")
            # Consumed before the triggers run, so two racing answers can't both count.
            session.used = True
        flow = Flow(session.flow.sub, session.flow.user_name, session.flow.client_id,
                    copy.deepcopy(session.flow.history))

        event = self._envelope(
            "VerifyAuthChallengeResponse_Authentication", flow.user_name,
            request=self._flow_request(
                flow, privateChallengeParameters=dict(session.private_parameters),
                challengeAnswer=answer, clientMetadata=client_metadata),
            response={"answerCorrect": None})
        verdict = self.triggers.invoke("VerifyAuthChallengeResponse", event)["response"]
        flow.history.append({
            "challengeName": CUSTOM_CHALLENGE,
            "challengeResult": verdict.get("answerCorrect") is True,
            "challengeMetadata": session.challenge_metadata,
        })
        return self._advance(flow, client_metadata)

    def _session_belongs_to_locked(self, session: AuthSession, username: str) -> bool:
        if session.flow.sub is None:
            return username.lower() == session.flow.user_name.lower()
        user = self._users.get(session.flow.sub)
        if user is None:
            return False
        if self.settings.strict_username:
            return username == user.sub
        return username == user.sub or username.lower() == user.email.lower()

    # ----------------------------------------------------------------- tokens

    def _sign_in(self, sub: str) -> Dict[str, Any]:
        """A fresh sign-in: new refresh token, new origin (the ID of this token family)."""
        now = int(self._clock())
        origin_jti, event_id = str(uuid.uuid4()), str(uuid.uuid4())
        refresh_token = self.signer.new_refresh_token()
        with self._lock:
            self._refresh_tokens[refresh_token] = RefreshRecord(
                sub, self.config.client_id, origin_jti, now, event_id,
                now + self.settings.refresh_token_validity)
        result = self._issue(sub, origin_jti, now, event_id)
        result["RefreshToken"] = refresh_token
        return result

    def _issue(self, sub: str, origin_jti: str, auth_time: int, event_id: str) -> Dict[str, Any]:
        now = int(self._clock())
        with self._lock:
            user = self._users.get(sub)
            if user is None:
                raise not_authorized(INCORRECT)
            email = user.email
            email_verified = user.attributes.get("email_verified") == "true"
            validity = self.settings.access_token_validity
        common = {
            "sub": sub,
            "iss": self.signer.issuer,
            "auth_time": auth_time,
            "iat": now,
            "exp": now + validity,
            "origin_jti": origin_jti,
            "event_id": event_id,
        }
        id_claims = dict(common, aud=self.config.client_id, token_use="id",
                         jti=str(uuid.uuid4()), email=email, email_verified=email_verified,
                         **{"cognito:username": sub})
        access_claims = dict(common, client_id=self.config.client_id, token_use="access",
                             scope=SCOPE, username=sub, jti=str(uuid.uuid4()))
        return {
            "AccessToken": self.signer.sign(access_claims),
            "ExpiresIn": validity,
            "TokenType": "Bearer",
            "IdToken": self.signer.sign(id_claims),
        }

    def _refresh(self, client_id: str, auth: Dict[str, str]) -> Dict[str, Any]:
        token = auth.get("REFRESH_TOKEN")
        if not token:
            raise invalid_parameter("Missing required parameter REFRESH_TOKEN")
        received_hash = auth.get("SECRET_HASH")
        if not received_hash:
            raise _secret_hash_missing(client_id)
        with self._lock:
            record = self._refresh_tokens.get(token)
            if record is None or record.client_id != client_id:
                raise not_authorized("Invalid Refresh Token")
            record = copy.copy(record)
            revoked = record.revoked or record.origin_jti in self._revoked_origins
        # With email as the username attribute the hash is over the internal username.
        expected = secret_hash(self.config.client_secret, record.sub, client_id)
        if not hmac.compare_digest(expected, received_hash):
            raise not_authorized("SecretHash does not match for the client: %s" % client_id)
        if revoked:
            raise not_authorized("Refresh Token has been revoked")
        if self._clock() >= record.expires_at:
            raise not_authorized("Refresh Token has expired")
        result = self._issue(record.sub, record.origin_jti, record.auth_time, record.event_id)
        return {"ChallengeParameters": {}, "AuthenticationResult": result}

    def _check_access_token(self, token: str) -> Dict[str, Any]:
        claims = self.signer.decode_access_token(token)
        if self._clock() >= claims["exp"]:
            raise not_authorized("Access Token has expired")
        with self._lock:
            if claims.get("origin_jti") in self._revoked_origins:
                raise not_authorized("Access Token has been revoked")
        return claims

    # ----------------------------------------------------------------- token holders' APIs

    def get_user(self, p: Dict[str, Any]) -> Dict[str, Any]:
        claims = self._check_access_token(params.string(p, "AccessToken"))
        with self._lock:
            user = self._users.get(claims["sub"])
            if user is None:
                raise CognitoError("UserNotFoundException", "User does not exist.")
            attributes = user.attribute_list()
        client = self.app_client(claims["client_id"])
        return {"Username": user.sub, "UserAttributes": client.readable(attributes)}

    def global_sign_out(self, p: Dict[str, Any]) -> Dict[str, Any]:
        claims = self._check_access_token(params.string(p, "AccessToken"))
        with self._lock:
            self._revoke_user_locked(claims["sub"])
            self._revoked_origins.add(claims["origin_jti"])
        return {}

    def revoke_token(self, p: Dict[str, Any]) -> Dict[str, Any]:
        token = params.string(p, "Token")
        client_id = params.string(p, "ClientId")
        self._check_client(client_id)
        client_secret = params.string(p, "ClientSecret", required=False)
        # Only the errors RevokeToken's model declares (never NotAuthorizedException).
        if not client_secret:
            raise CognitoError(
                "UnauthorizedException",
                "Client %s is configured with secret but ClientSecret was not received"
                % client_id)
        if not hmac.compare_digest(client_secret.encode(), self.config.client_secret.encode()):
            raise CognitoError("UnauthorizedException",
                               "Unable to verify client secret for client %s" % client_id)
        if self.signer.looks_like_jwt(token):
            raise CognitoError("UnsupportedTokenTypeException",
                               "Only refresh tokens can be revoked.")
        with self._lock:
            record = self._refresh_tokens.get(token)
            known = record is not None and record.client_id == client_id and not record.revoked
            if known:
                record.revoked = True
                self._revoked_origins.add(record.origin_jti)
            error = self.settings.revoke_unknown_token_error
        if not known and error:
            raise CognitoError(error, "The refresh token is not valid or was already revoked.",
                               status_for(error))
        # RFC 7009 (the default): revoking an unknown token is not an error.
        return {}

    def _revoke_user_locked(self, sub: str) -> None:
        for record in self._refresh_tokens.values():
            if record.sub == sub:
                record.revoked = True
                self._revoked_origins.add(record.origin_jti)

    # ----------------------------------------------------------------- admin APIs

    def admin_get_user(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        with self._lock:
            user = self._admin_user_locked(p)
            return {
                "Username": user.sub,
                "UserAttributes": user.attribute_list(),
                "UserCreateDate": user.created,
                "UserLastModifiedDate": user.modified,
                "Enabled": user.enabled,
                "UserStatus": user.status,
            }

    def admin_update_user_attributes(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        updates = params.attribute_list(p, "UserAttributes")
        params.string_map(p, "ClientMetadata")
        if "UserAttributes" not in p:
            raise invalid_parameter("1 validation error detected: Value null at "
                                    "'userAttributes' failed to satisfy constraint: "
                                    "Member must not be null")
        if "sub" in updates:
            raise invalid_parameter("Cannot modify the non-mutable attribute sub")
        if any(name.startswith("cognito:") for name in updates):
            raise invalid_parameter("Attributes prefixed cognito: are reserved.")
        verified = updates.get("email_verified")
        if verified is not None and verified not in ("true", "false"):
            raise invalid_parameter("email_verified must be \"true\" or \"false\".")
        new_email = updates.get("email")
        if new_email is not None and not EMAIL_RE.match(new_email):
            raise invalid_parameter("Invalid email address format.")
        with self._lock:
            user = self._admin_user_locked(p)
            if new_email is not None and new_email.lower() != user.email.lower():
                if new_email.lower() in self._by_email:
                    raise CognitoError("AliasExistsException",
                                       "An account with the given email already exists.")
                del self._by_email[user.email.lower()]
                self._by_email[new_email.lower()] = user.sub
                # A new address is unverified unless the same call says otherwise.
                updates.setdefault("email_verified", "false")
            user.attributes.update(updates)
            user.modified = self._clock()
        return {}

    def admin_delete_user(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        with self._lock:
            self._delete_user_locked(self._admin_user_locked(p))
        return {}

    def list_users(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        limit = params.integer(p, "Limit", 0, 60, 60) or 60
        names = params.string_list(p, "AttributesToGet")
        token = params.string(p, "PaginationToken", required=False)
        matches = _parse_filter(params.string(p, "Filter", required=False))
        offset = 0
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
            except (ValueError, IndexError, UnicodeDecodeError):
                raise invalid_parameter("Invalid pagination token.")
        with self._lock:
            users = [u for u in self._users.values() if matches(u)]
            page = users[offset:offset + limit]
            result: Dict[str, Any] = {"Users": [{
                "Username": u.sub,
                "Attributes": u.attribute_list(names),
                "UserCreateDate": u.created,
                "UserLastModifiedDate": u.modified,
                "Enabled": u.enabled,
                "UserStatus": u.status,
            } for u in page]}
            if offset + limit < len(users):
                result["PaginationToken"] = base64.urlsafe_b64encode(
                    ("offset:%d" % (offset + limit)).encode()).decode()
            return result

    def describe_user_pool(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        lambda_config = {
            trigger: self.triggers.function_arn(trigger)
            for trigger in ("PreSignUp", "DefineAuthChallenge", "CreateAuthChallenge",
                            "VerifyAuthChallengeResponse")
            if self.triggers.configured(trigger)
        }
        with self._lock:
            count = len(self._users)
        return {"UserPool": {
            "Id": self.config.pool_id,
            "Name": "%s-local" % self.config.app_name,
            "Arn": "arn:aws:cognito-idp:%s:000000000000:userpool/%s" % (
                self.config.region, self.config.pool_id),
            "LambdaConfig": lambda_config,
            "UsernameAttributes": ["email"],
            "UsernameConfiguration": {"CaseSensitive": False},
            "AutoVerifiedAttributes": list(self.require_verification_before_update),
            "UserAttributeUpdateSettings": {
                "AttributesRequireVerificationBeforeUpdate": list(self.require_verification_before_update)},
            "MfaConfiguration": "OFF",
            "Policies": {"PasswordPolicy": {
                "MinimumLength": 8, "RequireUppercase": True, "RequireLowercase": True,
                "RequireNumbers": True, "RequireSymbols": True}},
            "EstimatedNumberOfUsers": count,
            "CreationDate": self.created,
            "LastModifiedDate": self.created,
        }}

    def describe_user_pool_client_base(self, client_id: str) -> Dict[str, Any]:
        """The settings every client of this emulator shares (accounts.py adds its own)."""
        return {
            "UserPoolId": self.config.pool_id,
            "ClientName": "%s-local" % self.config.app_name,
            "ClientId": client_id,
            "ClientSecret": self.config.client_secret,
            "ExplicitAuthFlows": ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "PreventUserExistenceErrors":
                "ENABLED" if self.settings.prevent_user_existence_errors else "LEGACY",
            "AuthSessionValidity": max(3, min(15, int(self.settings.session_validity // 60))),
            "AccessTokenValidity": self.settings.access_token_validity,
            "IdTokenValidity": self.settings.access_token_validity,
            "RefreshTokenValidity": self.settings.refresh_token_validity,
            "TokenValidityUnits": {"AccessToken": "seconds", "IdToken": "seconds",
                                   "RefreshToken": "seconds"},
            "EnableTokenRevocation": True,
            "CreationDate": self.created,
            "LastModifiedDate": self.created,
        }

    def add_user(self, email: str, status: str, verified: bool = False,
                 trigger_source: Optional[str] = None, created: Optional[float] = None) -> User:
        """A user made otherwise than by SignUp (an admin, a federated sign-in, the dev seed)."""
        with self._lock:
            if self._find_locked(email) is not None:
                raise _username_exists()
        sub = str(uuid.uuid4())
        attributes = {"sub": sub, "email": email, "email_verified": "true" if verified else "false"}
        if trigger_source and self.triggers.configured("PreSignUp"):
            given = {"email": email, **({"email_verified": "true"} if verified else {})}
            self.triggers.invoke("PreSignUp", self._envelope(
                trigger_source, sub, request=_pre_sign_up_request(given, None, None),
                response=dict(PRE_SIGN_UP_RESPONSE)))
        now = self._clock()
        user = User(sub, attributes, status, created if created is not None else now, now)
        with self._lock:
            if self._find_locked(email) is not None:
                raise _username_exists()
            self._users[sub] = user
            self._by_email[email.lower()] = sub
        return user

    def user_count(self) -> int:
        with self._lock:
            return len(self._users)


# --------------------------------------------------------------------- helpers

def _username_exists() -> CognitoError:
    return CognitoError("UsernameExistsException",
                        "An account with the given email already exists.")


def _secret_hash_missing(client_id: str) -> CognitoError:
    return not_authorized(
        "Client %s is configured with secret but SECRET_HASH was not received" % client_id)


def _new_session_id(length: int) -> str:
    # Opaque and unguessable, exactly `length` characters of base64url.
    return base64.urlsafe_b64encode(secrets.token_bytes(length * 3 // 4 + 3)).decode()[:length]


# PreSignUp's response arrives filled with false, not null (published event dumps).
PRE_SIGN_UP_RESPONSE = {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}


def _pre_sign_up_request(attributes: Dict[str, str], validation_data: Optional[Dict[str, str]],
                         client_metadata: Optional[Dict[str, str]]) -> Dict[str, Any]:
    request: Dict[str, Any] = {"userAttributes": attributes, "validationData": validation_data}
    if client_metadata is not None:
        request["clientMetadata"] = client_metadata
    return request


def _is_string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _check_password(password: Optional[str]) -> None:
    """Cognito's default password policy (the pool uses it): a client that sends a weak
    generated password fails here exactly as it would on AWS."""
    prefix = "Password did not conform with policy: "
    if password is None or len(password) < 8:
        raise CognitoError("InvalidPasswordException", prefix + "Password not long enough")
    checks = [
        (str.isupper, "Password must have uppercase characters"),
        (str.islower, "Password must have lowercase characters"),
        (str.isdigit, "Password must have numeric characters"),
        (lambda c: not c.isalnum() and not c.isspace(), "Password must have symbol characters"),
    ]
    for check, message in checks:
        if not any(check(c) for c in password):
            raise CognitoError("InvalidPasswordException", prefix + message)


_FILTER_RE = re.compile(r'^\s*([\w:]+)\s*(\^?=)\s*"(.*)"\s*$')
_FILTER_ATTRIBUTES = {"username", "email", "sub", "cognito:user_status", "status"}


def _parse_filter(expression: Optional[str]) -> Callable[[User], bool]:
    if not expression:
        return lambda user: True
    match = _FILTER_RE.match(expression)
    if not match or match.group(1) not in _FILTER_ATTRIBUTES:
        raise invalid_parameter("Invalid search attribute or filter: %s" % expression)
    name, operator, wanted = match.groups()

    def value_of(user: User) -> str:
        if name == "username":
            return user.sub
        if name in ("cognito:user_status", "status"):
            return user.status
        return user.attributes.get(name, "")

    def matches(user: User) -> bool:
        value, target = value_of(user), wanted
        if name == "email":
            value, target = value.lower(), target.lower()
        return value.startswith(target) if operator == "^=" else value == target
    return matches
