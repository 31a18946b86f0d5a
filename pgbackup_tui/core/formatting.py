"""Human-readable sizes, durations and server addresses, shared by the CLI and the TUI."""

from __future__ import annotations

import shlex


def human_bytes(size: float | None) -> str:
    """1536 -> '1.5 kB' (binary multiples, short units)."""
    if size is None:
        return "?"
    size = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PB"


def human_duration(seconds: float | None) -> str:
    """75 -> '1m15s'; 3725 -> '1h02m'."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def host_port(host: str, port: str | int | None = None) -> str:
    """A server's host and port as a person reads them, and the one place they are put together:
    an IPv6 address goes in brackets as in a URI ('[::1]:5432'; '::1:5432' reads as a host '::1:5432'
    or a port of 1:5432). A socket folder and a host name are as they are. libpq's lists of hosts
    ('db1,db2' with '5432' or '5432,5433') are paired host by host: 'db1:5432,db2:5433'."""
    if port is None or port == "":
        return _bracketed(host)
    hosts, ports = host.split(","), str(port).split(",")
    if len(hosts) > 1 and len(ports) in (1, len(hosts)):
        return ",".join(f"{_bracketed(one)}:{ports[0] if len(ports) == 1 else ports[i]}"
                        for i, one in enumerate(hosts))
    return f"{_bracketed(host)}:{port}"


def _bracketed(host: str) -> str:
    """An IPv6 address in brackets; anything else (a name, IPv4, a socket folder) as it is."""
    if ":" in host and not host.startswith(("[", "/", "@")):
        return f"[{host}]"
    return host


def option_argument(option: str, value: str) -> str:
    """An option and its value as a shell takes them, for a line that says what to type:
    `--exclude-db sales`, `--exclude-db 'with space'`; `--exclude-db=-leading` for a value that
    begins with a dash, which argparse would read as an option of its own and refuse."""
    quoted = shlex.quote(value)
    return f"{option}={quoted}" if value.startswith("-") else f"{option} {quoted}"
