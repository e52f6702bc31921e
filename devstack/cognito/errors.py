"""AWS-style errors: the exception name becomes ``__type`` on the wire."""

INCORRECT = "Incorrect username or password."


class CognitoError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def not_authorized(message: str) -> CognitoError:
    return CognitoError("NotAuthorizedException", message)


def invalid_parameter(message: str) -> CognitoError:
    return CognitoError("InvalidParameterException", message)


def status_for(code: str) -> int:
    # Only service-side failures are 5xx on AWS; everything else is a client error.
    return 500 if code in ("InternalErrorException", "ServiceUnavailableException") else 400
