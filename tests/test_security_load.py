"""Concurrent load on loopback: 50 first-time sign-ins at once through the dev stack (real
HTTP: chalice local, the Cognito emulator running the triggers, the Authsignal emulator).
Every one succeeds, each user gets its own sub, and no session or token crosses users.
Bounded in count (USERS threads, one sign-in each) and time (DEADLINE_SECONDS overall)."""
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
import requests

from tests.security_helpers import User, authsignal_token, claims, remember

pytestmark = pytest.mark.devstack

USERS = 50
DEADLINE_SECONDS = 120


def test_concurrent_sign_ins(devstack, record_property):
    barrier = threading.Barrier(USERS, timeout=30)
    run = uuid.uuid4().hex[:8]

    def one(i):
        user = User(devstack, f"load-{run}-{i:02d}@example.com", session=requests.Session())
        barrier.wait()  # all start together
        began = time.monotonic()
        challenge = user.start()
        token = user.prove(challenge["challengeUrl"])
        finished = user.finish(challenge["session"], token)
        assert finished.status_code == 200, finished.text[:300]
        body = finished.json()
        assert body["status"] == "SIGNED_IN", body
        cookie = finished.headers["Set-Cookie"].split(";")[0].partition("=")[2]
        remember(body["idToken"], body["accessToken"], cookie, cookie.partition(":")[2])
        me = user.me(body["accessToken"])
        assert me.status_code == 200, me.text[:300]
        return {"email": user.email, "session": challenge["session"], "challenge_token": authsignal_token(
            challenge["challengeUrl"]), "token": token, "body": body, "cookie": cookie, "me": me.json(),
            "seconds": time.monotonic() - began}

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=USERS) as pool:
        futures = [pool.submit(one, i) for i in range(USERS)]
        done, not_done = wait(futures, timeout=DEADLINE_SECONDS)
        for future in not_done:
            future.cancel()
    elapsed = time.monotonic() - started
    results, failures = [], []
    for future in done:
        try:
            results.append(future.result())
        except Exception as error:  # noqa: BLE001 - reported below, all at once
            failures.append(f"{type(error).__name__}: {str(error)[:200]}")
    record_property("concurrent_sign_ins", USERS)
    record_property("concurrent_succeeded", len(results))
    summary = (f"{len(results)}/{USERS} signed in within {elapsed:.1f} s "
               f"(slowest {max((r['seconds'] for r in results), default=0):.1f} s); "
               f"{len(not_done)} unfinished; failures: {failures[:5]}")
    if failures:  # what the app logged about its stores (no address in them), to tell why
        summary += "; app log: " + " | ".join(line.strip() for line in devstack.log
                                               if "store unavailable" in line or "unreachable" in line)[-1500:]
    print(summary)
    assert len(results) == USERS and not failures and not not_done, summary

    subs = set()
    for result in results:
        email, body, me = result["email"], result["body"], result["me"]
        id_claims, access_claims = claims(body["idToken"]), claims(body["accessToken"])
        # Every token names its own user, and /api/me with it answers for that user.
        assert id_claims["email"] == email and me["email"] == email, (email, id_claims["email"], me)
        assert id_claims["sub"] == access_claims["sub"] == me["sub"] == result["cookie"].split(":")[0]
        assert me["emailVerified"] is True
        subs.add(me["sub"])
    assert len(subs) == USERS, f"only {len(subs)} distinct subs for {USERS} users"
    for key in ("session", "challenge_token", "token", "cookie"):
        values = [r[key] for r in results]
        assert len(set(values)) == USERS, f"two users share a {key}"
    for field in ("idToken", "accessToken"):
        assert len({r["body"][field] for r in results}) == USERS, f"two users share an {field}"
