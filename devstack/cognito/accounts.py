"""What a signed-in user can do with their own access token, app clients' attribute
permissions, groups, and admin-created or federated users (a mixin of ``UserPool``).

Facts from reference/cognito-custom-auth.md ("What a signed-in user can do with their own
access token"): UpdateUserAttributes writes what the client's ``WriteAttributes`` allow (a
client without the setting writes every standard attribute, ``email`` and, unconfirmed
either way, ``email_verified`` included); a new email is unverified at once, unless the
pool's ``UserAttributeUpdateSettings.AttributesRequireVerificationBeforeUpdate`` holds
``email``, when the old address stays until the user confirms the code Cognito sends.
Codes are not mailed here: ``GET /_dev/attribute-codes?username=`` shows them.
"""

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import params
from .errors import CognitoError, invalid_parameter, not_authorized

STANDARD_ATTRIBUTES = frozenset({
    "address", "birthdate", "email", "email_verified", "family_name", "gender", "given_name",
    "locale", "middle_name", "name", "nickname", "phone_number", "phone_number_verified",
    "picture", "preferred_username", "profile", "updated_at", "website", "zoneinfo",
})
UNAUTHORIZED_ATTRIBUTE = "A client attempted to write unauthorized attribute"
MAX_GROUP_NAME = 128


@dataclass
class AppClient:
    client_id: str
    name: str
    secret: Optional[str]
    # None: the setting was never given (every standard attribute); a list: exactly those.
    write_attributes: Optional[List[str]] = None
    read_attributes: Optional[List[str]] = None

    def may_write(self, name: str) -> bool:
        if self.write_attributes is None:
            return name in STANDARD_ATTRIBUTES or name.startswith("custom:")
        return name in self.write_attributes

    def readable(self, attributes: List[Dict[str, str]]) -> List[Dict[str, str]]:
        if self.read_attributes is None:
            return attributes
        return [a for a in attributes if a["Name"] == "sub" or a["Name"] in self.read_attributes]


@dataclass
class PendingCode:
    code: str
    value: Optional[str]  # the new email waiting for confirmation, or None (verify the current one)


@dataclass
class Group:
    name: str
    description: str = ""
    members: set = field(default_factory=set)
    created: float = 0.0


def _attribute_names(p: Dict[str, Any], name: str) -> Optional[List[str]]:
    value = params.string_list(p, name)
    if value is None:
        return None
    unknown = [a for a in value if a not in STANDARD_ATTRIBUTES and not a.startswith("custom:")]
    if unknown:
        raise invalid_parameter("Invalid %s specified while creating a client: %s"
                                % ("write attributes" if name == "WriteAttributes" else "read attributes",
                                   ", ".join(unknown)))
    return list(value)


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return "%s***@%s" % (local[:1], domain[:1] + "***" if domain else "")


class AccountOperations:
    """Mixed into ``UserPool``; uses its ``_lock``, ``_users``, ``_by_email`` and helpers."""

    def reset_accounts_locked(self) -> None:
        config = self.config
        self._clients: Dict[str, AppClient] = {config.client_id: AppClient(
            config.client_id, "%s-local" % config.app_name, config.client_secret,
            config.write_attributes, config.read_attributes)}
        self._groups: Dict[str, Group] = {name: Group(name, created=self._clock()) for name in config.groups}
        self._codes: Dict[str, Dict[str, PendingCode]] = {}  # sub -> attribute -> code
        self.require_verification_before_update: List[str] = []

    # ----------------------------------------------------------------- clients

    def app_client(self, client_id: str) -> AppClient:
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            raise CognitoError("ResourceNotFoundException",
                               "User pool client %s does not exist." % client_id)
        return client

    def check_write(self, client: AppClient, names: List[str]) -> None:
        for name in names:
            if name not in STANDARD_ATTRIBUTES and not name.startswith("custom:"):
                raise invalid_parameter("Attribute does not exist in the schema.")
            if not client.may_write(name):
                raise not_authorized(UNAUTHORIZED_ATTRIBUTE)

    def _describe_client(self, client: AppClient) -> Dict[str, Any]:
        description = self.describe_user_pool_client_base(client.client_id)
        description.update({"ClientId": client.client_id, "ClientName": client.name})
        if client.secret is not None:
            description["ClientSecret"] = client.secret
        else:
            description.pop("ClientSecret", None)
        # Cognito returns these only when they were set explicitly.
        for key, value in (("WriteAttributes", client.write_attributes),
                           ("ReadAttributes", client.read_attributes)):
            if value is not None:
                description[key] = list(value)
            else:
                description.pop(key, None)
        return description

    def describe_user_pool_client(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        client = self.app_client(params.string(p, "ClientId"))
        return {"UserPoolClient": self._describe_client(client)}

    def create_user_pool_client(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        name = params.string(p, "ClientName")
        generate = p.get("GenerateSecret") is True
        client = AppClient(uuid.uuid4().hex[:26], name,
                           secrets.token_urlsafe(38) if generate else None,
                           _attribute_names(p, "WriteAttributes"), _attribute_names(p, "ReadAttributes"))
        with self._lock:
            self._clients[client.client_id] = client
        return {"UserPoolClient": self._describe_client(client)}

    def update_user_pool_client(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """As on AWS, every setting not sent returns to its default."""
        self._check_pool(p)
        client = self.app_client(params.string(p, "ClientId"))
        write, read = _attribute_names(p, "WriteAttributes"), _attribute_names(p, "ReadAttributes")
        with self._lock:
            client.name = params.string(p, "ClientName", required=False) or client.name
            client.write_attributes, client.read_attributes = write, read
        return {"UserPoolClient": self._describe_client(client)}

    # ----------------------------------------------------------------- the user's own token

    def _token_user_locked(self, claims: Dict[str, Any]):
        user = self._users.get(claims["sub"])
        if user is None:
            raise CognitoError("UserNotFoundException", "User does not exist.")
        return user

    def update_user_attributes(self, p: Dict[str, Any]) -> Dict[str, Any]:
        claims = self._check_access_token(params.string(p, "AccessToken"))
        if "UserAttributes" not in p:
            raise invalid_parameter("1 validation error detected: Value null at 'userAttributes' "
                                    "failed to satisfy constraint: Member must not be null")
        updates = params.attribute_list(p, "UserAttributes")
        params.string_map(p, "ClientMetadata")
        if "sub" in updates:
            raise invalid_parameter("Cannot modify the non-mutable attribute sub")
        self.check_write(self.app_client(claims["client_id"]), list(updates))
        for name in ("email_verified", "phone_number_verified"):
            if name in updates and updates[name] not in ("true", "false"):
                raise invalid_parameter('%s must be "true" or "false".' % name)
        new_email = updates.pop("email", None)
        if new_email is not None and not self.EMAIL_PATTERN.match(new_email):
            raise invalid_parameter("Invalid email address format.")
        deliveries = []
        with self._lock:
            user = self._token_user_locked(claims)
            if new_email is not None and new_email.lower() != user.email.lower():
                if new_email.lower() in self._by_email:
                    raise CognitoError("AliasExistsException",
                                       "An account with the given email already exists.")
                code = "%06d" % secrets.randbelow(10 ** 6)
                if "email" in self.require_verification_before_update:
                    # The old address stays (and stays the sign-in name) until the code is confirmed.
                    self._codes.setdefault(user.sub, {})["email"] = PendingCode(code, new_email)
                    deliveries.append({"Destination": _masked(new_email), "DeliveryMedium": "EMAIL",
                                       "AttributeName": "email"})
                else:
                    self._move_email_locked(user, new_email)
                    updates.setdefault("email_verified", "false")
            user.attributes.update(updates)
            user.modified = self._clock()
        return {"CodeDeliveryDetailsList": deliveries}

    def _move_email_locked(self, user, new_email: str) -> None:
        del self._by_email[user.email.lower()]
        self._by_email[new_email.lower()] = user.sub
        user.attributes["email"] = new_email

    def get_user_attribute_verification_code(self, p: Dict[str, Any]) -> Dict[str, Any]:
        claims = self._check_access_token(params.string(p, "AccessToken"))
        attribute = params.string(p, "AttributeName")
        params.string_map(p, "ClientMetadata")
        if attribute != "email":
            raise invalid_parameter("This emulator verifies email only.")
        with self._lock:
            user = self._token_user_locked(claims)
            pending = self._codes.setdefault(user.sub, {}).get("email")
            value = pending.value if pending else None
            self._codes[user.sub]["email"] = PendingCode("%06d" % secrets.randbelow(10 ** 6), value)
            destination = value or user.email
        return {"CodeDeliveryDetails": {"Destination": _masked(destination), "DeliveryMedium": "EMAIL",
                                        "AttributeName": "email"}}

    def verify_user_attribute(self, p: Dict[str, Any]) -> Dict[str, Any]:
        claims = self._check_access_token(params.string(p, "AccessToken"))
        attribute = params.string(p, "AttributeName")
        code = params.string(p, "Code")
        with self._lock:
            user = self._token_user_locked(claims)
            pending = self._codes.get(user.sub, {}).get(attribute)
            if pending is None or not secrets.compare_digest(pending.code, code):
                raise CognitoError("CodeMismatchException",
                                   "Invalid verification code provided, please try again.")
            del self._codes[user.sub][attribute]
            if pending.value is not None:
                if pending.value.lower() in self._by_email and self._by_email[pending.value.lower()] != user.sub:
                    raise CognitoError("AliasExistsException",
                                       "An account with the given email already exists.")
                self._move_email_locked(user, pending.value)
            user.attributes["email_verified"] = "true"
            user.modified = self._clock()
        return {}

    def delete_user(self, p: Dict[str, Any]) -> Dict[str, Any]:
        claims = self._check_access_token(params.string(p, "AccessToken"))
        with self._lock:
            user = self._token_user_locked(claims)
            self._delete_user_locked(user)
        return {}

    def _delete_user_locked(self, user) -> None:
        self._revoke_user_locked(user.sub)
        del self._users[user.sub]
        self._by_email.pop(user.email.lower(), None)
        self._codes.pop(user.sub, None)
        for group in self._groups.values():
            group.members.discard(user.sub)

    def attribute_codes(self, username: str) -> Dict[str, Any]:
        """Dev endpoint: the codes Cognito would have emailed."""
        with self._lock:
            user = self._find_locked(username)
            if user is None:
                return {}
            return {name: {"code": c.code, "value": c.value}
                    for name, c in self._codes.get(user.sub, {}).items()}

    # ----------------------------------------------------------------- groups

    def _group_locked(self, p: Dict[str, Any]) -> Group:
        name = params.string(p, "GroupName")
        group = self._groups.get(name)
        if group is None:
            raise CognitoError("ResourceNotFoundException", "Group not found.")
        return group

    def create_group(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        name = params.string(p, "GroupName")
        if len(name) > MAX_GROUP_NAME:
            raise invalid_parameter("GroupName is too long.")
        with self._lock:
            if name in self._groups:
                raise CognitoError("GroupExistsException", "A group with the name %s already exists." % name)
            group = self._groups[name] = Group(name, params.string(p, "Description", required=False) or "",
                                               created=self._clock())
        return {"Group": self._group_description(group)}

    def _group_description(self, group: Group) -> Dict[str, Any]:
        return {"GroupName": group.name, "UserPoolId": self.config.pool_id, "Description": group.description,
                "CreationDate": group.created, "LastModifiedDate": group.created}

    def get_group(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        with self._lock:
            return {"Group": self._group_description(self._group_locked(p))}

    def admin_add_user_to_group(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        with self._lock:
            group = self._group_locked(p)
            group.members.add(self._admin_user_locked(p).sub)
        return {}

    def admin_remove_user_from_group(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        with self._lock:
            group = self._group_locked(p)
            group.members.discard(self._admin_user_locked(p).sub)
        return {}

    def list_users_in_group(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        limit = params.integer(p, "Limit", 0, 60, 60) or 60
        token = params.string(p, "NextToken", required=False)
        try:
            offset = int(token) if token else 0
        except ValueError:
            raise invalid_parameter("Invalid pagination token.")
        with self._lock:
            group = self._group_locked(p)
            users = sorted((self._users[s] for s in group.members if s in self._users), key=lambda u: u.created)
            page = users[offset:offset + limit]
            result: Dict[str, Any] = {"Users": [self._user_type(u) for u in page]}
        if offset + limit < len(users):
            result["NextToken"] = str(offset + limit)
        return result

    def admin_list_groups_for_user(self, p: Dict[str, Any]) -> Dict[str, Any]:
        self._check_pool(p)
        with self._lock:
            sub = self._admin_user_locked(p).sub
            return {"Groups": [self._group_description(g) for g in self._groups.values() if sub in g.members]}

    # ----------------------------------------------------------------- users made another way

    def admin_create_user(self, p: Dict[str, Any]) -> Dict[str, Any]:
        """An administrator's user: FORCE_CHANGE_PASSWORD, PreSignUp_AdminCreateUser runs."""
        self._check_pool(p)
        username = params.string(p, "Username")
        attributes = params.attribute_list(p, "UserAttributes")
        if not self.EMAIL_PATTERN.match(username):
            raise invalid_parameter("Username should be an email.")
        user = self.add_user(username, "FORCE_CHANGE_PASSWORD", attributes.get("email_verified") == "true",
                             trigger_source="PreSignUp_AdminCreateUser")
        return {"User": self._user_type(user)}

    def _user_type(self, user) -> Dict[str, Any]:
        return {"Username": user.sub, "Attributes": user.attribute_list(), "UserCreateDate": user.created,
                "UserLastModifiedDate": user.modified, "Enabled": user.enabled, "UserStatus": user.status}
