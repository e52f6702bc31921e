"""The Verify trigger over real HTTP, for every method: the dev stack as the page uses it.

A correct answer by any method signs the user in; only the two email methods verify the
email (SPEC 4). Passkey tokens are replayed across users and rounds, as the email path's are
in test_security_attacks.py. Each method is driven through the emulator's own endpoints (what
its challenge page or the Web SDK calls); passkeys come from a software authenticator.
"""
import base64
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from authsignal.client import AuthsignalClient

from chalicelib.signin import jwt_claims as claims
from tests.webauthn_authenticator import SoftAuthenticator

PAGE_ORIGIN = "http://localhost:8000"  # the page's origin, as the client API sees it


@pytest.fixture
def http(devstack):
    session = requests.Session()
    session.headers["Origin"] = devstack.app_url
    return session


class User:
    def __init__(self, http, devstack, email):
        self.http, self.stack, self.email = http, devstack, email

    def start(self):
        response = self.http.post(self.stack.app_url + "/auth/start", json={"email": self.email}, timeout=15)
        assert response.status_code == 200, response.text
        return response.json()

    def finish(self, round_, token):
        return self.http.post(self.stack.app_url + "/auth/finish", timeout=15,
                              json={"email": self.email, "session": round_["session"], "token": token})

    def page(self, round_, path, **body):
        token = parse_qs(urlsplit(round_["challengeUrl"]).query)["token"][0]
        return requests.post(f"{self.stack.authsignal_url}/challenge/{path}", json={"token": token, **body}, timeout=5)

    def open(self, round_):
        assert requests.get(round_["challengeUrl"] + "&mode=popup", timeout=5).status_code == 200

    def email_code(self, round_):
        self.open(round_)
        answer = self.page(round_, "verify", code=self.stack.mailbox(self.email)[-1]["code"])
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def me(self, finished):
        assert finished.status_code == 200 and finished.json()["status"] == "SIGNED_IN", finished.text
        bearer = {"Authorization": "Bearer " + finished.json()["accessToken"]}
        return self.http.get(self.stack.app_url + "/api/me?check=cognito", headers=bearer, timeout=5).json()

    def texts(self, phone):
        return requests.get(f"{self.stack.authsignal_url}/_dev/mailbox", params={"phone": phone}, timeout=5).json()


@pytest.fixture
def user(http, devstack, email):
    return User(http, devstack, email)


def server_sdk(devstack):
    env = devstack.local_env()
    return AuthsignalClient(env["AUTHSIGNAL_SECRET_KEY"], api_url=env["AUTHSIGNAL_API_URL"])


def client_api(devstack, path, token, body):
    return requests.post(f"{devstack.authsignal_url}/v1/client/{path}", json=body, timeout=5,
                         headers={"Authorization": f"Bearer {token}", "Origin": PAGE_ORIGIN})


def enrol_passkey(devstack, sub, email):
    """What **Add a passkey** does: a track token with scope add:authenticators (as
    /api/passkey-token asks for), then the Web SDK's registration calls."""
    token = server_sdk(devstack).track(sub, "addPasskey", {"email": email, "scope": "add:authenticators"})["token"]
    authenticator = SoftAuthenticator(PAGE_ORIGIN)
    options = client_api(devstack, "user-authenticators/passkey/registration-options", token, {"username": email}).json()
    added = client_api(devstack, "user-authenticators/passkey", token, {
        "registrationCredential": authenticator.create(options["options"]), "challengeId": options["challengeId"]})
    assert added.status_code == 200, added.text
    return authenticator


def passkey_token(devstack, round_, authenticator):
    """What `passkey.signIn({token: challengeToken})` does, returning its token."""
    options = client_api(devstack, "user-authenticators/passkey/authentication-options",
                         round_["challengeToken"], {}).json()
    verified = client_api(devstack, "verify/passkey", round_["challengeToken"], {
        "authenticationCredential": authenticator.get(options["options"]), "challengeId": options["challengeId"]})
    assert verified.status_code == 200, verified.text
    return verified.json()["accessToken"]


def unverified_user_with(user, set_up):
    """A user whose email is not verified yet but who has another method: the first proof and
    the set-up happen in a round that is never finished in Cognito."""
    round_ = user.start()
    user.email_code(round_)
    set_up(round_)


def sub_of(user):
    round_ = user.start()  # Cognito signed the user up; the track token names the sub
    return claims(round_["challengeToken"])["sub"]


# ---- a correct answer signs in; only email methods verify the email -------------------------

def test_email_otp_signs_in_and_verifies_the_email(user):
    round_ = user.start()
    assert user.me(user.finish(round_, user.email_code(round_)))["emailVerified"] is True


def test_email_magic_link_signs_in_and_verifies_the_email(user):
    round_ = user.start()
    user.open(round_)
    assert user.page(round_, "magic-link").status_code == 200
    link = user.stack.mailbox(user.email)[-1]["link"]
    assert requests.get(link, timeout=5).status_code == 200
    token = parse_qs(urlsplit(round_["challengeUrl"]).query)["token"][0]
    assert user.me(user.finish(round_, token))["emailVerified"] is True


def test_sms_signs_in_and_leaves_the_email_unverified(user):
    phone = "+1555" + str(int(time.time() * 1000))[-7:]

    def set_up(round_):
        assert user.page(round_, "sms/send", phone=phone).status_code == 200
        assert user.page(round_, "sms/verify", code=user.texts(phone)[-1]["code"]).status_code == 200
    unverified_user_with(user, set_up)
    round_ = user.start()
    assert user.page(round_, "sms/send").status_code == 200
    answer = user.page(round_, "sms/verify", code=user.texts(phone)[-1]["code"])
    assert answer.status_code == 200
    assert user.me(user.finish(round_, answer.json()["token"]))["emailVerified"] is False


def test_authenticator_app_signs_in_and_leaves_the_email_unverified(user):
    secrets = []

    def set_up(round_):
        secrets.append(user.page(round_, "totp/setup").json()["secret"])
        assert user.page(round_, "totp/verify", code=pyotp.TOTP(secrets[0]).now()).status_code == 200
    unverified_user_with(user, set_up)
    round_ = user.start()
    answer = user.page(round_, "totp/verify", code=pyotp.TOTP(secrets[0]).at(time.time() + 30))
    assert answer.status_code == 200, answer.text
    assert user.me(user.finish(round_, answer.json()["token"]))["emailVerified"] is False


def test_a_passkey_signs_in_and_leaves_the_email_unverified(user, devstack):
    authenticator = enrol_passkey(devstack, sub_of(user), user.email)
    round_ = user.start()
    assert user.me(user.finish(round_, passkey_token(devstack, round_, authenticator)))["emailVerified"] is False


# ---- passkey tokens count once, for their user, action and round -----------------------------

def assert_refused(finished):
    assert finished.status_code == 200 and finished.json()["status"] == "CHALLENGE", finished.text


def test_a_passkey_token_that_signed_in_is_refused_in_a_later_round(user, devstack):
    authenticator = enrol_passkey(devstack, sub_of(user), user.email)
    first = user.start()
    token = passkey_token(devstack, first, authenticator)
    user.me(user.finish(first, token))
    assert_refused(user.finish(user.start(), token))


def test_a_passkey_token_from_an_earlier_round_is_refused(user, devstack):
    authenticator = enrol_passkey(devstack, sub_of(user), user.email)
    earlier = user.start()
    token = passkey_token(devstack, earlier, authenticator)  # proven, never used
    assert_refused(user.finish(user.start(), token))


def test_another_users_passkey_token_is_refused(user, devstack, http, email):
    other = User(http, devstack, "other-" + email)
    authenticator = enrol_passkey(devstack, sub_of(other), other.email)
    their_token = passkey_token(devstack, other.start(), authenticator)
    assert_refused(user.finish(user.start(), their_token))


def test_a_discoverable_passkey_token_is_refused(user, devstack):
    # passkey.signIn({action}) mints a token for an action instance of its own: no round's.
    authenticator = enrol_passkey(devstack, sub_of(user), user.email)
    basic = {"Authorization": "Basic " + base64.b64encode(b"devstack-tenant").decode(), "Origin": PAGE_ORIGIN}
    base = f"{devstack.authsignal_url}/v1/client"
    challenge_id = requests.post(f"{base}/challenge", json={"action": "cognitoAuth"}, headers=basic, timeout=5).json()["challengeId"]
    options = requests.post(f"{base}/user-authenticators/passkey/authentication-options", headers=basic, timeout=5,
                            json={"challengeId": challenge_id}).json()
    token = requests.post(f"{base}/verify/passkey", headers=basic, timeout=5, json={
        "challengeId": challenge_id, "authenticationCredential": authenticator.get(options["options"])}).json()["accessToken"]
    assert_refused(user.finish(user.start(), token))


def test_the_enrolment_token_never_answers_a_sign_in(user, devstack):
    token = server_sdk(devstack).track(sub_of(user), "addPasskey", {"email": user.email, "scope": "add:authenticators"})["token"]
    assert_refused(user.finish(user.start(), token))
