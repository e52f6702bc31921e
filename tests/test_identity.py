"""Who may become whom (chalicelib.identity), attacked as plain functions: no HTTP, no AWS.
The same rules end to end, against the permissive emulator: tests/test_security_takeover.py."""
import pytest

from chalicelib import identity

EMAIL = "owner@example.com"
PHONE = "+15550102030"
OWN = [{"verification_method": "EMAIL_OTP", "email": EMAIL}]


# ---- the first authenticator: never the holder's choice -------------------------------------

def test_a_user_with_no_authenticator_gets_their_own_email_first():
    first = identity.first_authenticator(enrolled=False, email=EMAIL, phone_number=PHONE,
                                         allowed_methods=["EMAIL_OTP", "SMS", "PASSKEY"])
    assert first == identity.FirstAuthenticator(enrol=True, verification_method="EMAIL_OTP", email=EMAIL)


def test_a_tenant_with_magic_links_only_enrols_the_email_for_links():
    first = identity.first_authenticator(enrolled=False, email=EMAIL, phone_number=None,
                                         allowed_methods=["EMAIL_MAGIC_LINK", "PASSKEY"])
    assert (first.enrol, first.verification_method, first.email) == (True, "EMAIL_MAGIC_LINK", EMAIL)


def test_a_user_with_no_email_gets_their_verified_phone_first():
    first = identity.first_authenticator(enrolled=False, email=None, phone_number=PHONE, phone_number_verified=True,
                                         allowed_methods=["EMAIL_OTP", "SMS"])
    assert first == identity.FirstAuthenticator(enrol=True, verification_method="SMS", phone_number=PHONE)


@pytest.mark.parametrize("verified", [False, "true", None])
def test_a_phone_the_pool_never_verified_is_not_enrolled(verified):
    first = identity.first_authenticator(enrolled=False, email=None, phone_number=PHONE, phone_number_verified=verified,
                                         allowed_methods=["SMS"])
    assert (first.enrol, first.refuse) == (False, True)


@pytest.mark.parametrize("email, phone, allowed", [
    (None, None, ["EMAIL_OTP", "SMS"]),                     # nothing of the user's own to prove
    ("", "", None),
    (EMAIL, PHONE, ["AUTHENTICATOR_APP", "PASSKEY"]),       # only methods a stranger could bring
    (None, PHONE, ["EMAIL_OTP", "PASSKEY"]),
    (EMAIL, None, []),
])
def test_nothing_the_user_owns_to_enrol_refuses(email, phone, allowed):
    first = identity.first_authenticator(enrolled=False, email=email, phone_number=phone, allowed_methods=allowed)
    assert (first.enrol, first.refuse) == (False, True)


@pytest.mark.parametrize("enrolled", [True, None, "false", 0])
def test_only_a_plain_false_means_not_enrolled(enrolled):
    # Anything else (missing, garbage) enrols nothing: the user's authenticators then decide.
    first = identity.first_authenticator(enrolled=enrolled, email=EMAIL, phone_number=None)
    assert first == identity.FirstAuthenticator(enrol=False)


def test_allowed_methods_not_said_assumes_email_otp():
    assert identity.first_authenticator(enrolled=False, email=EMAIL, phone_number=None).verification_method == "EMAIL_OTP"


# ---- email_verified: only from Authsignal's own record of that very address -----------------

def proof(method="EMAIL_OTP", tracked=EMAIL, current=EMAIL, authenticators=OWN):
    calls = []

    def load():
        calls.append(1)
        return authenticators

    result = identity.email_proof(verification_method=method, tracked_email=tracked, current_email=current,
                                  load_authenticators=load)
    return result, len(calls)


@pytest.mark.parametrize("method", ["EMAIL_OTP", "EMAIL_MAGIC_LINK"])
def test_an_email_method_on_the_tracked_address_proves_it(method):
    assert proof(method) == (identity.EmailProof(True, "proven"), 1)


def test_authsignal_may_keep_the_address_in_another_case():
    assert proof(authenticators=[{"verification_method": "EMAIL_OTP", "email": EMAIL.upper()}])[0].proven


@pytest.mark.parametrize("method", ["SMS", "WHATSAPP", "AUTHENTICATOR_APP", "PASSKEY", "SECURITY_KEY", "PUSH",
                                    None, "", "email_otp"])
def test_other_methods_prove_no_address_and_ask_nothing(method):
    result, calls = proof(method)
    assert (result.proven, calls) == (False, 0)


@pytest.mark.parametrize("tracked, current", [
    (EMAIL, "victim@example.com"),   # changed between Create and Verify
    (None, EMAIL),                   # a session from before Create kept the email
    ("", ""),
    (EMAIL, EMAIL.upper()),          # Cognito's current address is not exactly the one tracked
])
def test_only_the_address_create_tracked_and_cognito_still_holds(tracked, current):
    result, calls = proof(tracked=tracked, current=current)
    assert (result.proven, calls) == (False, 0)


@pytest.mark.parametrize("authenticators, reason", [
    (None, "could not be read"),
    ([], "no email authenticator"),
    ([{"verification_method": "AUTHENTICATOR_APP"}], "no email authenticator"),
    ([{"verification_method": "EMAIL_OTP", "email": "attacker@evil.example"}], "another address"),
    (OWN + [{"verification_method": "EMAIL_OTP", "email": "attacker@evil.example"}], "another address"),
    ([{"verification_method": "EMAIL_OTP"}], "another address"),
    ([{"verification_method": "EMAIL_OTP", "email": None}], "another address"),
    (["EMAIL_OTP", 7], "no email authenticator"),
])
def test_authsignal_must_hold_that_address_and_no_other(authenticators, reason):
    # validate names no address: an EMAIL_OTP that proved the attacker's own address reads the same.
    result, _ = proof(authenticators=authenticators)
    assert result.proven is False and reason in result.reason


def test_a_reason_never_holds_an_address():
    for authenticators in (None, [], [{"verification_method": "EMAIL_OTP", "email": "attacker@evil.example"}]):
        result, _ = proof(authenticators=authenticators)
        assert "@" not in result.reason


# ---- adding a passkey: a recent sign-in ------------------------------------------------------

NOW = 1_800_000_000


@pytest.mark.parametrize("auth_time, recent", [
    (NOW, True), (NOW - 299, True), (NOW - identity.RECENT_PROOF_SECONDS, True),
    (NOW - identity.RECENT_PROOF_SECONDS - 1, False), (NOW - 86400, False),
    (NOW + 30, True),                  # a little clock skew
    (NOW + 3600, False),               # from the future: not trusted
    (None, False), ("1800000000", False), (True, False), (float("nan"), False),
])
def test_recent_proof_needs_a_sign_in_of_the_last_few_minutes(auth_time, recent):
    assert identity.recent_proof(auth_time=auth_time, now=NOW).recent is recent


def test_recent_proof_reports_the_age():
    assert identity.recent_proof(auth_time=NOW - 42, now=NOW) == identity.RecentProof(True, 42)
