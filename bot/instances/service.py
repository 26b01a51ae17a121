"""The one home of create, pause, restart and kill, whoever asks.

Every entry point (Slack commands and buttons, incident buttons, the gateway, the
monitor's auto-restart) calls :class:`InstanceActions` and presents the result it gets::

    actions = InstanceActions(backend, db, poll_interval=1.0, poll_timeout=30.0)
    result = await actions.restart("pod-001", Actor.slack("U123"))
    match result:
        case Done(): ...      # running again
        case Failed(): ...    # result.error says why (result.exc when the call was refused)
        case Pending(): ...   # accepted, still working after poll_timeout
        case Busy(): ...      # result.running: who runs what since when; nothing was done

One action runs on an instance at a time, across replicas: the lease in
:mod:`bot.instances.lock` is taken before the backend is asked and released (in a
``finally``) once the outcome is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendError
from bot.backend.models import Instance
from bot.instances.actor import Actor, Verb
from bot.instances.lock import DEFAULT_TTL, InstanceLocks, Lease
from bot.instances.outcome import ActionResult, Busy, Done, Failed, Pending
from bot.instances.records import record_action
from bot.instances.waiting import Polled, WhileWaiting, look, poll_until_settled
from bot.store.database import Database
from bot.store.errors import StoreUnwritable
from bot.store.write_probe import write_refusal

Started = Callable[[Instance | None], Awaitable[None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Hooks:
    """What an entry point may do while the action runs (both optional).

    ``on_started(instance)`` runs once the lease is held, just before the backend is asked
    (``instance`` is None for a create): the Slack app announces the action there, so a
    busy instance gets no announcement. ``while_waiting()`` is an async context manager
    entered around each pause between polls (the Slack app releases its work slot).
    """

    on_started: Started | None = None
    while_waiting: WhileWaiting | None = None


NO_HOOKS = Hooks()


class InstanceActions:
    """Create, pause, restart and kill, each locked, followed to its end and recorded.

    ``poll_interval``/``poll_timeout`` bound the wait for the outcome (seconds);
    ``holder`` names this replica in leases; a lease outlives ``poll_timeout`` by
    ``lease_margin`` before another replica may take it over.
    """

    def __init__(
        self,
        backend: InstanceClient,
        db: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        poll_interval: float = 1.0,
        poll_timeout: float = 30.0,
        holder: str | None = None,
        lease_margin: timedelta = DEFAULT_TTL,
    ) -> None:
        self.backend = backend
        self.db = db
        self.clock = clock
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.lease_margin = lease_margin
        self.locks = InstanceLocks(
            db, holder=holder, ttl=timedelta(seconds=poll_timeout) + lease_margin, clock=clock
        )

    def __repr__(self) -> str:
        return f"InstanceActions(holder={self.locks.holder!r})"

    async def resolve(self, ref: str) -> Instance:
        """A full id, a unique id prefix or an exact name → the instance (backend errors raise)."""
        return await self.backend.resolve(ref)

    # -- the four actions --------------------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        *,
        name: str | None = None,
        region: str | None = None,
        wait: bool = True,
        wait_secs: float | None = None,
        hooks: Hooks = NO_HOOKS,
    ) -> Done | Failed | Pending:
        """Create an instance; the new instance is locked while it is followed to running.

        The new instance's lease is its first write, after the backend created it: a
        database that refuses writes is asked first (StoreUnwritable), so a create it would
        refuse never creates an untracked instance.
        """
        loop = asyncio.get_running_loop()
        await self._writable_or_raise()
        if hooks.on_started is not None:
            await hooks.on_started(None)
        started = loop.time()
        try:
            created = await self.backend.create_instance(name=name, region=region)
        except BackendError as exc:
            return Failed(Verb.CREATE, None, str(exc), loop.time() - started, None, exc=exc)
        patience = self._patience(wait_secs)
        got = await self.locks.acquire(created.id, Verb.CREATE, actor, ttl=self._ttl(patience))
        try:
            result = await self._follow(
                Verb.CREATE,
                created,
                None,
                "creating",
                started,
                patience if wait else None,
                hooks,
                answer=created,
            )
            await self._record(actor, created.id, result)
            return result
        finally:
            if isinstance(got, Lease):
                await self.locks.release(got)

    async def _writable_or_raise(self) -> None:
        if await write_refusal(self.db, holder=self.locks.holder) is None:
            return
        refusal = self.db.writes.refusal
        if refusal is not None:
            raise StoreUnwritable(
                database=refusal.database, kind=refusal.kind, reason=refusal.reason
            )

    async def pause(
        self,
        target: str | Instance,
        actor: Actor,
        *,
        wait: bool = True,
        wait_secs: float | None = None,
        hooks: Hooks = NO_HOOKS,
    ) -> ActionResult:
        """Pause ``target`` (a reference to resolve, or an instance already resolved)."""
        return await self.run(
            Verb.PAUSE, target, actor, wait=wait, wait_secs=wait_secs, hooks=hooks
        )

    async def restart(
        self,
        target: str | Instance,
        actor: Actor,
        *,
        wait: bool = True,
        wait_secs: float | None = None,
        record: bool = True,
        hooks: Hooks = NO_HOOKS,
    ) -> ActionResult:
        """Restart ``target`` (also resumes a paused instance).

        ``record=False`` leaves the records to a caller that writes them in its own
        transaction (the monitor, with its restart events).
        """
        return await self.run(
            Verb.RESTART,
            target,
            actor,
            wait=wait,
            wait_secs=wait_secs,
            record=record,
            hooks=hooks,
        )

    async def kill(
        self,
        target: str | Instance,
        actor: Actor,
        *,
        wait: bool = True,
        wait_secs: float | None = None,
        hooks: Hooks = NO_HOOKS,
    ) -> ActionResult:
        """Kill ``target``."""
        return await self.run(Verb.KILL, target, actor, wait=wait, wait_secs=wait_secs, hooks=hooks)

    async def run(
        self,
        verb: Verb,
        target: str | Instance,
        actor: Actor,
        *,
        wait: bool = True,
        wait_secs: float | None = None,
        record: bool = True,
        hooks: Hooks = NO_HOOKS,
    ) -> ActionResult:
        """Pause, restart or kill ``target``: lock, ask, wait (unless ``wait=False``), record.

        The wait lasts at most ``wait_secs`` (default: ``poll_timeout``); with
        ``wait=False`` the backend's answer is the outcome (one look, no polling).
        Resolving ``target`` raises the backend's errors (not found, ambiguous, …).
        """
        if verb is Verb.CREATE:
            raise ValueError("use create() to create an instance")
        instance = target if isinstance(target, Instance) else await self.resolve(target)
        patience = self._patience(wait_secs)
        got = await self.locks.acquire(instance.id, verb, actor, ttl=self._ttl(patience))
        if not isinstance(got, Lease):
            return Busy(verb, instance, got, self.locks.age(got))
        try:
            result = await self._act(verb, instance, patience if wait else None, hooks)
            if record:
                await self._record(actor, instance.id, result)
            return result
        finally:
            await self.locks.release(got)

    # -- steps ---------------------------------------------------------------------------------

    def _patience(self, wait_secs: float | None) -> float:
        return self.poll_timeout if wait_secs is None else wait_secs

    def _ttl(self, patience: float) -> timedelta:
        # The lease must outlive the call and the whole wait, or another replica takes it.
        return timedelta(seconds=patience) + self.lease_margin

    async def _act(
        self, verb: Verb, instance: Instance, patience: float | None, hooks: Hooks
    ) -> Done | Failed | Pending:
        """Ask the backend, then follow it for ``patience`` seconds (None: no waiting)."""
        loop = asyncio.get_running_loop()
        if hooks.on_started is not None:
            await hooks.on_started(instance)
        started = loop.time()
        try:
            if verb is Verb.RESTART:
                answer = await self.backend.restart_instance(instance.id)
            elif verb is Verb.PAUSE:
                answer = await self.backend.pause_instance(instance.id)
            else:
                await self.backend.kill_instance(instance.id)
                answer = None
        except BackendError as exc:
            return Failed(verb, instance, str(exc), loop.time() - started, instance, exc=exc)
        return await self._follow(
            verb, instance, instance, instance.status, started, patience, hooks, answer=answer
        )

    async def _follow(
        self,
        verb: Verb,
        instance: Instance,
        before: Instance | None,
        before_status: str,
        started: float,
        patience: float | None,
        hooks: Hooks,
        *,
        answer: Instance | None,
    ) -> Done | Failed | Pending:
        loop = asyncio.get_running_loop()
        if patience is not None:
            polled = await poll_until_settled(
                self.backend,
                verb,
                instance,
                before_status,
                started=started,
                interval=self.poll_interval,
                give_up_after=patience,
                while_waiting=hooks.while_waiting,
            )
        else:
            polled = await self._one_look(verb, instance, before_status, started, answer)
        elapsed = loop.time() - started
        if polled.state == "done":
            return Done(verb, polled.instance, polled.status, elapsed, before)
        last = polled.instance or instance
        if polled.state == "failed":
            error = f"the instance ended in status {polled.status}"
            return Failed(verb, last, error, elapsed, before, status=polled.status)
        return Pending(verb, last, polled.status, elapsed, before)

    async def _one_look(
        self,
        verb: Verb,
        instance: Instance,
        before_status: str,
        started: float,
        answer: Instance | None,
    ) -> Polled:
        """Without waiting: what the backend's answer to the call shows.

        An empty answer is looked up once; a kill (answered with no body) is accepted and
        left to the next sweep.
        """
        loop = asyncio.get_running_loop()
        if verb is Verb.KILL:
            return Polled("pending", instance.status_raw, instance)
        current = answer
        if current is None:
            try:
                current = await self.backend.get_instance(instance.id)
            except BackendError:
                return Polled("pending", instance.status_raw, instance)
        ended = look(verb, current, before_status, loop.time() - started)
        return ended or Polled("pending", current.status_raw, current)

    async def _record(
        self, actor: Actor, instance_id: str, result: Done | Failed | Pending
    ) -> None:
        await record_action(
            self.db, at=self.clock(), actor=actor, instance_id=instance_id, result=result
        )
