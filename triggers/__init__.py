"""The Cognito user-pool triggers of the CUSTOM_AUTH flow, as a Chalice blueprint.

Each function unpacks Cognito's event, applies the rules in `chalicelib.challenge`
and returns the whole event with `response` filled in. None logs a token, a code
or an email address.
"""
import logging

from chalice import Blueprint

from chalicelib import challenge, metrics  # settings and the gateways: imported by the triggers that use them
from chalicelib.budget import network_budget
from chalicelib.observe import observed

bp = Blueprint(__name__)
log = logging.getLogger(__name__)


def _respond(event, response):
    event["response"] = {**(event.get("response") or {}), **response}
    return event


@bp.lambda_function(name="pre_sign_up")
@observed("pre_sign_up")
def pre_sign_up(event, context):
    from chalicelib import settings

    client_id = (event.get("callerContext") or {}).get("clientId")
    return _respond(event, challenge.pre_sign_up(event.get("triggerSource"), client_id, settings.app_client_id()))


@bp.lambda_function(name="define_auth_challenge")
@observed("define_auth_challenge")
def define_auth_challenge(event, context):
    request = event["request"]
    decision = challenge.define(request.get("session") or [], request.get("userNotFound") is True)
    return _respond(event, decision)


@bp.lambda_function(name="create_auth_challenge")
@observed("create_auth_challenge")
@network_budget
def create_auth_challenge(event, context):
    request = event["request"]
    if request.get("userNotFound") is True:
        return _respond(event, challenge.create_for_unknown_user())
    from chalicelib import authsignal_gateway, settings

    # A user of another client may have no email (a phone user): tracked with what it has.
    attributes = request.get("userAttributes") or {}
    email = attributes.get("email") or None
    issued = authsignal_gateway.start_challenge(
        settings.load(event), user_id=attributes["sub"], email=email, phone_number=attributes.get("phone_number"),
        phone_number_verified=attributes.get("phone_number_verified") == "true",
    )
    return _respond(event, challenge.create(issued, email))


@bp.lambda_function(name="verify_auth_challenge_response")
@observed("verify_auth_challenge_response")
@network_budget
def verify_auth_challenge_response(event, context):
    from chalicelib import authsignal_gateway, cognito_gateway, identity, settings

    request = event["request"]
    attributes = request.get("userAttributes") or {}
    answer = request.get("challengeAnswer")
    if request.get("userNotFound") is True or not attributes.get("sub") or not challenge.plausible_answer(answer):
        return _respond(event, {"answerCorrect": False})
    config = settings.load(event)
    user_id = attributes["sub"]
    private = request.get("privateChallengeParameters") or {}
    validation = authsignal_gateway.validate(config, user_id, answer)
    correct = challenge.answer_correct(
        validation,
        user_id=user_id,
        action=config.authsignal_action,
        idempotency_key=private.get("idempotencyKey"),
    )
    # A correct answer signs the user in; only proof of this very address verifies it.
    proof = identity.EmailProof(False, "not needed")
    if correct and attributes.get("email_verified") != "true":
        proof = identity.email_proof(
            verification_method=validation.verification_method,
            tracked_email=private.get("email"),
            current_email=attributes.get("email"),
            load_authenticators=lambda: authsignal_gateway.authenticators(config, user_id),
        )
    log.info("Challenge answer checked: correct=%s state=%s method=%s email_proven=%s (%s)",
             correct, validation.state, validation.verification_method, proof.proven, proof.reason)
    if correct:
        metrics.record("MethodProven", Method=metrics.method_name(validation.verification_method))
    if proof.proven:
        cognito_gateway.mark_email_verified(
            config.region, config.user_pool_id, event["userName"], config.cognito_endpoint_url
        )
        if config.cleanup_unverified_users:
            _leave_cleanup_group(event, config)
    return _respond(event, {"answerCorrect": correct})


def _leave_cleanup_group(event, config):
    """A user who proved their email is no longer the cleanup's to delete. Best effort: the
    job also takes verified members out, so a failure here is logged, not raised."""
    from chalicelib import cognito_gateway
    from chalicelib.cleanup import PENDING_GROUP

    try:
        cognito_gateway.remove_from_group(event["region"], event["userPoolId"], event["userName"], PENDING_GROUP,
                                          config.cognito_endpoint_url)
    except (cognito_gateway.CognitoError, cognito_gateway.CognitoUnavailable) as error:
        log.warning("Could not take a verified user out of group %s: %s", PENDING_GROUP,
                    getattr(error, "code", error))
