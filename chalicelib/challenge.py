"""The rules of the custom auth challenge, as plain functions over plain data.

The trigger functions in `triggers/` only unpack Cognito's events and call these.
"""
CUSTOM_CHALLENGE = "CUSTOM_CHALLENGE"
MAX_ATTEMPTS = 3
# Authsignal tokens are JWTs of a few hundred bytes; anything far larger is not one.
MAX_ANSWER_LENGTH = 4096
CHALLENGE_METADATA = "AUTHSIGNAL"


def pre_sign_up(trigger_source, client_id, app_client_id):
    """Confirm this app's sign-ups at once; their email stays unverified until they prove it.

    Another client of the same pool (an adopted pool may have several) keeps the pool's own
    confirmation: its users never answered our challenge."""
    if trigger_source != "PreSignUp_SignUp" or not app_client_id or client_id != app_client_id:
        return {}
    return {"autoConfirmUser": True, "autoVerifyEmail": False, "autoVerifyPhone": False}


def define(session, user_not_found=False):
    """What Cognito should do next, given the challenge rounds so far."""
    fail = {"challengeName": None, "issueTokens": False, "failAuthentication": True}
    if user_not_found:
        return fail
    if any(round_.get("challengeName") != CUSTOM_CHALLENGE for round_ in session):
        return fail  # SRP, password or anything else is not this flow
    if session and session[-1].get("challengeResult") is True:
        return {"challengeName": None, "issueTokens": True, "failAuthentication": False}
    if len(session) >= MAX_ATTEMPTS:
        return fail
    return {"challengeName": CUSTOM_CHALLENGE, "issueTokens": False, "failAuthentication": False}


def create(challenge, email):
    """Public parameters reach the browser; private ones stay with Cognito for Verify,
    including the email Authsignal was asked to challenge (Verify compares it; "" when the
    user has none: nothing to verify)."""
    return {
        "publicChallengeParameters": {"url": challenge.url, "token": challenge.token},
        "privateChallengeParameters": {"idempotencyKey": challenge.idempotency_key, "email": email or ""},
        "challengeMetadata": CHALLENGE_METADATA,
    }


def create_for_unknown_user():
    """With PreventUserExistenceErrors on, Cognito runs Create for a user that does not
    exist (`userNotFound`): a round nobody can answer, and nothing tracked in Authsignal."""
    return {"publicChallengeParameters": {}, "privateChallengeParameters": {}, "challengeMetadata": CHALLENGE_METADATA}


def plausible_answer(answer):
    return isinstance(answer, str) and 0 < len(answer) <= MAX_ANSWER_LENGTH


def answer_correct(validation, user_id, action, idempotency_key):
    """A token counts only for this user, this action and this round's Create.

    A token that succeeded for another user, another action or an earlier sign-in
    attempt (a replay) carries another idempotency key, and is refused.
    """
    return (
        validation.is_valid is True
        and validation.state == "CHALLENGE_SUCCEEDED"
        and bool(idempotency_key)
        and validation.user_id == user_id
        and validation.action == action
        and validation.idempotency_key == idempotency_key
    )
