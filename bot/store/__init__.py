"""The store: SQLAlchemy 2 (async) models, database access, retention and leader election.

SQLite (through aiosqlite) is the default; PostgreSQL (through asyncpg) is for
teams running several replicas. Nothing here opens anything on import: the
runtime builds one :class:`~bot.store.database.Database` and passes it down.

Modules and their public API
----------------------------
``bot.store.database``
    ``normalise_url(url) -> str`` — ``sqlite:///x`` → ``sqlite+aiosqlite:///x``;
    ``postgres(ql)://`` → ``postgresql+asyncpg://``; anything else raises
    ``UnsupportedDatabaseError``.

    ``Database(url, *, echo=False, busy_timeout_ms=5000)`` with attributes
    ``url`` (normalised), ``safe_url`` (password masked), ``engine``
    (``AsyncEngine``), ``dialect`` (``"sqlite"`` | ``"postgresql"``),
    ``sqlite_path`` (``Path`` | None), and methods:

    * ``session() -> AsyncSession`` — for reads: ``async with db.session() as s:``.
    * ``await run(fn, *, attempts=8) -> T`` — **how every writer writes**: opens
      a session and a transaction (``BEGIN IMMEDIATE`` on SQLite), awaits
      ``fn(session)``, commits, returns its result. SQLite busy/locked and
      PostgreSQL deadlock/serialization failures are rolled back and retried
      with back-off (``fn`` may run more than once: do everything through the
      session it gets); after the last attempt ``DatabaseBusyError``. So is a
      connection lost before the commit (the server ended the session: a
      restart, a failover), on a new connection; one lost at the commit is not
      (it may have committed). Other errors propagate at once.
    * ``await upgrade(revision="head")``, ``await downgrade(revision)``,
      ``await current_revision()`` — Alembic, in code (``starpod-bot db upgrade``,
      ``run`` and ``demo`` call ``upgrade()``).
    * ``await ping() -> bool``, ``await dispose()``, ``async with Database(url) as db``.

    SQLite connections get WAL, ``busy_timeout`` and ``foreign_keys=ON``; the
    file's folder is created if missing.

``bot.store.records`` — plain inputs, no ORM needed:
    ``InstanceSnapshot(id, name, region, status)``,
    ``HeartbeatSampleIn(instance_id, sampled_at, cpu_percent, memory_mb, disk_mb,
    last_heartbeat, uptime_secs)``. All datetimes must be timezone-aware. And the
    history readers' output, ``StoredHeartbeat`` (same fields as attributes).

``bot.store.queries`` — session first, keyword-only after; none commits:
    ``upsert_instances(s, *, instances, seen_at)``;
    ``record_heartbeats(s, *, samples)`` (one head batch; instances must be
    upserted first); ``last_statuses(s) -> dict[str, str]``;
    ``known_instances(s) -> list[InstanceRow]``;
    ``record_status_change(s, *, instance_id, from_status, to_status, at, cause,
    actor=None, reason=None, source=None) -> StatusChange`` (cause
    ``monitor|user|backend``; source ``slack|gateway|incident|monitor|cli`` or None);
    ``status_history(s, instance_id, *, limit=20)`` (newest first);
    ``restart_history(s, instance_id, *, limit=20)`` (newest first);
    ``is_known_instance(s, instance_id) -> bool``;
    ``heartbeat_history(s, instance_id, *, since, until=None) -> list[StoredHeartbeat]``
    (oldest first, ``since <= sampled_at < until``; chunks plus head);
    ``record_restart(s, *, instance_id, at, cause, actor=None, ok=True, error=None,
    source=None)`` (cause ``monitor|user``); ``restarts_since(s, instance_id, since)`` (oldest
    first); ``uptime_ratio(s, instance_id, *, since, until) -> float | None``.
    Recording a status change or restart for an id never listed creates a
    placeholder instance row (name/region None).

``bot.store.models`` — ``InstanceRow`` (``instances``), the heartbeat history
    (``HeartbeatSeries``, ``HeartbeatBatch``, ``HeartbeatHead``, ``HeartbeatChunk``: see
    ``bot.store.heartbeats``), ``HeartbeatHourly`` (``heartbeat_hourly``),
    ``StatusChange`` (``status_changes``), ``RestartAttempt``
    (``restart_attempts``), ``LeaderLease`` (``leader_lease``), ``InstanceLease``
    (``instance_leases``: the per-instance action lock of ``bot.instances``). Every datetime
    column is ``bot.store.base.UtcDateTime``: aware UTC in, aware UTC out,
    naive datetimes refused.

``bot.store.base`` — ``Base`` (naming convention for constraints), ``UtcDateTime``.

``bot.store.schema`` — ``metadata``: imports every model module. A feature
    with its own tables adds its module import there and a migration in
    ``migrations/versions`` (``0002_slack``, ``0003_alerts``, ``0004_instance_leases``, …).

``bot.store.heartbeats`` — heartbeat history stored like a TSDB: an append-only head
    compacted into one encoded chunk per instance-hour (``compact``, ``compact_off_loop``,
    ``history_stats``); its package docstring has the layout.

``bot.store.retention`` — ``await apply_retention(db, *, now, raw_days=7,
    hourly_days=90, batch=500) -> RetentionResult(samples_rolled_up,
    hours_written, hourly_deleted, more)``: chunks whose hour is older than ``raw_days``
    are rolled into hourly min/avg/max (merged with an earlier roll-up of the hour)
    and deleted whole; hourly rows older than ``hourly_days`` are deleted; at most
    ``batch`` chunks and ``batch`` hourly rows per call; call again while ``more``.

``bot.store.leader`` — ``Leadership`` protocol (``await acquire()``, ``await
    check()``, ``await release()``, ``is_leader``);
    ``PostgresAdvisoryLeadership(url, *, key=MONITOR_LOCK_KEY, holder=None)``
    (``pg_try_advisory_lock`` on a dedicated connection);
    ``SqliteLeadership(db, *, holder, ttl, name="monitor", clock=…)`` (a lease
    row; ``refusal()`` builds the ``LeadershipRefused`` to raise);
    ``leadership_for(db, *, holder, ttl)``; ``default_holder()``.

``bot.store.errors`` — ``StoreError`` and its tree (drawn there).

``bot.store.audit`` — the audit log every entry point writes (Slack, gateway):
    ``AuditDraft``, ``AuditLog.write(draft)``, ``latest_audit(...)``.

``bot.store.ssh_links`` — ``SshLinkService``: one-time links to ephemeral SSH keys, made
    by the Slack app and served by the web app.
"""
