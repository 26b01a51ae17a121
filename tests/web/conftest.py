"""The web tests run against the same end-to-end bot as tests/slack (fixtures re-exported)."""

from tests.slack.conftest import bot, db, sim

__all__ = ["bot", "db", "sim"]
