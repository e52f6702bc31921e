"""Passkeys: WebAuthn registration and authentication, verified by py_webauthn.

Holds each user's credentials and the open ceremonies (one challenge each, used once,
for at most CEREMONY_TTL_SECONDS). The HTTP layers (client API, pre-built UI) call
`registration_options` / `register` and `authentication_options` / `authenticate`;
what a success proves is recorded by the caller on the action.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidCBORData,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

PASSKEY = "PASSKEY"
CEREMONY_TTL_SECONDS = 300
RP_NAME = "Authsignal dev tenant"


class PasskeyError(Exception):
    """errorCode and a description, as Authsignal's client API answers them."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


@dataclass
class Credential:
    credential_id: str  # base64url
    user_id: str
    public_key: bytes
    sign_count: int
    username: str
    display_name: str
    authenticator_id: str
    created_at: float
    transports: list


@dataclass
class Ceremony:
    kind: str  # registration | authentication
    challenge: bytes
    expires_at: float
    user_id: str | None  # None: a discoverable sign-in (the credential names the user)
    action: str | None = None  # the action a discoverable sign-in was started for
    username: str = ""
    display_name: str = ""


def _bad_credential(detail: str) -> PasskeyError:
    return PasskeyError(400, "invalid_credential", f"The passkey response was not accepted: {detail}")


class Passkeys:
    def __init__(self, rp_id: str = "localhost", clock: Callable[[], float] = time.time):
        self.rp_id = rp_id
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: dict[str, Credential] = {}
        self._ceremonies: dict[str, Ceremony] = {}

    def reset(self) -> None:
        with self._lock:
            self._credentials.clear()
            self._ceremonies.clear()

    # ---- origins -------------------------------------------------------------

    def check_origin(self, origin: str | None) -> str:
        """A WebAuthn ceremony runs on a page of the relying party's domain: the RP ID
        itself or a subdomain, any port (an IP address cannot be an RP ID)."""
        try:
            parts = urlsplit(origin or "")
        except ValueError:
            parts = None
        host = (parts.hostname or "") if parts else ""
        if not parts or parts.scheme not in ("http", "https") or not (
            host == self.rp_id or host.endswith("." + self.rp_id)
        ):
            raise PasskeyError(
                400,
                "invalid_origin",
                f"Passkeys work only on pages of the relying party '{self.rp_id}' (this request "
                f"came from {origin or 'no origin'}). Open the app at http://{self.rp_id}:<port>.",
            )
        return origin  # type: ignore[return-value]

    def serves(self, origin: str) -> bool:
        """Whether a page on `origin` can run a ceremony for this relying party."""
        try:
            self.check_origin(origin)
        except PasskeyError:
            return False
        return True

    # ---- ceremonies ----------------------------------------------------------

    def _open(self, ceremony: Ceremony) -> str:
        """Caller holds the lock."""
        now = self._clock()
        for key in [k for k, c in self._ceremonies.items() if c.expires_at <= now]:
            del self._ceremonies[key]
        challenge_id = secrets.token_urlsafe(18)
        self._ceremonies[challenge_id] = ceremony
        return challenge_id

    def _take(self, challenge_id: object, kind: str) -> Ceremony:
        """The ceremony, removed: a challenge answers one response, right or wrong."""
        with self._lock:
            ceremony = self._ceremonies.pop(challenge_id, None) if isinstance(challenge_id, str) else None
        if ceremony is None or ceremony.kind != kind:
            raise PasskeyError(400, "invalid_challenge", "This passkey challenge is unknown or was already used. Try again.")
        if ceremony.expires_at <= self._clock():
            raise PasskeyError(400, "expired_challenge", "This passkey challenge has expired. Try again.")
        return ceremony

    def registration_options(self, user_id: str, username: str, display_name: str = "",
                             attachment: str | None = None) -> dict:
        if not isinstance(username, str) or not username.strip() or len(username) > 254:
            raise PasskeyError(400, "invalid_request", "username is required (at most 254 characters).")
        display_name = display_name if isinstance(display_name, str) and display_name else username
        if attachment not in (None, "platform", "cross-platform"):
            raise PasskeyError(400, "invalid_request", "authenticatorAttachment must be platform or cross-platform.")
        with self._lock:
            mine = [c for c in self._credentials.values() if c.user_id == user_id]
            options = generate_registration_options(
                rp_id=self.rp_id,
                rp_name=RP_NAME,
                user_name=username,
                user_id=user_id.encode("utf-8"),
                user_display_name=display_name,
                authenticator_selection=AuthenticatorSelectionCriteria(
                    authenticator_attachment=AuthenticatorAttachment(attachment) if attachment else None,
                    resident_key=ResidentKeyRequirement.REQUIRED,
                    user_verification=UserVerificationRequirement.PREFERRED,
                ),
                exclude_credentials=[
                    PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id)) for c in mine
                ],
            )
            challenge_id = self._open(Ceremony(
                kind="registration", challenge=options.challenge,
                expires_at=self._clock() + CEREMONY_TTL_SECONDS, user_id=user_id,
                username=username, display_name=display_name,
            ))
        return {"challengeId": challenge_id, "options": json.loads(options_to_json(options))}

    def register(self, challenge_id: object, credential: object, origin: str, user_id: str) -> Credential:
        """The new credential of `user_id`: the challenge must be one issued to that user."""
        ceremony = self._take(challenge_id, "registration")
        if ceremony.user_id != user_id:
            raise PasskeyError(401, "invalid_challenge", "This passkey challenge belongs to another user.")
        if not isinstance(credential, dict):
            raise _bad_credential("registrationCredential must be an object.")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=self.rp_id,
                expected_origin=origin,
            )
        except (InvalidRegistrationResponse, InvalidJSONStructure, InvalidCBORData, ValueError, KeyError, TypeError) as exc:
            raise _bad_credential(str(exc) or type(exc).__name__) from None
        credential_id = bytes_to_base64url(verified.credential_id)
        record = Credential(
            credential_id=credential_id,
            user_id=user_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            username=ceremony.username,
            display_name=ceremony.display_name,
            authenticator_id=secrets.token_hex(16),
            created_at=self._clock(),
            transports=list((credential.get("response") or {}).get("transports") or []),
        )
        with self._lock:
            if credential_id in self._credentials:
                raise PasskeyError(400, "credential_exists", "This passkey is already registered.")
            self._credentials[credential_id] = record
        return record

    def start_sign_in(self, action: str) -> str:
        """A challenge for a discoverable sign-in to `action` (the passkey names the user)."""
        with self._lock:
            return self._open(Ceremony(
                kind="authentication", challenge=secrets.token_bytes(32),
                expires_at=self._clock() + CEREMONY_TTL_SECONDS, user_id=None, action=action,
            ))

    def authentication_options(self, user_id: str | None = None, challenge_id: object = None) -> dict:
        """For a known user (a track token) the options list that user's passkeys; for a
        challenge from `start_sign_in`, none: the credential names the user."""
        with self._lock:
            if user_id is None:
                ceremony = self._ceremonies.get(challenge_id) if isinstance(challenge_id, str) else None
                if ceremony is None or ceremony.kind != "authentication" or ceremony.user_id is not None:
                    raise PasskeyError(400, "invalid_challenge",
                                       "Start a passkey sign-in with an action or a token first.")
            else:
                ceremony = Ceremony(kind="authentication", challenge=secrets.token_bytes(32),
                                    expires_at=self._clock() + CEREMONY_TTL_SECONDS, user_id=user_id)
                challenge_id = self._open(ceremony)
            allow = (
                [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id))
                 for c in self._credentials.values() if c.user_id == user_id]
                if user_id else None
            )
            options = generate_authentication_options(
                rp_id=self.rp_id,
                challenge=ceremony.challenge,
                allow_credentials=allow,
                user_verification=UserVerificationRequirement.PREFERRED,
            )
        return {"challengeId": challenge_id, "options": json.loads(options_to_json(options))}

    def authenticate(self, challenge_id: object, credential: object, origin: str,
                     user_id: str | None = None) -> tuple[Credential, Ceremony]:
        """The credential that signed this challenge. With `user_id` (a track token), the
        credential must be one of that user's: another user's passkey is unknown here."""
        ceremony = self._take(challenge_id, "authentication")
        if not isinstance(credential, dict) or not isinstance(credential.get("id"), str):
            raise _bad_credential("authenticationCredential must be an object with an id.")
        with self._lock:
            record = self._credentials.get(credential["id"])
        expected_user = user_id or ceremony.user_id
        if record is None or (expected_user and record.user_id != expected_user):
            raise PasskeyError(
                400, "unknown_credential",
                "This passkey is not registered here. Sign in another way, then add a passkey.",
            )
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=self.rp_id,
                expected_origin=origin,
                credential_public_key=record.public_key,
                credential_current_sign_count=record.sign_count,
            )
        except (InvalidAuthenticationResponse, InvalidJSONStructure, InvalidCBORData, ValueError, KeyError, TypeError) as exc:
            raise _bad_credential(str(exc) or type(exc).__name__) from None
        with self._lock:
            record.sign_count = verified.new_sign_count
        return record, ceremony

    # ---- queries -------------------------------------------------------------

    def credentials_of(self, user_id: str) -> list[Credential]:
        with self._lock:
            return [c for c in self._credentials.values() if c.user_id == user_id]

    def known(self, credential_ids: list[str]) -> list[Credential]:
        with self._lock:
            return [self._credentials[i] for i in credential_ids if i in self._credentials]
