"""The Authsignal server API calls the triggers make, on the standard library: track, validate,
and the user's authenticators (enrol one as verified, list them).

The same calls as the `authsignal` SDK 4.1.0 (URLs, Basic auth with the secret key, bodies
without top-level nulls, answers' keys made snake_case by pyhumps as the SDK does, any
failure an `ApiException(error_code, error_description, status_code)`), without `requests`
under it: importing the SDK was most of Create's cold start, more than the whole Node peer's
(docs/design.md, "Cold starts"). Two differences, both fixes: every call has its timeouts
(SDK 4.1.0 drops them), and any JSON content type is read (the SDK reads a body only when
the type is exactly `application/json`).
"""
import base64
import json
from urllib.parse import quote

import humps

from chalicelib import outbound, settings

class ApiException(Exception):
    """As the SDK's: a non-2xx answer (`status_code` set), or no answer (all None)."""

    def __init__(self, error_code, error_description, status_code):
        super().__init__(f"{status_code} {error_code}: {error_description}")
        self.error_code = error_code
        self.error_description = error_description
        self.status_code = status_code


class AuthsignalClient:
    def __init__(self, api_secret_key, api_url):
        self.api_url = api_url
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{api_secret_key}:".encode()).decode(),
        }

    def track(self, user_id, action, attributes=None):
        return self._post(f"{self.api_url}/users/{quote(user_id)}/actions/{quote(action)}", attributes or {})

    def validate_challenge(self, attributes):
        return self._post(f"{self.api_url}/validate", attributes)

    def enroll_verified_authenticator(self, user_id, attributes):
        """As SDK 4.1.0's: `{verificationMethod, email | phoneNumber}` → `{authenticator}`."""
        return self._post(f"{self.api_url}/users/{quote(user_id)}/authenticators", attributes)

    def get_authenticators(self, user_id):
        """As SDK 4.1.0's: a list of the user's authenticators."""
        return self._send("GET", f"{self.api_url}/users/{quote(user_id)}/authenticators", None)

    def _post(self, url, body):
        data = json.dumps({key: value for key, value in body.items() if value is not None}).encode()
        return self._send("POST", url, data)

    def _send(self, method, url, data):
        try:
            status, headers, answer = outbound.post(
                url, self._headers, data,
                settings.AUTHSIGNAL_CONNECT_TIMEOUT_SECONDS, settings.AUTHSIGNAL_TIMEOUT_SECONDS, method=method)
        except outbound.Unavailable:
            raise ApiException(None, None, None) from None
        if status >= 300:
            try:
                error = json.loads(answer)
            except ValueError:
                error = {}
            error = error if isinstance(error, dict) else {}
            raise ApiException(error.get("errorCode"), error.get("errorDescription"), status)
        kind = headers.get_content_type()  # media type only: "; charset=utf-8" is fine
        if kind != "application/json" and not kind.endswith("+json"):
            raise ValueError(f"Authsignal answered {kind}, not JSON")
        return humps.decamelize(json.loads(answer))
