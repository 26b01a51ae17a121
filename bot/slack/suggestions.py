"""Instance pickers' autocomplete: ``block_suggestion`` answered in the ack.

Every instance picker is an ``external_select`` with ``ActionId.INSTANCE_PICK``; Slack
sends what the user typed and shows the options the ack carries (HTTP: the response
body; Socket Mode: the ack's payload; Bolt does both). The fleet comes from the backend
client's short fleet cache (``bot.backend.fleet_cache``: at most one list per few seconds,
shared by concurrent callers), so typing never fans out to the backend. Matches: the id
or name equal to the text first, then those starting with it, then containing it; at
most 100 (Slack's limit). The clicker needs the viewer role (the list's), checked before
anything is shown; the request is audited once, after the ack, like any other.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from bot.backend.errors import BackendError
from bot.backend.models import Instance
from bot.blockkit.ids import ActionId
from bot.blockkit.limits import MAX_OPTION_VALUE
from bot.blockkit.views import MAX_OPTIONS
from bot.catalog import Subcommand
from bot.errors import AccessDenied
from bot.slack.blocks.fleet import fleet_order
from bot.slack.blocks.modals import instance_option
from bot.slack.invocation import Invocation
from bot.slack.middleware import Answer, Route, Step
from bot.slack.services import Services

MAX_TYPED = 100
NO_OPTIONS = Answer({"options": []})


def matching(fleet: Sequence[Instance], typed: str, *, limit: int = MAX_OPTIONS) -> list[Instance]:
    """Instances whose id or name matches ``typed`` (case-insensitive), best first: equal,
    then starting with it, then containing it; within each, attention first, then by name.

    One pass over the fleet, and only the ``limit`` best of a group are ordered (a fleet of
    50,000 answers within the ack's budget).
    """
    needle = typed.strip().lower()[:MAX_TYPED]
    groups: tuple[list[Instance], list[Instance], list[Instance]] = ([], [], [])
    for instance in fleet:
        if len(instance.id) > MAX_OPTION_VALUE:
            continue  # cannot be an option's value
        ident, name = instance.id.lower(), (instance.name or "").lower()
        if not needle or needle in ident or needle in name:
            if needle and needle in (ident, name):
                groups[0].append(instance)
            elif needle and (ident.startswith(needle) or name.startswith(needle)):
                groups[1].append(instance)
            else:
                groups[2].append(instance)
    found: list[Instance] = []
    for group in groups:
        if len(found) >= limit:
            break
        found.extend(heapq.nsmallest(limit - len(found), group, key=fleet_order))
    return found


async def answer_suggestion(svc: Services, inv: Invocation, body: dict[str, Any]) -> Answer:
    """The options for what was typed (none for someone without a role)."""
    typed = str(body.get("value") or "")
    inv.draft.args = f"suggest {typed[:80]!r}"
    try:
        await svc.access.check(inv.user_id, None, Subcommand.LIST.value, anywhere=True)
    except AccessDenied as exc:
        inv.draft.fail("refused", str(exc))
        return NO_OPTIONS
    try:
        fleet, _ = await svc.deps.backend.fleet.get()
    except BackendError as exc:
        inv.draft.fail("error", str(exc))
        return NO_OPTIONS
    found = matching(fleet, typed)
    inv.draft.detail = f"{len(found)} options"
    return Answer({"options": [instance_option(i) for i in found]})


async def plan_suggestion(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """Nothing left to do after the ack: the audit row is written."""
    return Step(Subcommand.LIST.value, _nothing, check_role=False)


async def _nothing() -> None:
    return None


ROUTES = (
    Route(
        "options",
        ActionId.INSTANCE_PICK,
        Subcommand.LIST.value,
        plan_suggestion,
        answer=answer_suggestion,
        late=NO_OPTIONS,
    ),
)
