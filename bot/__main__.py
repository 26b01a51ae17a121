"""``python -m bot`` runs the ``starpod-bot`` command."""

from bot.cli import main

main()
