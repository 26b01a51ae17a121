"""starpod-bot: a Slack chat-ops bot for Starpod cloud instances."""

__version__ = "0.1.0"
