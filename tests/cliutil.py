"""Running the real console script the way a user (or cron) does."""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# What the interpreter reads once as it starts (its locale, its I/O encoding and buffering, its
# import path): a child forked from the zygote keeps the zygote's, so a run_cli given other values
# of these gets a process of its own.
_SET_AT_START = ("LANG", "LANGUAGE", "LC_", "PYTHON")
_ZYGOTE_SCRIPT = Path(__file__).with_name("cli_zygote.py")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`pgbackup-tui ARGS` in a process of its own with this process's environment (PGBACKUP_TUI_HOME
    included): forked from a process that imported the CLI once (cli_zygote.py: the same code, 0.25 s
    less per start), or started afresh where the environment changes what the interpreter reads as
    it starts (then exactly `python -m pgbackup_tui ARGS`)."""
    full_env = dict(os.environ if env is None else env)
    zygote = _zygote()
    if _start_settings(full_env) != zygote.start_settings:
        return run_cli_afresh(*args, env=full_env, timeout=timeout)
    return zygote.run([sys.executable, "-m", "pgbackup_tui", *args], full_env, timeout)


def run_cli_afresh(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m pgbackup_tui ARGS` started from nothing (see run_cli)."""
    full_env = dict(os.environ if env is None else env)
    return subprocess.run([sys.executable, "-m", "pgbackup_tui", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)


def _start_settings(env: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(_SET_AT_START)}


class _Zygote:
    """This test process's cli_zygote.py, started on first use; it ends when this process does
    (its socket's other end closes)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.start_settings = _start_settings(os.environ)
        # `-m pgbackup_tui` in its command line as in a real start's (the tool's look at a process
        # checks for pgbackup); the zygote reads only its first argument.
        self.process = subprocess.Popen(
            [sys.executable, str(_ZYGOTE_SCRIPT), str(theirs.fileno()), "-m", "pgbackup_tui"],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + timeout
        request = json.dumps({"args": argv[3:], "env": env, "cwd": os.getcwd(), "umask": _umask()}).encode()
        with contextlib.ExitStack() as closing:
            out_read, out_write = os.pipe()
            err_read, err_write = os.pipe()
            ours_to_close = {out_read, out_write, err_read, err_write}
            closing.callback(_close_all, ours_to_close)
            answers, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            closing.enter_context(answers)
            closing.enter_context(theirs)
            devnull = closing.enter_context(open(os.devnull, "rb"))
            socket.send_fds(self.sock, [request], [devnull.fileno(), out_write, err_write, theirs.fileno()])
            for fd in (out_write, err_write):
                os.close(fd)  # theirs now: the pipes end when the run (and what it started) lets go
                ours_to_close.discard(fd)
            theirs.close()
            answers.settimeout(timeout)
            started = answers.recv(1 << 16)
            if not started:
                raise RuntimeError(f"the CLI's zygote did not start {argv[3:]} (see the worker's stderr)")
            pid = json.loads(started)["pid"]
            stdout, stderr, ended = _read_both(out_read, err_read, deadline)
            if ended:
                answers.settimeout(max(deadline - time.monotonic(), 0.001))
                with contextlib.suppress(TimeoutError):
                    return subprocess.CompletedProcess(argv, json.loads(answers.recv(1 << 16))["exit"], stdout, stderr)
            # As subprocess.run at its timeout: the run is killed, unless it has ended (and left its
            # output to a process it started); what it wrote so far goes with the error.
            answers.setblocking(False)
            try:
                answers.recv(1 << 16)
            except BlockingIOError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(argv, timeout, output=stdout, stderr=stderr)
        raise AssertionError("unreachable")


def _close_all(fds: set[int]) -> None:
    for fd in fds:
        os.close(fd)


def _umask() -> int:
    """This process's umask, without setting it (os.umask would, for a moment, for every thread)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line in /proc/self/status")


_zygote_of_this_process: _Zygote | None = None
_zygote_starting = threading.Lock()


def _zygote() -> _Zygote:
    global _zygote_of_this_process
    with _zygote_starting:  # tests start runs from threads: one zygote for all of them
        if _zygote_of_this_process is None or not _zygote_of_this_process.alive():
            _zygote_of_this_process = _Zygote()
        return _zygote_of_this_process


def _read_both(out_fd: int, err_fd: int, deadline: float) -> tuple[str, str, bool]:
    """Both pipes to their end or to the deadline, as subprocess's communicate reads them (text,
    universal newlines); and whether they ended."""
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
        ended = not selector.get_map()
    return _text(b"".join(chunks[out_fd])), _text(b"".join(chunks[err_fd])), ended


def _text(data: bytes) -> str:
    # As subprocess.run(text=True): the locale's encoding, strict, and \r\n / \r read as \n.
    return io.TextIOWrapper(io.BytesIO(data)).read()
