"""`python -m devstack` as `make dev` runs it: it stops cleanly on signals, and says which port is busy."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from devstack import harness
from devstack.run import ROOT

pytestmark = pytest.mark.devstack

# Each round starts a whole stack (about a second here). Before the fix, SIGTERM's and SIGINT's
# races lost about one round in ten (SIGHUP every round): five rounds per signal weighs catching
# them against the suite's time (fifteen stops, about 15 s).
ROUNDS = 5
PORTS_FREE_WITHIN_SECONDS = 5


def children_of(pid):
    """The direct children of `pid`, from /proc (each service is one, in its own process group)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry))
    return found


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def bindable(port):
    # As the servers bind: SO_REUSEADDR, so only a listening socket (not TIME_WAIT) refuses us.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def kill_groups(pgids):
    """Cleanup for a failing test: what the dev stack left behind must not outlive the test."""
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def project_dir(name):
    return os.path.join(ROOT, ".devstack", f"project-{name}-{os.getpid()}")


def wait_until(check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_burst_of_signals_stops_every_service_and_frees_every_port(signum):
    """GNU make forwards the signal that its process group also got: it arrives twice, at once."""
    for round_ in range(ROUNDS):
        with harness.running(project_dir=project_dir("signals")) as stack:
            process = stack.process
            ports = [urlsplit(url).port for url in (stack.app_url, stack.authsignal_url, stack.cognito_url,
                                                    stack.dynamodb_url)]
            children = children_of(process.pid)
            assert len(children) == 4, children
            try:
                os.killpg(process.pid, signum)
                os.killpg(process.pid, signum)
                try:
                    code = process.wait(PORTS_FREE_WITHIN_SECONDS)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"round {round_}: still running {PORTS_FREE_WITHIN_SECONDS} s after two "
                                f"{signum.name}:\n" + "".join(stack.log[-20:]))
                assert wait_until(lambda: not any(group_alive(child) for child in children), 1), \
                    f"round {round_}: a service outlived the dev stack"
            finally:
                kill_groups(children)
            assert code == 0, "".join(stack.log[-20:])
            busy = [port for port in ports if not wait_until(lambda: bindable(port), 1)]
            assert not busy, f"round {round_}: ports still held after {signum.name}: {busy}"
            assert "Traceback" not in "".join(stack.log)


def test_a_signal_while_starting_stops_what_has_started():
    """Ctrl-C before the app is up: the emulators already running are stopped too."""
    ports = [harness.free_port() for _ in range(4)]
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--no-autoreload", "--linked-project",
         project_dir("starting"),
         "--app-port", str(ports[0]), "--authsignal-port", str(ports[1]), "--cognito-port", str(ports[2]),
         "--dynamodb-port", str(ports[3])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    children = []
    try:
        assert wait_until(lambda: len(children_of(process.pid)) >= 2, 30), "the emulators never started"
        children = children_of(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=PORTS_FREE_WITHIN_SECONDS)
        assert wait_until(lambda: not any(group_alive(child) for child in children), 1), output
    finally:
        kill_groups([process.pid, *children])
    assert "Traceback" not in output, output
    assert all(wait_until(lambda: bindable(port), 1) for port in ports), output


@pytest.mark.parametrize("which", ["app", "authsignal", "cognito", "dynamodb"])
def test_a_busy_port_is_one_line_naming_it_and_how_to_pick_another(which):
    ports = {name: harness.free_port() for name in ("app", "authsignal", "cognito", "dynamodb")}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports[which] = holder.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "--no-autoreload",
             *[f"--{name}-port={port}" for name, port in ports.items()]],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(ports[which]) in lines[0] and f"--{which}-port" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 10  # nothing was started first


def test_the_same_port_twice_is_refused_too():
    port = harness.free_port()
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "--no-autoreload", f"--app-port={port}",
         f"--authsignal-port={port}", f"--cognito-port={harness.free_port()}",
         f"--dynamodb-port={harness.free_port()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and len(result.stderr.splitlines()) == 1, result.stderr
    assert str(port) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("module", ["devstack.authsignal", "devstack.cognito"])
def test_an_emulator_on_a_busy_port_says_so_in_one_line(module):
    """Were the port taken between the dev stack's check and the emulator's start."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", module, "--port", str(port), "--project-dir", ROOT],
                                cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"{module.split('.')[1]}: cannot listen on 127.0.0.1:{port}: "
                                          "Address already in use"], result.stderr


@pytest.fixture(autouse=True)
def _remove_linked_projects():
    yield
    for name in ("signals", "starting"):
        shutil.rmtree(project_dir(name), ignore_errors=True)
