"""starpod-bot: a Slack chat-ops bot for Starpod cloud instances."""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source of truth: pyproject.toml's version, as installed.
    __version__ = version("starpod-bot")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
