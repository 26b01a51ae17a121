"""No secret in any log, across a representative end-to-end run at DEBUG.

What is scanned, and why it is honest: the process's logging is configured exactly as the
runtime configures it (``configure_logging`` at DEBUG, with the configured secrets), writing
to a buffer; pytest's capture handler on the root logger sees every record too. The run
covers every path that touches a secret: slash commands including ``ssh`` (the simulator
issues private keys), a one-time link fetched, a failing backend (errors logged with their
request), a forged Slack request, monitor sweeps with a restart, alert delivery, and gateway
calls with every key and a forged one. Then both outputs are searched for the bot token,
signing secret, app token, backend API key, gateway keys, SSH key secret, and every private
key the simulator issued (whole, and line by line).

The real ``starpod-bot run`` subprocess's stderr at DEBUG is scanned the same way in
``tests/reliability/test_sigkill.py``.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import aiohttp
import httpx
import pytest

from bot.config import Settings
from bot.logging_setup import configure_logging, secret_values

OPERATOR = "U0OPERATOR"
BACKEND_API_KEY = "sk-backend-secret-key-1b2c3d4e5f"
GATEWAY_KEYS = {
    "viewer": "gw-viewer-secret-11111111",
    "operator": "gw-operator-secret-22222222",
    "admin": "gw-admin-secret-33333333",
}
APP_TOKEN = "xapp-1-A0TEST-0000000000-app-token-secret"
SSH_KEY_SECRET = "ssh-key-secret-for-the-fernet-derivation"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/ssh-key/([A-Za-z0-9_-]+)")


def _settings(bot: Any) -> Settings:
    return Settings.model_validate(
        {
            "backend": {"url": bot.sim.url, "api_key": BACKEND_API_KEY},
            "slack": {
                "bot_token": bot.slack.bot_token,
                "signing_secret": bot.slack.signing_secret,
                "app_token": APP_TOKEN,
            },
            "ssh": {"key_secret": SSH_KEY_SECRET},
            "gateway": {
                "keys": [{"name": r, "role": r, "key": k} for r, k in GATEWAY_KEYS.items()]
            },
            "log": {"level": "DEBUG"},
        }
    )


def _key_fragments(pem: str) -> list[str]:
    """The key and each base64 line of its body (a log might hold a piece of it)."""
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [pem, *[line for line in lines if len(line) >= 16]]


async def _scenario(bot: Any) -> int:
    """Drive every path that handles a secret; returns how many requests were made."""
    names = [bot.sim.instance(i)["name"] for i in bot.sim.instance_ids()]
    requests = 0
    for name in names[:3]:
        answer = bot.visible(await bot.command(f"ssh {name}", user=OPERATOR))
        requests += 1
        match = LINK.search(answer)
        assert match, answer
        if name == names[0]:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{match.group(1)}/ssh-key/{match.group(2)}") as response,
            ):
                assert response.status == 200
                await response.read()
    for text in ("list", f"health {names[1]}", f"logs {names[2]} --tail 5", "status"):
        await bot.command(text, user=OPERATOR)
        requests += 1
    bot.sim.set_faults(error_rate=1.0)
    await bot.command(f"restart {names[3]}", user=OPERATOR)
    await bot.sweep()  # a failed sweep logs its error
    bot.sim.set_faults()
    requests += 2
    # A forged Slack request (logged as a failed verification).
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            bot.events_url,
            data=b"command=%2Fstarpod&text=list",
            headers={"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"},
        ) as response,
    ):
        assert response.status == 401
    # A stale instance: sweeps, a restart, an incident delivered to Slack.
    bot.sim.stop_heartbeat(bot.sim.instance_ids()[4])
    for _ in range(5):
        bot.clock.advance(30)
        await bot.sweep()
        requests += 1
    # The gateway with every key, and a forged one.
    async with httpx.AsyncClient(base_url=bot.url, timeout=10) as http:
        for key in [*GATEWAY_KEYS.values(), "forged-gateway-key-0000"]:
            await http.get("/api/instances", headers={"X-API-Key": key})
            await http.post(
                f"/api/instances/{bot.sim.instance_ids()[5]}/restart", headers={"X-API-Key": key}
            )
            requests += 2
    return requests


async def test_no_secret_reaches_any_log(
    bot: Any, caplog: pytest.LogCaptureFixture, reliability_figures: dict[str, object]
) -> None:
    settings = _settings(bot)
    buffer = io.StringIO()
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    saved_filters = {h: list(h.filters) for h in saved_handlers}
    redaction = configure_logging(settings.log, secrets=secret_values(settings), stream=buffer)
    caplog.set_level(logging.DEBUG)
    try:
        requests = await _scenario(bot)
    finally:
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
                handler.close()
        for handler, filters in saved_filters.items():
            handler.filters[:] = filters
        root.setLevel(saved_level)
    assert redaction is not None

    logs = {"bot log (as configured by the runtime)": buffer.getvalue(), "caplog": caplog.text}
    assert len(logs["bot log (as configured by the runtime)"].splitlines()) > 50
    secrets = {f"secret {i}": value for i, value in enumerate(secret_values(settings))}
    assert len(secrets) == 5 + len(GATEWAY_KEYS)  # bot, signing, app, backend, ssh + gateway
    keys = bot.sim.issued_private_keys
    assert len(keys) >= 3
    for n, pem in enumerate(keys):
        for m, fragment in enumerate(_key_fragments(pem)):
            secrets[f"private key {n} part {m}"] = fragment
    leaks = [
        f"{what} in {where}"
        for where, text in logs.items()
        for what, value in secrets.items()
        if value in text
    ]
    assert leaks == [], leaks
    reliability_figures.update(
        requests=requests,
        log_lines_scanned=sum(len(t.splitlines()) for t in logs.values()),
        secrets_checked=len(secrets),
        private_keys_issued=len(keys),
        leaks=0,
    )
