"""RS256 JWTs and the JWKS that verifies them, as a Cognito user pool issues them."""

import base64
import secrets
import threading
from typing import Any, Dict, Tuple

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .errors import not_authorized

INVALID_ACCESS_TOKEN = "Invalid Access Token"
# A real refresh token's protected header: {"cty":"JWT","enc":"A256GCM","alg":"RSA-OAEP"}.
REFRESH_TOKEN_HEADER = "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ"
# Bytes of the encrypted key, IV, ciphertext and tag: 1,844 characters in all.
REFRESH_TOKEN_PARTS = (256, 12, 1048, 16)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class TokenSigner:
    """Holds one RSA key per token use, generated per process: a real pool publishes two
    keys (one `kid` for ID tokens, one for access tokens), and restarting the emulator
    invalidates every token, which is what a fresh pool would do too.

    `rotate()` makes new keys (new `kid`s) for new tokens; the old public keys stay published
    unless told otherwise, so tokens signed before keep verifying until they expire."""

    USES = ("id", "access")

    def __init__(self, issuer: str, client_id: str):
        self.issuer = issuer
        self.client_id = client_id
        self._lock = threading.Lock()
        self._published: Dict[str, Tuple[str, Any]] = {}  # kid -> (use, private key), oldest first
        self._keys: Dict[str, Any] = {}  # use -> the private key that signs new tokens
        self.kids: Dict[str, str] = {}  # use -> its kid
        self.rotate()

    def rotate(self, keep_old: bool = True) -> Dict[str, Any]:
        keys = {use: rsa.generate_private_key(public_exponent=65537, key_size=2048) for use in self.USES}
        kids = {use: secrets.token_urlsafe(32) for use in self.USES}
        with self._lock:
            if not keep_old:
                self._published.clear()
            for use in self.USES:
                self._published[kids[use]] = (use, keys[use])
            self._keys, self.kids = keys, kids
        return {"kids": dict(kids), "published": len(self._published)}

    def jwks(self) -> Dict[str, Any]:
        keys = []
        with self._lock:
            published = list(self._published.items())
        for kid, (_, key) in published:
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
            keys.append(jwk)
        return {"keys": keys}

    def sign(self, claims: Dict[str, Any]) -> str:
        """With the key of the claims' `token_use`; the header is only `kid` and `alg`, as
        Cognito's (no `typ`)."""
        use = claims["token_use"]
        with self._lock:
            key, kid = self._keys[use], self.kids[use]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": None})

    def _access_key(self, kid: Any) -> Any:
        with self._lock:
            use, key = self._published.get(kid, (None, None)) if isinstance(kid, str) else (None, None)
        return key.public_key() if use == "access" else None

    def decode_access_token(self, token: str) -> Dict[str, Any]:
        """Signature, key id, issuer, token use and client; expiry and revocation are
        the pool's business (they have their own error messages)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        # Checked explicitly so that alg "none" / HS256-with-the-public-key never get near
        # the verifier, whatever PyJWT version is installed.
        key = self._access_key(header.get("kid"))
        if header.get("alg") != "RS256" or key is None:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "require": ["sub", "exp", "iat", "jti", "token_use", "client_id"],
                },
            )
        except jwt.InvalidTokenError:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        if claims.get("token_use") != "access" or claims.get("client_id") != self.client_id:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        return claims

    @staticmethod
    def new_refresh_token() -> str:
        """Opaque and random, shaped and sized as Cognito's (a JWE of about 1.8 KB: RSA-OAEP
        key, 12-byte IV, ciphertext, 16-byte tag), so whatever stores one (the app's
        cookie) is tried at the real size."""
        parts = [REFRESH_TOKEN_HEADER] + [_b64(secrets.token_bytes(n)) for n in REFRESH_TOKEN_PARTS]
        return ".".join(parts)

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        try:
            jwt.get_unverified_header(token)
            return token.count(".") == 2
        except jwt.InvalidTokenError:
            return False
