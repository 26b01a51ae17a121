"""`/starpod logs` against a backend whose log stream never ends.

The simulator's ``logs_endless`` fault (set over its admin API, as an operator of the
simulator would) ignores ``?tail=`` and streams lines for ever. The bot must answer
anyway, with the last lines it kept and a visible note that it stopped reading.
"""

from __future__ import annotations

from typing import Any

import httpx

ADMIN = "U0ADMIN"


async def test_logs_against_an_endless_stream_answer_with_a_truncated_note(
    bot: Any, reliability_figures: dict[str, object]
) -> None:
    async with httpx.AsyncClient(base_url=bot.sim.url) as admin:
        answer = await admin.post(
            "/_sim/faults", json={"logs_endless": True, "endpoints": ["logs"]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["faults"]["logs_endless"] is True
    target = bot.sim.instance_ids()[0]
    name = bot.sim.instance(target)["name"]
    seen = len(bot.slack.ephemerals(ADMIN))
    reply = await bot.slack.send_slash_command(
        bot.events_url, f"logs {name} --tail 20", user_id=ADMIN
    )
    assert reply.status_code == 200
    # The client's byte budget (8 MB) ends the read long before its 20 s time budget.
    await bot.slack.wait_for(lambda: len(bot.slack.ephemerals(ADMIN)) > seen, 25.0)
    text = bot.visible(bot.slack.ephemerals(ADMIN)[seen])
    assert "✂️" in text, text
    reliability_figures.update(endless_logs_answered=True)
