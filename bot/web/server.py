"""Running the web app with uvicorn inside the bot's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

from bot.web.connection_guard import HEADER_TIMEOUT_SECS, MAX_CONNECTIONS, guarded_h11_protocol

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (the runtime handles them).

    ``uvicorn.Server.serve`` runs inside :meth:`capture_signals`, which takes SIGINT and
    SIGTERM for itself and raises them again once the server has stopped; that is its
    documented extension point for servers embedded in a larger program.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Capture nothing: the bot's own handlers stay in place."""
        yield


class WebServer:
    """A uvicorn server started and stopped on the running loop; ``url`` once started."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        header_timeout: float = HEADER_TIMEOUT_SECS,
        max_connections: int = MAX_CONNECTIONS,
        **options: object,
    ) -> None:
        """``header_timeout`` and ``max_connections`` bound idle and half-sent connections
        (``connection_guard.py``); ``options`` override the uvicorn settings below."""
        # Closes connections that send no request, or headers too slowly; caps their number.
        self.protocol = guarded_h11_protocol(
            header_timeout=header_timeout, max_connections=max_connections
        )
        settings: dict[str, object] = {
            "http": self.protocol,
            "log_level": "warning",
            "access_log": False,
            "lifespan": "off",
            # A graceful stop must not wait forever on a client that keeps a connection.
            "timeout_graceful_shutdown": 5,
            # Outlive the clients' and load balancers' idle timeouts (aiohttp 15 s, AWS ALB
            # 60 s): with uvicorn's 5 s, a request sent on a connection the server is just
            # closing fails with "server disconnected" (seen under load in tests).
            "timeout_keep_alive": 75,
        }
        # The caller's options win over these defaults (the ack bench keeps connections 300 s).
        settings.update(options)
        config = uvicorn.Config(app, host=host, port=port, **settings)  # type: ignore[arg-type]
        self._server = EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self._sock = sock
        self.host = host
        self.port = port
        if sock is not None:
            self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        """Serve in the background; returns the URL once the socket is bound."""
        sockets = [self._sock] if self._sock is not None else None
        self._task = asyncio.create_task(self._server.serve(sockets=sockets), name="web-server")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises the bind error
                raise RuntimeError("web server stopped before it started")
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests (up to 5 s), and return."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


def freeze_startup_heap() -> int:
    """Move everything allocated so far out of the garbage collector's reach.

    Call it once, when the process has finished starting (after the web server is up).
    The start-up heap (modules, apps, clients: ~130,000 objects) is long-lived; without
    this, every full collection walks it and stops the event loop for 50-80 ms, which was
    the whole p99 of the bot's Slack acknowledgements in ``bench/ack_latency.py`` (76 ms
    against 24 ms with it). Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket, so the URL is known before the app is built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@contextlib.asynccontextmanager
async def serve_web(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[WebServer]:
    """``async with serve_web(app) as server:`` → ``server.url`` on a free port."""
    server = WebServer(app, host=host, port=port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
