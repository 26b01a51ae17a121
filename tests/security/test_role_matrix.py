"""The role matrix, through every entry point: slash commands, buttons and the gateway.

Expected roles are written out here from ``design/slack-ux.md`` ("Who may do what"), not
read from the bot's catalog, so a wrong catalog entry fails the test. For every role and
action: an allowed request acts (the backend sees the call), a refused one gets an answer
naming the role it needs and the backend sees nothing; every refusal is audited.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from bot.blockkit.ids import ActionId
from bot.store.slack_models import AuditEntry

ADMIN, OPERATOR, VIEWER, NOBODY = "U0ADMIN", "U0OPERATOR", "U0VIEWER", "U0NOBODY"
RANK = {ADMIN: 3, OPERATOR: 2, VIEWER: 1, NOBODY: 0}
ROLE_NAME = {1: "viewer", 2: "operator", 3: "admin"}
GATEWAY_KEYS = {
    "viewer": "gw-viewer-secret-11111111",
    "operator": "gw-operator-secret-22222222",
    "admin": "gw-admin-secret-33333333",
}
GATEWAY_RANK = {"admin": 3, "operator": 2, "viewer": 1}

# action → (needed rank, command text; {name} is the target instance's name)
SLASH: dict[str, tuple[int, str]] = {
    "help": (0, "help"),  # everyone may read the help (it tells a no-role user to ask)
    "list": (1, "list"),
    "health": (1, "health {name}"),
    "logs": (1, "logs {name} --tail 5"),
    "history": (1, "history {name}"),
    "audit": (1, "audit"),
    "status": (1, "status"),
    "create": (2, "create --name made-by-{user}"),
    "pause": (2, "pause {name}"),
    "restart": (2, "restart {name}"),
    "ssh": (2, "ssh {name}"),
    "mute": (2, "mute {name} 1h"),
    "unmute": (2, "unmute {name}"),
    "budget": (2, "budget reset {name}"),
    "kill": (3, "kill {name}"),  # allowed: a confirmation, never a kill
}
# The backend call an allowed action makes (and a refused one must not).
BACKEND_KIND = {"create": "create", "pause": "pause", "restart": "restart", "ssh": "ssh"}


async def _refusals(bot: Any) -> int:
    async with bot.db.session() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.result == "refused"))
        return len(list(rows))


async def _audited(bot: Any) -> int:
    """Audit rows so far: one per command or click, written once its listener has finished."""
    async with bot.db.session() as session:
        return int(await session.scalar(select(func.count(AuditEntry.id))) or 0)


async def _until_handled(bot: Any, audited: int, secs: float = 10.0) -> None:
    """Wait for the completion signal of the request sent after ``audited`` rows: its audit row.

    The row is written after the listener returned, so the action has finished and released
    its instance: the next request on the same instance is not refused as "in progress".
    Waiting for the backend call alone is not enough: the restart is still being followed
    then, and a Pause clicked in that window is (rightly) told a restart is in progress.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + secs
    while (found := await _audited(bot)) <= audited:
        assert loop.time() < deadline, f"no audit row for the request after {audited} rows"
        await asyncio.sleep(0.02)
    assert found == audited + 1, (found, audited)


async def test_slash_commands_each_role_each_action(
    bot: Any, reliability_figures: dict[str, object]
) -> None:
    ids = bot.sim.instance_ids()
    targets = {user: ids[i] for i, user in enumerate(RANK)}
    refused = allowed = 0
    for user, rank in RANK.items():
        target = targets[user]
        name = bot.sim.instance(target)["name"]
        for action, (needed, template) in SLASH.items():
            kind = BACKEND_KIND.get(action)
            key = (kind, "" if action == "create" else target)
            before = bot.sim.calls[key] if kind else 0
            audited = await _audited(bot)
            answer = bot.visible(
                await bot.command(template.format(name=name, user=user.lower()), user=user)
            )
            await _until_handled(bot, audited)
            if rank >= needed:
                allowed += 1
                assert not answer.startswith("🔒"), (user, action, answer)
                assert bot.UNEXPECTED not in answer, (user, action, answer)
                if kind:
                    await _eventually(lambda k=key, b=before: bot.sim.calls[k] > b)
            else:
                refused += 1
                assert answer.startswith("🔒"), (user, action, answer)
                assert f"You need the {ROLE_NAME[needed]} role" in answer, (user, action, answer)
                if kind:
                    assert bot.sim.calls[key] == before, (user, action)
    assert all(bot.sim.calls[("kill", i)] == 0 for i in ids)  # kill only ever asks first
    await _eventually_async(bot, refused)
    reliability_figures.update(slash_cases=allowed + refused, allowed=allowed, refused=refused)


async def _eventually(check: Any, secs: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + secs
    while not check():
        assert loop.time() < deadline, "the allowed action never reached the backend"
        await asyncio.sleep(0.02)


async def _eventually_async(bot: Any, refused: int, secs: float = 5.0) -> None:
    """Every refusal is in the audit log (rows are written after the answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + secs
    while (found := await _refusals(bot)) < refused:
        assert loop.time() < deadline, f"{found} refusals audited, {refused} expected"
        await asyncio.sleep(0.02)
    assert found == refused


BUTTONS = {
    ActionId.CARD_RESTART: (2, "restart"),
    ActionId.CARD_PAUSE: (2, "pause"),
    ActionId.CARD_SSH: (2, "ssh"),
    ActionId.KILL_CONFIRM: (3, "kill"),
}


async def test_buttons_each_role_each_action(
    bot: Any, reliability_figures: dict[str, object]
) -> None:
    ids = bot.sim.instance_ids()
    cases = 0
    for index, (user, rank) in enumerate(RANK.items()):
        for action_id, (needed, kind) in BUTTONS.items():
            target = ids[index]
            before = bot.sim.calls[(kind, target)]
            seen = len(bot.slack.ephemerals(user))
            # A kill click carries the confirmation the bot showed this user (a card's).
            block = await bot.kill_block_id(user, target) if kind == "kill" else None
            audited = await _audited(bot)
            reply = await bot.slack.send_block_action(
                bot.events_url, action_id=action_id, value=target, user_id=user, block_id=block
            )
            assert reply.status_code == 200
            cases += 1
            if rank >= needed:
                await _eventually(lambda k=(kind, target), b=before: bot.sim.calls[k] > b)
            else:
                await bot.slack.wait_for(lambda u=user, s=seen: len(bot.slack.ephemerals(u)) > s)
                answer = bot.visible(bot.slack.ephemerals(user)[seen])
                assert f"You need the {ROLE_NAME[needed]} role" in answer, (user, kind, answer)
                assert bot.sim.calls[(kind, target)] == before, (user, kind)
            # The next click acts on the same instance: let this one finish first.
            await _until_handled(bot, audited)
    reliability_figures.update(button_cases=cases)


# (method, path, needed rank, backend call kind or None); {id} is an instance id
GATEWAY: list[tuple[str, str, int, str | None]] = [
    ("GET", "/api/instances", 1, "list"),
    ("GET", "/api/instances/{id}", 1, "get"),
    ("GET", "/api/instances/{id}/health", 1, "health"),
    ("GET", "/api/instances/{id}/history", 1, None),
    ("POST", "/api/instances", 2, "create"),
    ("POST", "/api/instances/{id}/pause", 2, "pause"),
    ("POST", "/api/instances/{id}/restart", 2, "restart"),
    ("DELETE", "/api/instances/{id}", 3, "kill"),
]


async def test_gateway_each_key_each_endpoint(
    bot: Any, reliability_figures: dict[str, object]
) -> None:
    ids = bot.sim.instance_ids()
    callers: dict[str, str | None] = {**GATEWAY_KEYS, "none": None, "forged": "not-a-key"}
    cases = 0
    async with httpx.AsyncClient(base_url=bot.url, timeout=10) as http:
        for index, (caller, key) in enumerate(callers.items()):
            rank = GATEWAY_RANK.get(caller, 0)
            target = ids[index]
            for method, path, needed, kind in GATEWAY:
                url = path.format(id=target)
                backend_key = (kind, "" if kind in ("list", "create") else target)
                before = bot.sim.calls[backend_key] if kind else 0
                headers = {"X-API-Key": key} if key is not None else {}
                json = {"name": f"gw-{caller}"} if method == "POST" and "pause" not in url else None
                if "restart" in url:
                    json = None
                response = await http.request(method, url, headers=headers, json=json)
                cases += 1
                if rank == 0:
                    assert response.status_code == 401, (caller, method, path, response.text)
                elif rank < needed:
                    assert response.status_code == 403, (caller, method, path, response.text)
                    assert ROLE_NAME[needed] in response.json()["error"]
                else:
                    assert response.status_code < 400, (caller, method, path, response.text)
                if kind and kind not in ("list", "get") and rank < needed:
                    assert bot.sim.calls[backend_key] == before, (caller, method, path)
                if kind and rank >= needed:
                    assert bot.sim.calls[backend_key] > before, (caller, method, path)
    reliability_figures.update(gateway_cases=cases)
