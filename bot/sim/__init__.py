"""Simulated peers of the bot on loopback: a Starpod backend and a Slack emulator."""
