"""Alerts and on-call: incidents from the monitor's events, told to Slack, never lost.

Wiring (what ``bot.runtime`` does)::

    alerts = AlertService.from_settings(settings, db, clock=clock,
                                        is_leader=lambda: monitor.is_leader)
    alerts.attach(monitor)            # monitor.on_event(alerts.handle_event)
                                      # monitor.with_restart_guard(alerts.restart_guard)
    register_jobs(scheduler, service=alerts)   # delivery every 1 s, housekeeping every 10 s
    SlackDeps(..., alerts=alerts)     # /starpod mute|unmute|status and the incident buttons
    ...
    await alerts.delivery.aclose()    # on shutdown, before the scheduler stops

Modules (Alertmanager's seams)
------------------------------
``service``    :class:`~bot.alerts.service.AlertService`, the facade and the dispatch —
               ``handle_event(session, event)`` (runs inside the monitor's transaction),
               ``restart_guard(instance_id)``, ``mute(instance_id, until, no_restart,
               actor)``, ``unmute(instance_id, actor)``, ``open_incidents()``,
               ``get_incident(id)``, ``acknowledge(incident_id, actor)``,
               ``note_manual_restart(incident_id, actor, ok=, error=)``,
               ``run_housekeeping()`` (mute expiry, maintenance starts and ends,
               escalation, flapping/fleet settling), ``announce_maintenance()``,
               ``attach(monitor)``, ``from_settings(...)``.
``policy``     :class:`~bot.alerts.policy.AlertPolicy` (channel, mention, routes,
               escalation, flapping).
``incidents``  the state machine (open, recur, flap, resolve, acknowledge); its rules
               are in its module docstring.
``fleet``      fleet grouping (storm, backend outage) and the storm inhibitor.
``mutes``      the one muting interface (``Muter``), served by people's mutes
               (``Silences``), the storm inhibitor and maintenance windows.
``maintenance`` :class:`~bot.alerts.maintenance.MaintenanceWindows` — planned windows
               (``add``, ``cancel``, ``listing``), their ``Muter`` and restart guard, and
               ``announce(session, now)``: each start and end said once. Its parts:
               ``maintenance_rules`` (targets, starts, lengths; pure),
               ``maintenance_records`` (views, results), ``maintenance_blocks``.
``escalation`` re-mentions of the on-call group.
``notify``     ``Notifier``: each change's outbox rows (root, edit, reply, notice).
``facts``      ``IncidentFacts``: the typed facts kept in the incident's JSON column.
``rows``       opening, finding (a per-transaction index) and resolving incident rows.
``outbox``     writing messages as rows in the caller's transaction (root, reply, root
               edit, notice, diagnostics, paging event); root edits coalesce.
``delivery``   :class:`~bot.alerts.delivery.OutboxDelivery` — ``run_once()``, ``nudge()``,
               ``aclose()``, ``sent_total``/``failed_total``; 429/5xx/poison rules and the
               duplicate window are in its module docstring. Its stages: ``claims``
               (claim each stream's due head) and ``sending`` (one Web API call, its
               outcome classified); recording the outcome stays in ``delivery``.
``paging``     which PagerDuty/webhook events an incident's changes owe (``events_owed``),
               written as outbox rows of their own streams; ``pagerduty`` and ``webhook``
               send them (wire bodies, signatures, answers classified), ``senders`` builds
               them from ``settings.paging``.
``diagnostics`` the diagnostics reply (logs, health vs 24 h normal, status changes), built
               when its outbox row is sent, the log read under a deadline.
``budget``     the restart budget reset, the one function the command and the button use.
``blocks``     pure Block Kit builders: the root message, thread notes, mute notices.
``jobs``       ``register_jobs(scheduler, service=...)``.
``records``    ``IncidentView``, ``AckResult``, ``MuteResult``, ``UnmuteResult``.
``queries``    reads of the alert tables (``bot.store.alert_models``).

The incident buttons are Slack listeners: ``bot.slack.incident_buttons`` (slack imports
alerts, never the other way).
"""
