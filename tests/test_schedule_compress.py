"""A schedule's compression takes what `dump --compress` takes (a gzip level, METHOD[:LEVEL]), is
checked as dump checks it (a method the schedule's pg_dump lacks: refused when saved if its server
answers, said by the run otherwise), reads from config files of either form, and left out is
dump's measured default. On the sandbox, with each pg_dump picked by the profile's bin_dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliutil import run_cli
from pgbackup_tui.core.config import load_config, save_config
from pgbackup_tui.core.custom_archive import read_header
from pgbackup_tui.core.defaults import fast_compression, supports
from pgbackup_tui.core.errors import ConfigError
from pgbackup_tui.core.pgtools import installed_client_tools
from pgbackup_tui.core.schedules import Schedule, schedule_from_toml
from pgbackup_tui.core.server_profile import ServerProfile

WHERE = "config.toml: [schedules.n]"


def tools_with_and_without(sandbox, method: str):
    """A pg_dump that can serve the sandbox with `method`, and one that cannot (derived, never written)."""
    fit = [tools for tools in installed_client_tools() if tools.major >= sandbox.major]
    having = [tools for tools in fit if supports(tools, method)]
    lacking = [tools for tools in fit if not supports(tools, method)]
    if not having or not lacking:
        pytest.fail(f"this test needs a pg_dump >= {sandbox.major} with {method} and one without; found "
                    f"{[(t.version, str(t.bin_dir)) for t in fit]} (pip install 'pgbackup-tui[sandbox]')")
    return having[0], lacking[0]


def _profiles(sandbox, having, lacking) -> None:
    config = load_config()
    config.servers["with"] = ServerProfile(name="with", dsn=sandbox.dsn(), bin_dir=str(having.bin_dir))
    config.servers["without"] = ServerProfile(name="without", dsn=sandbox.dsn(), bin_dir=str(lacking.bin_dir))
    save_config(config)


def test_config_files_take_a_level_or_a_method_and_say_a_bad_one_by_its_key():
    base = {"server": "s", "cron": "30 2 * * *", "database": "shop"}
    assert schedule_from_toml("n", base | {"compress": 6}, WHERE).compress == 6  # as files had it before
    assert schedule_from_toml("n", base | {"compress": "zstd:3"}, WHERE).compress == "zstd:3"
    assert schedule_from_toml("n", base | {"compress": "LZ4"}, WHERE).compress == "lz4"
    set_body = {"server": "s", "cron": "30 2 * * *", "what": "set", "compress": "zstd"}
    assert schedule_from_toml("n", set_body, WHERE).compress == "zstd"  # a set's archives are pg_dump's
    for value, said in ((12, "compress = 12: a gzip level is 0 to 9"),
                        ("zstd:99", 'compress = "zstd:99": zstd takes a level from 1 to 22'),
                        ("brotli", "compress = \"brotli\": unknown method 'brotli'"),
                        (True, "compress must be a gzip level 0-9")):
        with pytest.raises(ConfigError) as caught:
            schedule_from_toml("n", base | {"compress": value}, WHERE)
        assert str(caught.value).startswith(f"{WHERE}: {said}"), caught.value
    # Written back as given: a level stays a number (older versions read it), a method is text.
    assert Schedule(name="n", server="s", cron="* * * * *", database="d", compress=6).to_toml()["compress"] == 6
    assert Schedule(name="n", server="s", cron="* * * * *", database="d",
                    compress="zstd:3").to_toml()["compress"] == "zstd:3"


def test_a_schedule_compresses_as_dump_does_and_what_its_pg_dump_lacks_is_said(sandbox, home, tmp_path):
    having, lacking = tools_with_and_without(sandbox, "zstd:3")
    _profiles(sandbox, having, lacking)

    # Saved where its pg_dump can, and run with it.
    done = run_cli("schedule", "add", "z", "--server", "with", "--db", "shop", "--cron", "30 2 * * *",
                   "--compress", "zstd:3")
    assert done.returncode == 0, done.stderr
    assert load_config().schedules["z"].compress == "zstd:3"
    listed = run_cli("schedule", "list")
    assert "shop (custom, compress zstd:3)" in listed.stdout, listed.stdout
    assert json.loads(run_cli("schedule", "list", "--json").stdout)[0]["compress"] == "zstd:3"
    ran = run_cli("run", "z", "--json")
    assert ran.returncode == 0, ran.stderr
    archive = Path(json.loads(ran.stdout)["backup_path"])
    assert json.loads(Path(f"{archive}.manifest.json").read_text())["options"]["compress"] == "zstd:3"
    assert read_header(archive.read_bytes()[:4096]).compression == "zstd"

    # Refused, exit 2 and one line, where the server's pg_dump cannot: nothing saved.
    refused = run_cli("schedule", "add", "n", "--server", "without", "--db", "shop", "--cron", "30 2 * * *",
                      "--compress", "zstd:3")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"--compress zstd:3: pg_dump {lacking.version}" in refused.stderr and "nothing was saved" in refused.stderr
    assert "n" not in load_config().schedules
    bad = run_cli("schedule", "add", "n", "--server", "with", "--db", "shop", "--cron", "30 2 * * *",
                  "--compress", "zstd:99")
    assert bad.returncode == 2 and "zstd takes a level from 1 to 22" in bad.stderr

    # A cluster set's archives are pg_dump's too: the same values, refused before anything is written.
    set_refused = run_cli("dumpall", "--server", "without", "--set", "--db", "shop", "--compress", "zstd:3",
                          "--output", str(tmp_path / "s.set"), "--progress", "none")
    assert set_refused.returncode == 2 and f"--compress zstd:3: pg_dump {lacking.version}" in set_refused.stderr
    assert not (tmp_path / "s.set").exists() and not (tmp_path / "s.set.partial").exists()

    # Saved while the server could not tell (by hand here): the run fails naming the key to change.
    with (home / "config.toml").open("a") as file:
        file.write('\n[schedules.late]\nserver = "without"\ncron = "30 2 * * *"\ndatabase = "shop"\n'
                   'compress = "zstd:3"\n')
    failed = run_cli("run", "late")
    assert failed.returncode == 1
    assert f'compress = "zstd:3" of schedule late: pg_dump {lacking.version}' in failed.stderr, failed.stderr


def test_a_schedule_without_compress_gets_dump_s_measured_default(sandbox, home):
    having, _lacking = tools_with_and_without(sandbox, "zstd:1")
    _profiles(sandbox, having, _lacking)
    config = load_config()
    config.schedules["d"] = Schedule(name="d", server="with", cron="30 2 * * *", database="shop")
    save_config(config)
    assert "compress" not in (home / "config.toml").read_text()
    ran = run_cli("run", "d", "--json")
    assert ran.returncode == 0, ran.stderr
    archive = json.loads(ran.stdout)["backup_path"]
    assert json.loads(Path(f"{archive}.manifest.json").read_text())["options"]["compress"] == fast_compression(having)
