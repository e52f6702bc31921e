"""Runs cold-start programs for bench/run.py and reports each one's time and peak memory.

A separate, small process on purpose: Linux carries the parent's peak RSS into a child's
ru_maxrss across fork and exec, so the benchmark itself (boto3, requests loaded) would
set a ~50 MB floor under every figure. This process stays near 10 MB, below any child.

Usage: launcher.py <output file>. Protocol: one JSON line in, {"code": "<python -c program>"} or
{"argv": [program, args...]} (the Node peers); one JSON line out,
{"seconds", "maxrss_kb", "cpu_seconds", "exit", "output"}. Children get this process's environment
and working directory.
"""
import json
import os
import sys
import time


def run(argv, output_path):
    actions = [(os.POSIX_SPAWN_OPEN, 1, output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(output_path, errors="replace") as handle:
        output = handle.read()
    return {"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "exit": os.waitstatus_to_exitcode(status), "output": output}


def main():
    output_path = sys.argv[1]
    for line in sys.stdin:
        request = json.loads(line)
        answer = run(request.get("argv") or [sys.executable, "-c", request["code"]], output_path)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
