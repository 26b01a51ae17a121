"""The one instance-action service: create, pause, restart and kill, under a lock held in
the database, with the outcome recorded. Every entry point calls it and presents the result.

(Placeholder so the import contracts in ``pyproject.toml`` can name this layer; the
service itself is built in its own change.)
"""
