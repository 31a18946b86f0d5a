"""`pgbackup-tui servers list|add|remove|test`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from ..core.client_ssl import over_ssl, prefer_ssl
from ..core.config import editing_config, load_config
from ..core.server_profile import ServerProfile
from ..core.connect import answering, connect, target_from_profile
from ..core.errors import EXIT_BAD_INPUT, EXIT_OK
from ..core.pgtools import find_client_tools, passed_over
from .config_notes import written
from .dump_restore import checked_bin_dir, with_prompted_password


def run_servers(args: argparse.Namespace) -> int:
    config = load_config()
    command = args.servers_command
    if command == "list":
        if args.json:
            # Every profile key on every entry, null where the profile leaves it out: a script reads
            # `["dsn"]` of a host/port profile, or `["port"]` of a DSN's, without a KeyError.
            print(json.dumps([asdict(profile) for profile in config.servers.values()], indent=2))
        elif not config.servers and not config.broken_servers:
            print(f"no servers yet ({config.path}); add one with: pgbackup-tui servers add NAME --dsn DSN")
        else:
            width = max(len(name) for name in [*config.servers, *config.broken_servers])
            for name, profile in config.servers.items():
                # The DSN and the fields beside it, which win over it (`--dsn host=h --port 5433`): the
                # DSN alone hid the port the profile connects to.
                where = " ".join(value if key == "dsn" else f"{key}={value}"
                                 for key, value in profile.to_toml().items() if key != "bin_dir")
                print(f"{name:<{width}}  {where}")
        for _body, why in config.broken_servers.values():  # with --json too: on stderr, and exit 2
            print(f"pgbackup-tui: error: {why}", file=sys.stderr)
        return EXIT_BAD_INPUT if config.broken_servers else EXIT_OK
    if command == "add":
        profile = ServerProfile(
            name=args.name, dsn=args.dsn, host=args.host, port=args.port, user=args.user,
            dbname=args.dbname, sslmode=args.sslmode, service=args.service,
            bin_dir=checked_bin_dir(args.bin_dir) if args.bin_dir is not None else None,  # a typo now, not later
        )
        with editing_config() as config:
            config.add_server(profile)
        path = written(config)
        print(f"added server '{args.name}' to {path}")
        return EXIT_OK
    if command == "remove":
        with editing_config() as config:
            config.remove_server(args.name)
        path = written(config)
        print(f"removed server '{args.name}' from {path}")
        return EXIT_OK
    if command == "test":
        profile = config.server(args.name)
        # On a terminal, a server that wants a password libpq has not found asks for it, as a dump
        # does: the error's "or the prompt" named a prompt this command never offered.
        target = with_prompted_password(target_from_profile(profile))
        with connect(target) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            assert row is not None  # SHOW always returns one row
            version = row[0]
            major = conn.info.server_version // 10000
            user = conn.info.user
            ssl_in_use = over_ssl(conn)
            answered = answering(target, conn)  # of several hosts, the one that answered
        label = f"server '{args.name}'"
        # Found now, not at the first dump: the one a dump would run, or the refusal it would meet.
        tools = prefer_ssl(find_client_tools(major, profile.bin_dir, label=label),
                           lambda accept: find_client_tools(major, profile.bin_dir, label=label, accept=accept),
                           target, ssl_in_use, "pg_dump", lambda line: print(line, file=sys.stderr))
        # The profile's bin_dir passed over (too old for the server), as a dump's log says it: the
        # line above named the pg_dump chosen with no word of the bin_dir the DBA had set.
        other = passed_over(tools, profile.bin_dir, major, f"the server's {major}")
        if other:
            print(f"pgbackup-tui: warning: {other}", file=sys.stderr)
        tried = f" (the first of {target.where()} to answer)" if answered is not target else ""
        print(f"{args.name}: PostgreSQL {version} at {answered.where()}{tried} as {user}; "
              f"pg_dump {tools.version} from {tools.bin_dir}")
        return EXIT_OK
    raise AssertionError(command)

