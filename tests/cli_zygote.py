"""A process that has imported the CLI once and forks a child for each `run_cli` (cliutil.py).

Each start of `python -m pgbackup_tui` spends about 0.25 s importing psycopg and our modules before
it reads its arguments; the suite starts the CLI some 1,500 times. A child forked from here has
them imported already and then runs exactly what `python -m pgbackup_tui ARGS` runs, in a process
of its own: its own environment, working folder, umask, stdin/stdout/stderr, exit code and teardown
(atexit, threads, flushes), via `raise SystemExit(main())` as pgbackup_tui/__main__.py does.

What differs from a fresh interpreter, and why it does not matter to the tests that use it:
- its command line (/proc/PID/cmdline) is this script's, with `-m pgbackup_tui` in it, which is
  what the tool's own look at a process checks; the tests that read a live CLI's command line
  start it themselves (Popen), not through run_cli;
- the interpreter's own start-up settings (locale, PYTHON* variables) are this process's: run_cli
  starts a real process when the environment it is given changes any of them.

Protocol, over the SOCK_SEQPACKET socket whose descriptor is argv[1]: a JSON request {"args",
"env", "cwd", "umask"} with four descriptors attached: the run's stdin, stdout and stderr, and a
socket of its own on which the answers come: {"pid": N} once started, then {"exit": CODE} (CODE
negative for a signal, as subprocess's). Runs may overlap (tests start commands from threads):
each has a waiter, a fork of this process that forks the run, answers and ends, so that this loop
never waits on a run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import socket
import sys
import time

import pgbackup_tui.commands
import pgbackup_tui.core


def _import_everything_a_command_may() -> None:
    # The commands import some modules only when they run; a child that imported them itself
    # would pay that at each start. Not ui/: only `pgbackup-tui` without a command runs the TUI.
    for package in (pgbackup_tui.core, pgbackup_tui.commands):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    importlib.import_module("pgbackup_tui.cli")


def _run_child(request: dict, fds: list[int]) -> None:
    """In the forked child: become `python -m pgbackup_tui ARGS`. Never returns."""
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # this socket, the received descriptors
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    sys.path[0] = os.getcwd()  # as `python -m` puts it (this script's folder, here)
    sys.argv = [os.path.join(os.path.dirname(pgbackup_tui.__file__), "__main__.py"), *request["args"]]
    from pgbackup_tui.cli import main

    raise SystemExit(main())


def _wait_for(request: dict, fds: list[int]) -> None:
    """In the waiter: fork the run, say its pid, wait for its end, say its exit code. Never returns."""
    answers = socket.socket(fileno=fds[3])
    pid = os.fork()
    if pid == 0:  # outside any try: the run's SystemExit must reach the interpreter's own exit
        answers.close()
        _run_child(request, fds[:3])
    try:
        for fd in fds[:3]:
            os.close(fd)
        answers.send(json.dumps({"pid": pid}).encode())
        _, status = os.waitpid(pid, 0)
        answers.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
    finally:
        os._exit(0)  # nothing of this process's own teardown: it is a copy of the zygote


def serve(sock: socket.socket) -> None:
    while True:
        message, fds, _flags, _address = socket.recv_fds(sock, 1 << 20, 4)
        if not message:
            return  # the test process is gone
        if os.fork() == 0:
            sock.close()
            _wait_for(json.loads(message), fds)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(ChildProcessError):  # the waiters that have ended
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass


if __name__ == "__main__":
    _import_everything_a_command_may()
    serve(socket.socket(fileno=int(sys.argv[1])))
