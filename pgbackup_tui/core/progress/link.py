"""What has reached the client: TCP bytes a process and its children have read (Linux).

The server's COPY counter (pg_stat_progress_copy) counts what the server has written into its
socket; over a slow link megabytes of it can still sit in socket buffers (the server's send
buffer, the network, a proxy, pg_dump's receive buffer) -- megabytes pg_dump has not got. The
kernel counts, for each TCP socket, the bytes it has received (tcp_info's tcpi_bytes_received)
and those still in its receive queue, unread; we read both through the sock_diag netlink
interface (what `ss -i` shows) for the sockets pg_dump and its --jobs workers hold open. None:
not Linux, no netlink, or no TCP socket (a Unix socket to a local server, whose buffers are a
few hundred kilobytes: nothing to correct).

link_rate times the link itself, once as a job starts, on the monitor's connection: the data's
prior pace over TCP.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time

import psycopg

_NETLINK_SOCK_DIAG = 4  # linux/netlink.h (Python's socket module does not name it)
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_DONE, _NLMSG_ERROR = 3, 2
_INET_DIAG_INFO = 2
_ESTABLISHED = 1 << 1  # a state mask: TCP_ESTABLISHED (closing sockets keep their last reading)
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_REQUEST = struct.Struct("=BBBxI48x")  # inet_diag_req_v2: family, protocol, ext, states, sockid
_MESSAGE_RQUEUE_AT, _MESSAGE_INODE_AT, _MESSAGE_SIZE = 56, 68, 72  # inet_diag_msg: ..., rqueue, wqueue, uid, inode
_BYTES_RECEIVED = struct.Struct("=Q")
_BYTES_RECEIVED_AT = 128  # tcp_info.tcpi_bytes_received (Linux 4.1 and later)
LINK_PROBE_BYTES = 1 << 20


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (pg_dump's --jobs workers are its children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError, ValueError), \
                open(f"/proc/{current}/task/{current}/children", encoding="ascii") as children:
            todo.extend(int(child) for child in children.read().split())
    return found


def socket_inodes(pids: list[int]) -> set[int]:
    """Inodes of the sockets the processes hold open."""
    inodes = set()
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"{fd_dir}/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(int(target[8:-1]))
    return inodes


def tcp_bytes_read(inodes: set[int]) -> dict[int, int] | None:
    """Bytes received and read by the application, of each TCP socket among `inodes` (inode -> bytes),
    None if the kernel cannot tell."""
    if not inodes:
        return {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(1.0)
            found: dict[int, int] = {}
            for family in (socket.AF_INET, socket.AF_INET6):
                _dump(diag, family, inodes, found)
            return found
    except (OSError, AttributeError, struct.error):
        return None


def _dump(diag: socket.socket, family: int, inodes: set[int], found: dict[int, int]) -> None:
    body = _REQUEST.pack(family, socket.IPPROTO_TCP, 1 << (_INET_DIAG_INFO - 1), _ESTABLISHED)
    diag.send(_HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0) + body)
    while True:
        data = diag.recv(1 << 16)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind = _HEADER.unpack_from(data, offset)[:2]
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR or length < _HEADER.size:
                raise OSError("sock_diag refused the request")
            message = offset + _HEADER.size
            inode = struct.unpack_from("=I", data, message + _MESSAGE_INODE_AT)[0]
            if inode in inodes:
                received = _tcp_info_received(data, message + _MESSAGE_SIZE, offset + length)
                if received is not None:
                    found[inode] = received - struct.unpack_from("=I", data, message + _MESSAGE_RQUEUE_AT)[0]
            offset += (length + 3) & ~3


def _tcp_info_received(data: bytes, at: int, end: int) -> int | None:
    """tcpi_bytes_received from the INET_DIAG_INFO attribute among those between `at` and `end`."""
    while at + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, at)
        if length < 4:
            return None
        if kind == _INET_DIAG_INFO and length - 4 >= _BYTES_RECEIVED_AT + _BYTES_RECEIVED.size:
            return int(_BYTES_RECEIVED.unpack_from(data, at + 4 + _BYTES_RECEIVED_AT)[0])
        at += (length + 3) & ~3
    return None


class ReceivedCounter:
    """Bytes a process tree has read from TCP sockets since the counter's first reading, sockets
    closed since included (their last reading is kept)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._seen: dict[int, int] = {}
        self._base: int | None = None
        self.available = True

    def read(self) -> int | None:
        """Bytes read since the first reading; None when the kernel cannot tell, or no TCP socket."""
        if not self.available:
            return None
        inodes = socket_inodes(process_tree(self.pid))
        readings = tcp_bytes_read(inodes)
        # The kernel cannot tell, or the process is connected through a Unix socket: a local
        # server, nothing to correct -- and no reason to pay for a netlink dump again (a few ms).
        if readings is None or (inodes and not readings and not self._seen):
            self.available = False
            return None
        for inode, received in readings.items():
            self._seen[inode] = max(self._seen.get(inode, 0), received)
        if not self._seen:  # no TCP socket (yet): a Unix socket, or not connected
            return None
        total = sum(self._seen.values())
        if self._base is None:
            self._base = total
        return total - self._base


def link_rate(conn: psycopg.Connection) -> float | None:
    """Bytes a second the link to the server passes, timed on `conn` (the progress monitor's own
    connection: no other is opened) by fetching LINK_PROBE_BYTES as a value, twice, the second time
    timed: the first takes what a link passes in a burst (a quarter MiB was not enough: 20 MB/s timed
    as 60) and what TCP's slow start holds back -- unless it took more than a second: a slow link,
    whose rate it tells well enough (a short probe). Only downloads are timed, for restores too: the
    link is assumed symmetric, because an upload probe is a megabyte-long bind parameter that a server
    with log_statement, log_min_duration_statement or pgaudit writes into its log.
    A round trip is in the time: on a link with a long one, a lower rate than the bytes alone would
    show, a prior the data's own pace soon replaces. None over a Unix socket (the server is on this
    machine). Raises psycopg.Error (the connection broke, or the caller's statement_timeout ran out)."""
    if not conn.info.host or conn.info.host.startswith("/"):
        return None
    took = 0.0
    for _ in range(2):
        started = time.perf_counter()
        conn.execute("SELECT repeat('x', %s)", (LINK_PROBE_BYTES,)).fetchone()
        took = max(time.perf_counter() - started, 1e-6)
        if took > 1.0:
            break
    return LINK_PROBE_BYTES / took
