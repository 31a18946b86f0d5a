"""A TCP proxy on 127.0.0.1 that passes at most `rate_bps` bytes a second each way: a server behind a
slow link, for the progress tests and scripts/bench_progress.py. `listen_host="::1"` puts it on
IPv6 instead (the sandbox listens on 127.0.0.1 only): a server reached at an IPv6 address.

    with ThrottleProxy(upstream_port=sandbox.port, rate_bps=5e6) as proxy:
        ...connect to host=127.0.0.1 port=proxy.port...
        proxy.pause(min_bytes_down=1 << 20)  # the big streams stop (a link that hangs)
        proxy.resume()

Each direction has one token bucket shared by every connection (a link, not a per-connection
limit). The proxy runs its own event loop in a daemon thread, so synchronous and asynchronous
callers use it alike. It is bounded: at most `max_connections` at once (more are refused) and it
stops by itself after `lifetime_s`, whatever its caller does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass

CHUNK = 64 * 1024


class TokenBucket:
    """`rate` bytes a second on average, bursts of at most `burst` bytes. Reservations are served
    in the order they are made, so connections sharing a bucket share the rate."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    async def take(self, n: int) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= n
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


@dataclass
class Connection:
    bytes_down: int = 0  # server -> client, passed
    bytes_up: int = 0  # client -> server, passed


class ThrottleProxy:
    """See the module docstring."""

    def __init__(self, upstream_port: int, rate_bps: float, *, upstream_host: str = "127.0.0.1",
                 listen_host: str = "127.0.0.1", max_connections: int = 32, lifetime_s: float = 1800.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.rate_bps = rate_bps
        self.max_connections = max_connections
        self.lifetime_s = lifetime_s
        self.port = 0
        self.connections: list[Connection] = []
        self.refused = 0
        self._open = 0
        self._paused_above: int | None = None  # connections past this many bytes down are held
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()  # the connections' handlers, cancelled on close
        self._thread = threading.Thread(target=self._serve, name="throttle-proxy", daemon=True)

    # -- the caller's side ------------------------------------------------------------------------
    def __enter__(self) -> ThrottleProxy:
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the throttling proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive() and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)

    def pause(self, min_bytes_down: int = 0) -> None:
        """Hold every connection that has passed at least `min_bytes_down` bytes to its client: it
        forwards nothing more either way until resume() (the small ones, e.g. a monitor's, go on)."""
        self._paused_above = min_bytes_down

    def resume(self) -> None:
        self._paused_above = None

    @property
    def bytes_down(self) -> int:
        return sum(connection.bytes_down for connection in self.connections)

    # -- the proxy's thread -------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        burst = max(CHUNK, self.rate_bps / 20)  # 50 ms of the link: the bucket's grain
        self._down, self._up = TokenBucket(self.rate_bps, burst), TokenBucket(self.rate_bps, burst)
        server = await asyncio.start_server(self._accept, self.listen_host, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), self.lifetime_s)
        server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._open >= self.max_connections:
            self.refused += 1
            client_w.close()
            return
        self._open += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        connection = Connection()
        self.connections.append(connection)
        server_w = None
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
            await asyncio.gather(self._pump(client_r, server_w, connection, up=True),
                                 self._pump(server_r, client_w, connection, up=False))
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a side hung up, or the proxy closes (a cancelled handler would be logged as an error)
        finally:
            self._open -= 1
            self._tasks.discard(task)
            for writer in (client_w, server_w):
                if writer is not None:
                    writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Connection,
                    *, up: bool) -> None:
        bucket = self._up if up else self._down
        while data := await reader.read(CHUNK):
            while self._paused_above is not None and connection.bytes_down >= self._paused_above:
                await asyncio.sleep(0.01)
            await bucket.take(len(data))
            writer.write(data)
            await writer.drain()
            if up:
                connection.bytes_up += len(data)
            else:
                connection.bytes_down += len(data)
        if writer.can_write_eof():
            writer.write_eof()
