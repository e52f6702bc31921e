"""RS256 JWTs and the JWKS that verifies them, as a Cognito user pool issues them."""

import base64
import secrets
from typing import Any, Dict

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
    invalidates every token, which is what a fresh pool would do too."""

    USES = ("id", "access")

    def __init__(self, issuer: str, client_id: str):
        self.issuer = issuer
        self.client_id = client_id
        self._keys = {use: rsa.generate_private_key(public_exponent=65537, key_size=2048)
                      for use in self.USES}
        self.kids = {use: secrets.token_urlsafe(32) for use in self.USES}

    def jwks(self) -> Dict[str, Any]:
        keys = []
        for use in self.USES:
            jwk = RSAAlgorithm.to_jwk(self._keys[use].public_key(), as_dict=True)
            jwk.update({"kid": self.kids[use], "alg": "RS256", "use": "sig"})
            keys.append(jwk)
        return {"keys": keys}

    def sign(self, claims: Dict[str, Any]) -> str:
        """With the key of the claims' `token_use`; the header is only `kid` and `alg`, as
        Cognito's (no `typ`)."""
        use = claims["token_use"]
        return jwt.encode(claims, self._keys[use], algorithm="RS256",
                          headers={"kid": self.kids[use], "typ": None})

    def decode_access_token(self, token: str) -> Dict[str, Any]:
        """Signature, key id, issuer, token use and client; expiry and revocation are
        the pool's business (they have their own error messages)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        # Checked explicitly so that alg "none" / HS256-with-the-public-key never get near
        # the verifier, whatever PyJWT version is installed.
        if header.get("alg") != "RS256" or header.get("kid") != self.kids["access"]:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        try:
            claims = jwt.decode(
                token,
                self._keys["access"].public_key(),
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
