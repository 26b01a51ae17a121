"""Heartbeat history stored like a time-series database (issue 15).

Layout (tables in :mod:`bot.store.models`, revision 0008):

``heartbeat_series``
    One integer key per instance, written once (its first sample).
``heartbeat_batches`` + ``heartbeat_head``
    The head: each sweep appends one batch; its rows are keyed ``(batch, series_id, n)``
    with integer epoch-microsecond times, so appends go to the end of the tree and no
    per-instance index is updated every sweep.
``heartbeat_chunks``
    One row per instance-hour, key ``epoch_hour << 32 | series_id``, holding the hour's
    samples delta/XOR-encoded and compressed (:mod:`~bot.store.heartbeats.codec`,
    ~8 bytes a sample against 241 in the old row-per-sample table).

Modules: ``codec`` (chunk format), ``keys`` (time and key arithmetic), ``writes``
(``append_samples``: the head), ``reads`` (``heartbeat_history``, ``latest_heartbeat``,
``count_samples``), ``compaction`` (``compact``, ``compact_off_loop``), ``offloop``
(``run_off_loop``: a worker thread with its own loop and engine), ``stats``
(``history_stats``: ``starpod-bot db stats``). Callers keep using
:func:`bot.store.queries.record_heartbeats` and :func:`bot.store.queries.heartbeat_history`;
retention (:mod:`bot.store.retention`) rolls whole chunks into ``heartbeat_hourly``.
"""
