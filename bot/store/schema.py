"""The complete metadata: every model module, imported for its tables.

Alembic's ``migrations/env.py`` and the migrations-vs-models test read
:data:`metadata` from here, so a model module that is not imported below is
invisible to autogenerate. Later features add one import line each
(``bot.store.slack_models``, ``bot.store.alert_models``).
"""

from __future__ import annotations

from sqlalchemy import MetaData

import bot.store.alert_models  # (incidents, Slack outbox, mutes)
import bot.store.maintenance_models  # (maintenance windows)
import bot.store.models  # noqa: F401  (registers its tables on Base.metadata)
from bot.store import slack_models  # noqa: F401  (audit log, one-time SSH key links)
from bot.store.base import Base

metadata: MetaData = Base.metadata
