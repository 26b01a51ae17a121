"""Socket Mode: Slack's requests over a WebSocket the bot opens, for bots without a public URL.

A thin seam over Bolt's ``AsyncSocketModeHandler`` (aiohttp); the same ``AsyncApp`` and
listeners serve both modes, and acknowledgements go back over the socket.
"""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp


async def start_socket_mode(app: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """Connect to Slack with the app-level token (``xapp-…``); returns the handler to close."""
    handler = AsyncSocketModeHandler(app, app_token)
    await handler.connect_async()
    return handler


async def stop_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Disconnect and close the socket client."""
    await handler.close_async()
