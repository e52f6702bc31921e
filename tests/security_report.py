"""`make security`: run the security suites and print what they tried and what held.

    .venv/bin/python tests/security_report.py [extra pytest args]

Every figure comes from this run's results: a small pytest plugin collects each test's
outcome and the properties the tests record (fuzz cases and 5xx, concurrent sign-ins and
successes, log lines checked). Exits non-zero when any test failed.
"""
import os
import sys
from collections import defaultdict

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = {
    "attacks": "tests/test_security_attacks.py",
    "takeover": "tests/test_security_takeover.py",
    "faults": "tests/test_security_faults.py",
    "fuzz": "tests/test_security_fuzz.py",
    "load": "tests/test_security_load.py",
    "logs": "tests/test_security_logs.py",
    "limits": "tests/test_security_limits.py",
}


class Collector:
    def __init__(self):
        self.outcomes = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})
        self.properties = defaultdict(int)
        self.failed = []

    def pytest_runtest_logreport(self, report):
        suite = next((name for name, path in SUITES.items() if report.nodeid.startswith(path)), None)
        if suite is None:
            return
        if report.when == "teardown":  # every phase's report carries them; count once
            for key, value in report.user_properties:
                if isinstance(value, (int, float)):
                    self.properties[key] += value
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "passed" if report.passed else "skipped" if report.skipped else "failed"
            self.outcomes[suite][outcome] += 1
            if outcome == "failed":
                self.failed.append(report.nodeid)
        elif report.when == "teardown" and report.failed:
            self.outcomes[suite]["failed"] += 1
            self.outcomes[suite]["passed"] -= 1
            self.failed.append(report.nodeid + " (teardown)")


def table(collector):
    o, p = collector.outcomes, collector.properties

    def tried(suite):
        return sum(o[suite].values())

    rows = [
        ("attacks tried / refused", tried("attacks"), o["attacks"]["passed"]),
        ("takeover attacks tried / refused", tried("takeover"), o["takeover"]["passed"]),
        ("faults injected / survived", tried("faults"), o["faults"]["passed"]),
        ("fuzz cases / 5xx", p["fuzz_cases"], p["fuzz_5xx"]),
        ("concurrent sign-ins / succeeded", p["concurrent_sign_ins"], p["concurrent_succeeded"]),
        ("log lines checked / secrets found", p["log_lines"], p["log_leaks"]),
        ("limit attacks and store faults / held", tried("limits"), o["limits"]["passed"]),
        ("requests over a limit / let through", p["limit_hostile_requests"], p["limit_let_through"]),
    ]
    width = max(len(label) for label, _, _ in rows)
    lines = [f"{'':{width}}  {'count':>7}  {'result':>7}", "-" * (width + 18)]
    lines += [f"{label:{width}}  {a:>7}  {b:>7}" for label, a, b in rows]
    return "\n".join(lines)


# make security tries at least 10,000 generated requests (make test runs 150 per fuzz test):
# 1,700 examples for each cheap fuzz test (one of them makes three requests an example), a
# fifth of that for the four that reach the emulators.
FUZZ_EXAMPLES = "1700"


def main(argv):
    os.environ.setdefault("SECURITY_FUZZ_EXAMPLES", FUZZ_EXAMPLES)
    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    collector = Collector()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *SUITES.values(), *argv], plugins=[collector])
    print("\nSecurity report (this run)\n")
    print(table(collector))
    if collector.failed:
        print("\nFailed:\n  " + "\n  ".join(collector.failed))
    status = "all held" if code == 0 and not collector.failed else "SOMETHING GOT THROUGH (see above)"
    print(f"\n{status}")
    return int(code) or (1 if collector.failed else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
