"""A webhook receiver for tests and the demo: a real HTTP server on loopback.

It keeps every request as it arrived (raw body and headers, so a test can check the
signature the way a real receiver would), answers ``204`` by default, and can be told to
answer the next N requests with any status (``429`` with ``Retry-After``, ``5xx``, ``400``
…) through :meth:`WebhookReceiver.fail_next`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from bot.sim.listening import listen


@dataclass
class Delivery:
    """One request: what the status was, its raw body and its headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class WebhookReceiver:
    """Listens on ``/hook``; :attr:`deliveries` holds every request, oldest first."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._faults: list[tuple[int, int, float | None]] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/hook``."""
        if self._url is None:
            raise RuntimeError("the webhook receiver is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port); returns :attr:`url`."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        self._url = f"http://{host}:{await listen(self._runner, host, port)}/hook"
        return self._url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests with ``status``."""
        self._faults.append((status, count, retry_after))

    @property
    def accepted(self) -> list[Delivery]:
        """The requests answered with a 2xx."""
        return [d for d in self.deliveries if 200 <= d.status < 300]

    async def wait_for(self, count: int) -> list[Delivery]:
        """Wait until ``count`` requests have arrived (of any outcome); callers bound it
        with ``asyncio.timeout``."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.deliveries) >= count)
        return list(self.deliveries)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, headers = 204, {}
        if self._faults:
            status, count, retry_after = self._faults[0]
            if count <= 1:
                self._faults.pop(0)
            else:
                self._faults[0] = (status, count - 1, retry_after)
            if retry_after is not None:
                headers["Retry-After"] = f"{retry_after:g}"
        async with self._arrived:
            self.deliveries.append(Delivery(status, body, dict(request.headers)))
            self._arrived.notify_all()
        if status == 204:
            return web.Response(status=204)
        return web.Response(status=status, text=f"answer {status}", headers=headers)
