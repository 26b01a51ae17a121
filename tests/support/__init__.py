"""What the tests share beyond fixtures: real databases and real worker processes.

Fixtures stay in the ``conftest.py`` files (``tests/conftest.py`` for every folder); the
helpers they and the tests build on live here, once, instead of a copy per folder:

- :mod:`tests.support.databases`: migrated SQLite/PostgreSQL ``Database`` objects and
  throw-away PostgreSQL databases with random names (safe under pytest-xdist).
- :mod:`tests.support.processes`: a Python worker process whose JSON lines are collected
  as they arrive, waited on line by line, and killed with SIGKILL.
"""
