"""A software WebAuthn authenticator (P-256, "none" attestation) for tests without a browser.

It produces the same JSON that @simplewebauthn/browser (inside the Web SDK) sends, so the
emulator's py_webauthn checks run on real signatures.
"""
import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAGS_UP, FLAGS_UV, FLAGS_AT = 0x01, 0x04, 0x40


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, origin):
        self.origin = origin
        self.credentials = {}  # credential id (b64url) -> (private key, rp id, user handle)
        self.sign_count = 0

    def _client_data(self, kind, challenge):
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options):
        """navigator.credentials.create() for PublicKeyCredentialCreationOptionsJSON."""
        rp_id = options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})
        credential_id = os.urandom(32)
        auth_data = (hashlib.sha256(rp_id.encode()).digest()
                     + bytes([FLAGS_UP | FLAGS_UV | FLAGS_AT]) + struct.pack(">I", 0)
                     + bytes(16) + struct.pack(">H", len(credential_id)) + credential_id + cose)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cid = b64url(credential_id)
        self.credentials[cid] = (key, rp_id, options["user"]["id"])
        return {
            "id": cid, "rawId": cid, "type": "public-key", "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
            "response": {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
        }

    def get(self, options, credential_id=None):
        """navigator.credentials.get(): signs with `credential_id`, or the first allowed one."""
        allowed = [c["id"] for c in options.get("allowCredentials") or []]
        if credential_id is None:
            credential_id = next((c for c in self.credentials if not allowed or c in allowed), None)
        key, rp_id, user_handle = self.credentials[credential_id]
        self.sign_count += 1
        auth_data = (hashlib.sha256(options.get("rpId", rp_id).encode()).digest()
                     + bytes([FLAGS_UP | FLAGS_UV]) + struct.pack(">I", self.sign_count))
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": credential_id, "rawId": credential_id, "type": "public-key", "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
            "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": user_handle},
        }
