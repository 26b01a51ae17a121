"""Logging: text and JSON lines, and secrets masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.config import LogSettings, load_settings
from bot.logging_setup import MASK, Redactor, configure_logging, secret_values

BOT_TOKEN = "xoxb-1111-2222-SECRETBOTTOKEN"
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        for f in list(handler.filters):
            handler.removeFilter(f)
    root.setLevel(level)


def _configure(fmt: str, secrets: list[str]) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(LogSettings(format=fmt), secrets=secrets, stream=stream)  # type: ignore[arg-type]
    return stream


def test_secret_values_cover_every_secret_setting() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "signing-secret-value",
            "SLACK_APP_TOKEN": "xapp-1-A1-app-token",
            "ANTHROPIC_API_KEY": "backend-api-key-value",
            "STARPOD_SSH_KEY_SECRET": "fernet-secret-value",
            "STARPOD_GATEWAY_KEYS": "ci:viewer:gateway-key-one,ops:admin:gateway-key-two",
        },
        config_file=None,
    )
    assert sorted(secret_values(settings)) == sorted(
        [
            BOT_TOKEN,
            "signing-secret-value",
            "xapp-1-A1-app-token",
            "backend-api-key-value",
            "fernet-secret-value",
            "gateway-key-one",
            "gateway-key-two",
        ]
    )


def test_redactor_masks_configured_values_and_secret_shapes() -> None:
    redact = Redactor(["my-signing-secret", "abc"])
    text = (
        f"secret my-signing-secret token xoxp-9-9-user xapp-1-X-y key {PEM} "
        "auth Bearer abc.def-ghi link https://bot.example/ssh-key/tok_EN-123 short abc"
    )
    out = redact(text)
    for leaked in (
        "my-signing-secret",
        "xoxp-9-9-user",
        "xapp-1-X-y",
        "b3BlbnNzaC1",
        "abc.def",
        "tok_EN",
    ):
        assert leaked not in out
    assert "Bearer [redacted]" in out and "/ssh-key/[redacted]" in out
    # Values shorter than MIN_SECRET_LEN are not masked: "abc" stays readable.
    assert out.endswith("short abc")


def test_redactor_masks_a_truncated_private_key() -> None:
    cut = PEM[:80]
    assert "b3BlbnNz" not in Redactor()(f"key: {cut}")


def test_text_lines_mask_message_args_extra_and_traceback(restore_root: None) -> None:
    stream = _configure("text", [BOT_TOKEN])
    log = logging.getLogger("bot.test.text")
    log.info("token is %s", BOT_TOKEN, extra={"header": f"Bearer {BOT_TOKEN}"})
    try:
        raise RuntimeError(f"failed with {BOT_TOKEN}")
    except RuntimeError:
        log.exception("boom")
    out = stream.getvalue()
    assert BOT_TOKEN not in out
    assert f"token is {MASK}" in out
    assert "RuntimeError: failed with [redacted]" in out
    assert " INFO  bot.test.text: " in out


def test_json_lines_are_json_with_extra_fields(restore_root: None) -> None:
    stream = _configure("json", ["gateway-key-secret"])
    log = logging.getLogger("bot.test.json")
    log.warning("key %s used", "gateway-key-secret", extra={"instance_id": "i-1", "n": 3})
    line = json.loads(stream.getvalue().strip())
    assert line["level"] == "WARNING"
    assert line["logger"] == "bot.test.json"
    assert line["msg"] == f"key {MASK} used"
    assert line["instance_id"] == "i-1" and line["n"] == 3
    assert line["ts"].endswith("+00:00")


def test_caplog_sees_redacted_records(restore_root: None, caplog: pytest.LogCaptureFixture) -> None:
    # The filter goes on every root handler, caplog's included.
    caplog.set_level(logging.INFO)
    _configure("text", [BOT_TOKEN])
    logging.getLogger("slack_sdk.test").info("sending %s", {"token": BOT_TOKEN})
    assert BOT_TOKEN not in caplog.text
    assert MASK in caplog.text


def test_configuring_twice_keeps_one_handler(restore_root: None) -> None:
    first = _configure("text", [])
    second = _configure("json", [])
    logging.getLogger("bot.test.twice").error("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().strip().splitlines()) == 1
