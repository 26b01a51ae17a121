"""Socket Mode: Slack's requests over a WebSocket the bot opens, for bots without a public URL.

A thin seam over Bolt's ``AsyncSocketModeHandler`` (aiohttp); the same ``AsyncApp`` and
listeners serve both modes, and acknowledgements go back over the socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

AckObserver = Callable[[float], None]


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's handler, reporting how long each envelope took until its acknowledgement.

    ``handle`` is the handler's documented override point: it runs the app (which returns
    once the listener acknowledged) and sends the acknowledgement back over the socket.
    """

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        on_ack: AckObserver | None = None,
        ping_interval: float = 10.0,
    ) -> None:
        super().__init__(app, app_token, ping_interval=ping_interval)
        self._on_ack = on_ack

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        """Answer one envelope, then report the seconds from its arrival to the answer sent."""
        started = time.perf_counter()
        await super().handle(client, req)  # type: ignore[arg-type]
        if self._on_ack is not None:
            self._on_ack(time.perf_counter() - started)


async def start_socket_mode(
    app: AsyncApp,
    app_token: str,
    *,
    on_ack: AckObserver | None = None,
    ping_interval: float = 10.0,
) -> AsyncSocketModeHandler:
    """Connect to Slack with the app-level token (``xapp-…``); returns the handler to close.

    ``ping_interval`` (s) is how often the link is checked; a dead link is replaced within
    about that time (tests shorten it).
    """
    handler = TimedSocketModeHandler(app, app_token, on_ack=on_ack, ping_interval=ping_interval)
    await handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt's is unannotated
    return handler


async def stop_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Disconnect and close the socket client."""
    await handler.close_async()  # type: ignore[no-untyped-call]  # Bolt's is unannotated
