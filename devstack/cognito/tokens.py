"""RS256 JWTs and the JWKS that verifies them, as a Cognito user pool issues them."""

import secrets
from typing import Any, Dict

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .errors import not_authorized

INVALID_ACCESS_TOKEN = "Invalid Access Token"


class TokenSigner:
    """Holds one RSA key, generated per process: restarting the emulator invalidates
    every token, which is what a fresh pool would do too."""

    def __init__(self, issuer: str, client_id: str):
        self.issuer = issuer
        self.client_id = client_id
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._key.public_key()
        self.kid = secrets.token_urlsafe(32)

    def jwks(self) -> Dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._public_key, as_dict=True)
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def sign(self, claims: Dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def decode_access_token(self, token: str) -> Dict[str, Any]:
        """Signature, key id, issuer, token use and client; expiry and revocation are
        the pool's business (they have their own error messages)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        # Checked explicitly so that alg "none" / HS256-with-the-public-key never get near
        # the verifier, whatever PyJWT version is installed.
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise not_authorized(INVALID_ACCESS_TOKEN)
        try:
            claims = jwt.decode(
                token,
                self._public_key,
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
    def looks_like_jwt(token: str) -> bool:
        try:
            jwt.get_unverified_header(token)
            return token.count(".") == 2
        except jwt.InvalidTokenError:
            return False
