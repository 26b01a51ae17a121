"""Where the Alembic migrations live and how to configure Alembic in code.

The repository's top level is fixed, so ``alembic.ini`` sits inside
``migrations/`` and the configuration is built here instead of read from a
file: ``script_location`` is the migrations folder, and the URL (or an open
connection) travels in ``Config.attributes``, never through the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from bot.store.errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# A migration's file: its revision id (four digits), then a name.
_REVISION_FILE = re.compile(r"(\d{4})_\w+\.py")


def migrations_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/``.

    A source checkout (and the Docker image, which copies it) has it at the
    repository root; a wheel may ship it inside the package as
    ``bot/_migrations``.
    """
    for candidate in (_PACKAGE_ROOT.parent / "migrations", _PACKAGE_ROOT / "_migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(
        f"migrations not found next to {_PACKAGE_ROOT} (looked for migrations/env.py); "
        "run from a source checkout or an image that includes migrations/"
    )


def alembic_config(url: str, *, connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for ``url``; with ``connection``, env.py migrates on it."""
    from alembic.config import Config

    directory = migrations_dir()
    cfg = Config(str(directory / "alembic.ini"))
    cfg.set_main_option("script_location", str(directory))
    cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision of the migrations that ship with this version.

    Read from the file names (``0008_heartbeat_chunks.py`` is revision ``0008``), not
    through Alembic, so that a start finding its database migrated never imports Alembic.
    The names are one numbered line, and its last is Alembic's head:
    tests/store/test_store_migrations.py holds them to both.
    """
    numbers = (
        _REVISION_FILE.fullmatch(path.name) for path in (migrations_dir() / "versions").iterdir()
    )
    return max((found.group(1) for found in numbers if found is not None), default=None)
