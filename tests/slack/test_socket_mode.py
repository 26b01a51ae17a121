"""Socket Mode: Bolt's handler, timed through its documented ``handle`` override point."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.socket_mode import TimedSocketModeHandler


async def test_the_timed_handler_is_the_socket_clients_only_listener() -> None:
    app = AsyncApp(token="xoxb-test", signing_secret="secret")
    acks: list[float] = []
    handler = TimedSocketModeHandler(app, "xapp-1-A1-test", on_ack=acks.append)
    try:
        # Bolt registers ``handle`` itself; nothing of the client is replaced or wrapped.
        assert handler.client.socket_mode_request_listeners == [handler.handle]
        assert "send_socket_mode_response" not in vars(handler.client)
    finally:
        await handler.close_async()
