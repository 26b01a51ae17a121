"""The steps every Slack listener shares: Bolt middleware plus the one listener runner.

Every `/starpod` command and every click (the bot's own buttons and the incident
buttons) goes through the same steps, mounted once by ``create_app``
(:meth:`ListenerPipeline.mount`). A surface only describes its listeners as
:class:`Route` objects: how to read what a request asks for (a :class:`Step`) and the
handler that does it. Handlers never dedupe, check roles or write the audit log.

Bolt Python's middleware cannot wrap a listener: ``next()`` only marks the request as
passed on, the whole middleware chain runs before Slack gets its HTTP answer, and Bolt
then runs the listener in a task of its own. So the steps are split at that seam.

Before Slack's 200, in the listener middleware :meth:`ListenerPipeline.admit` (cheap,
no I/O)::

    0. answer           only for requests Slack wants answered in the ack itself: a
                        ``block_suggestion`` (the options) and a ``view_submission`` (the
                        form's errors, or how the modal changes); bounded by
                        ``ANSWER_BUDGET_SECS`` so the ack still beats Slack's 3 s
    1. ack              first: nothing can delay the acknowledgement (``ack.py``)
    2. dedupe           a click Slack delivers again (same ``action_ts``) stops here,
                        in this process's memory (cheap, before the 200)
    3. invocation       who, where, how to answer, and the audit draft, in the context

After it, in the listener task (:meth:`ListenerPipeline.run`)::

    4. work starts      the one place where listener work begins (``start_work``: a
                        task tracker plugs in here, so shutdown can drain listener work)
    4b. once            a delivery any replica took in before (a replay within the
                        signature window, a Slack retry over HTTP or Socket Mode) stops
                        here: no answer, no audit row (``bot/store/deliveries.py``)
    5. work slot        bounded concurrency after the ack (``slots.py``)
    6. route            what the request asks: parsed text, a menu value, an incident
    7. role check       before any handler acts (``access.py``)
    8. the handler acts
    9. errors           translated once, the user told (``failures.py``)
   10. audit            exactly one row, written in ``finally``, whatever happened

Failures before step 4 (Bolt's own middleware, ours) reach :meth:`ListenerPipeline.on_error`,
the app's one error handler, which answers and audits the request the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.slack.ack import RECEIVED_AT, acknowledge, note_received
from bot.slack.failures import translate
from bot.slack.home import CHANGING_ACTIONS
from bot.slack.invocation import Invocation
from bot.slack.services import Services
from bot.store.deliveries import delivery_key

log = logging.getLogger(__name__)

#: Context key of the request's :class:`Invocation` (set by ``admit``).
INVOCATION = "starpod_invocation"
INTERRUPTED = "interrupted: the bot stopped before this finished"
#: How long an answer given in the ack may take: Slack waits 3 s, the network needs some.
ANSWER_BUDGET_SECS = 2.0

Kind = Literal["command", "action", "event", "view", "shortcut", "options"]


@dataclass(frozen=True)
class Step:
    """What one request asks for, as its route read it: the action and how to do it."""

    action: str  # the audit row's action, and what the role check is about
    act: Callable[[], Awaitable[None]]
    instance_id: str | None = None
    check_role: bool = True  # False only where anyone may: help, a usage answer, cancel
    check_channel: str | None = None  # the channel the role check sees, if not the request's


#: Reads a request (``services, invocation, body``) into its :class:`Step`; may raise
#: ``UserError`` (say, an incident that no longer exists), which is answered and audited.
Planner = Callable[[Services, Invocation, dict[str, Any]], Awaitable[Step]]

#: Starts one request's listener work and waits for it; the task tracker's seam.
StartWork = Callable[[Coroutine[Any, Any, None]], Awaitable[Any]]


@dataclass(frozen=True)
class Answer:
    """What goes back in the ack (Bolt's ``ack`` keywords), and the fallback when the
    answer cannot be made within the budget."""

    ack: dict[str, Any]


#: Computes the ack's body before the ack (step 0); may set ``inv.prepared`` for the plan,
#: and mark ``inv.draft`` (a refused suggestion, a form with errors).
Answerer = Callable[[Services, Invocation, dict[str, Any]], Awaitable[Answer]]


@dataclass(frozen=True)
class Route:
    """One listener: the command, ``action_id``, event, ``callback_id`` it answers, and
    how to read a request."""

    kind: Kind
    name: str  # "/starpod", an action_id, an event type, a view or shortcut callback_id
    action: str  # the audit action until the request says more (a crash while reading)
    plan: Planner
    answer: Answerer | None = None  # for "options" and "view": the ack's body
    late: Answer | None = None  # the ack when ``answer`` overruns its budget


async def run_in_place(work: Coroutine[Any, Any, None]) -> None:
    """The default ``start_work``: the listener work runs in Bolt's listener task."""
    await work


def is_click(body: dict[str, Any]) -> bool:
    """True for an interaction payload (a button or menu), False for a slash command."""
    return isinstance(body.get("user"), dict)


def click_key(body: dict[str, Any]) -> tuple[str, ...]:
    """What makes a click unique: Slack repeats ``action_ts`` only when it re-delivers."""
    actions = body.get("actions") or [{}]
    clicked = actions[0] if isinstance(actions[0], dict) else {}
    user = str((body.get("user") or {}).get("id", ""))
    when = str(clicked.get("action_ts") or body.get("trigger_id") or "")
    value = str(clicked.get("value") or (clicked.get("selected_option") or {}).get("value") or "")
    return (when, user, str(clicked.get("action_id")), value)


class ListenerPipeline:
    """Acks, dedupes, builds the invocation, then runs each route's step with the shared steps."""

    def __init__(self, svc: Services, *, start_work: StartWork = run_in_place) -> None:
        """``start_work`` starts each request's work and waits for it (by default, in place,
        in Bolt's listener task); pass a tracker's ``track`` to have shutdown drain it."""
        self.svc = svc
        self._start_work = start_work

    def mount(self, app: AsyncApp, routes: Iterable[Route]) -> None:
        """Register every route on ``app``, each behind :meth:`admit` (call once per app)."""
        registrars = {
            "command": app.command,
            "action": app.action,
            "event": app.event,
            "view": app.view_submission,
            "shortcut": app.shortcut,
            "options": app.options,
        }
        for route in routes:
            listener = self._listener(route)
            admit = self.admit if route.answer is None else self._answering(route)
            registrars[route.kind](route.name, middleware=[admit])(listener)

    async def admit(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        next: Callable[[], Awaitable[None]],
    ) -> BoltResponse | None:
        """Bolt listener middleware: ack first, drop a repeated click, build the invocation."""
        await acknowledge(ack, context)
        if is_click(body) and not self.svc.clicks.first_time(*click_key(body)):
            _, user, action_id, _ = click_key(body)
            log.info("duplicate delivery of %s by %s ignored", action_id, user)
            # Returning a response without next(): Bolt answers it and skips the listener.
            return BoltResponse(status=200, body="")
        context[INVOCATION] = self._invocation(body, context)
        await next()
        return None

    def _invocation(self, body: dict[str, Any], context: AsyncBoltContext) -> Invocation:
        return Invocation.from_body(
            self.svc.deps.web,
            body,
            action="unknown",
            started=context.get(RECEIVED_AT),
            announce_channel=self.svc.settings.alerts.channel,
        )

    def _answering(self, route: Route) -> Callable[..., Awaitable[BoltResponse | None]]:
        """``admit`` for a route answered in the ack (step 0 before step 1)."""
        answer = route.answer
        assert answer is not None
        late = route.late or Answer({})

        async def admit_with_answer(
            ack: AsyncAck,
            body: dict[str, Any],
            context: AsyncBoltContext,
            next: Callable[[], Awaitable[None]],
        ) -> BoltResponse | None:
            note_received(context)
            inv = self._invocation(body, context)
            inv.draft.action = route.action
            try:
                async with asyncio.timeout(ANSWER_BUDGET_SECS):
                    made = await answer(self.svc, inv, body)
            except TimeoutError:
                log.warning("%s: no answer within %.1f s", route.name, ANSWER_BUDGET_SECS)
                inv.draft.fail("error", f"no answer within {ANSWER_BUDGET_SECS:g} s")
                made = late
            except Exception as error:
                # The user sees the late answer; the listener's work says why (audited).
                log.exception("%s: the answer failed", route.name)
                inv.draft.fail("error", f"{type(error).__name__} while answering")
                made = late
            await acknowledge(ack, context, **made.ack)
            context[INVOCATION] = inv
            await next()
            return None

        return admit_with_answer

    def _listener(self, route: Route) -> Callable[..., Awaitable[None]]:
        async def listener(body: dict[str, Any], context: AsyncBoltContext) -> None:
            await self._start_work(self.run(route, context[INVOCATION], body))

        listener.__name__ = listener.__qualname__ = f"starpod[{route.name}]"
        return listener

    async def run(self, route: Route, inv: Invocation, body: dict[str, Any]) -> None:
        """Steps 5 to 10 for one request: slot, route, role check, act, answer errors, audit."""
        svc = self.svc
        inv.draft.action = route.action
        # After the ack (no database round trip delays Slack's 200) and in the listener
        # task, which both transports reach: HTTP and Socket Mode retries alike.
        if not await svc.deliveries.first_time(delivery_key(body)):
            log.info("repeated delivery of %s by %s ignored", route.name, inv.user_id)
            return
        try:
            async with svc.work.hold():
                step = await route.plan(svc, inv, body)
                inv.draft.action = step.action
                if step.instance_id:
                    inv.draft.instance_id = step.instance_id
                if step.check_role:
                    channel = step.check_channel or inv.channel_id
                    await svc.access.check(inv.user_id, channel, step.action, anywhere=inv.private)
                await step.act()
        except asyncio.CancelledError:
            inv.draft.fail("error", INTERRUPTED)
            raise
        except Exception as error:
            await answer_error(inv, error)
        finally:
            await svc.audit.write(inv.draft)
            changed = inv.draft.result == "ok" and not inv.changes_nothing
            if changed and inv.draft.action in CHANGING_ACTIONS:
                svc.home.changed()

    async def on_error(
        self, error: Exception, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """The app's error handler: a request that failed before :meth:`run` took it over.

        Answers the user and writes its one audit row (``run`` catches everything of its
        own, so a request it ran is never audited here twice: the draft is written once).
        """
        try:
            inv = context.get(INVOCATION)
            if not isinstance(inv, Invocation):
                inv = Invocation.from_body(
                    self.svc.deps.web,
                    body or {},
                    action="unknown",
                    started=context.get(RECEIVED_AT),
                )
            if inv.draft.written:
                log.error("error after the request was audited", exc_info=error)
                return
            await answer_error(inv, error)
            await self.svc.audit.write(inv.draft)
        except Exception:
            log.exception("the error handler failed while handling %s", type(error).__name__)


async def answer_error(inv: Invocation, error: BaseException) -> None:
    """Tell the user what went wrong and mark the audit draft; never raises."""
    try:
        translated = translate(error)
        inv.draft.fail(translated.result, translated.detail)
        await inv.respond(translated.reply)
    except Exception:
        log.exception("could not answer %s about %s", inv.user_id, type(error).__name__)
