"""Instance actions: create, pause, restart and kill, in one place for every entry point.

Layer: below ``slack``, ``alerts``, ``gateway``, ``web`` and ``monitor`` (which call it and
only present its results); above ``backend`` and ``store``. Nothing here imports Slack.

Modules
-------
``bot.instances.service``
    ``InstanceActions(backend, db, *, clock, poll_interval=1.0, poll_timeout=30.0,
    holder=None, lease_margin=3 min)`` with ``await create(actor, *, name, region, wait,
    hooks)``, ``await pause|kill(target, actor, *, wait, hooks)``, ``await
    restart(target, actor, *, wait, record, hooks)``, ``await run(verb, target, actor, …)``
    and ``await resolve(ref)``; ``Hooks(on_started, while_waiting)``.
``bot.instances.outcome``
    the results ``Done``, ``Failed``, ``Pending``, ``Busy`` (``ActionResult``), the lease
    ``Holder``, and ``reached(verb, current, before, elapsed)`` (the pure end-state rule).
``bot.instances.actor``
    ``Verb``, ``Source``, ``Actor`` (``cause``, ``stored_id``, ``reason(verb)``).
``bot.instances.lock``
    ``InstanceLocks(db, *, holder, ttl, clock)``: the per-instance lease row
    (``instance_leases``), ``acquire``/``release``/``holding``.
``bot.instances.records``
    ``record_action(db, *, at, actor, instance_id, result)``: one transaction.
``bot.instances.waiting``
    ``poll_until_settled(…)``: the wait for the outcome.
"""

from bot.instances.actor import Actor, Source, Verb
from bot.instances.lock import InstanceLocks, Lease
from bot.instances.outcome import ActionResult, Busy, Done, Failed, Holder, Pending
from bot.instances.service import Hooks, InstanceActions

__all__ = [
    "ActionResult",
    "Actor",
    "Busy",
    "Done",
    "Failed",
    "Holder",
    "Hooks",
    "InstanceActions",
    "InstanceLocks",
    "Lease",
    "Pending",
    "Source",
    "Verb",
]
