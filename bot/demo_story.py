"""The demo's story: two instances go stale at the same moment, and only one heals by itself.

- ``pod-002`` (the second instance) stops its heartbeat; the bot's first auto-restart brings
  it back and the incident in #alerts resolves on its own.
- ``pod-001`` (the first) is *wedged*: its heartbeat stays stopped through the bot's
  auto-restarts (``RESTART_BUDGET`` of them), so the budget runs out and the bot pages
  on-call; the restart a person gives it after that brings it back.

The bot is not told any of this: its restart budget comes from the TOML file the demo hands
it (``monitor_toml``), and what the sidebar says is read from the simulator and from what the
bot posted in #alerts (:func:`story_notes`), so it follows the incidents as they happen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The bot's auto-restarts per instance in the demo: few, so its budget runs out in seconds.
RESTART_BUDGET = 2
GAVE_UP = "Auto-restart gave up"
ROLE_NOTES = {
    "operator": (
        "You act as *operator*, on-call (a member of @oncall): you may restart, pause and "
        "acknowledge. Switch to *admin* below to kill an instance."
    ),
    "viewer": (
        "You act as *viewer*: you may look (list, health, logs) and every action is "
        "refused. Switch to *operator* below to act."
    ),
    "admin": "You act as *admin*: every action, kill included.",
}


@dataclass(frozen=True)
class StoryInstance:
    """One instance of the story; ``heals``: the bot's own auto-restart brings it back."""

    id: str
    name: str
    heals: bool


@dataclass(frozen=True)
class Story:
    """When the stalls come and which instances they hit."""

    stall_at: float  # unix time
    instances: tuple[StoryInstance, ...]

    @property
    def wedged(self) -> StoryInstance | None:
        return next((i for i in self.instances if not i.heals), None)

    @property
    def healing(self) -> StoryInstance | None:
        return next((i for i in self.instances if i.heals), None)


def restart_delay(monitor_interval: float, heartbeat_timeout: float) -> float:
    """The wait between the bot's two auto-restarts: long enough to see the first fail."""
    return max(3 * monitor_interval, heartbeat_timeout)


def monitor_toml(monitor_interval: float, heartbeat_timeout: float) -> str:
    """The ``[monitor]`` table of the demo's ``starpod-bot.toml``: a small restart budget."""
    delay = restart_delay(monitor_interval, heartbeat_timeout)
    return (
        "# Written by starpod-bot demo: a small auto-restart budget, so it runs out in seconds.\n"
        "[monitor]\n"
        f"restart_budget = {RESTART_BUDGET}\n"
        f"restart_delays_secs = [0, {delay:g}]\n"
    )


@dataclass(frozen=True)
class IncidentSeen:
    """What #alerts shows of one instance's incident."""

    state: str  # "open", "acknowledged" or "resolved"
    gave_up: bool
    restarts: int


def incident_seen(alert_messages: Sequence[dict[str, Any]], name: str) -> IncidentSeen | None:
    """The latest incident about ``name`` among #alerts' messages (the playground's JSON)."""
    for message in reversed(alert_messages):
        text = str(message.get("text", ""))
        # The fallback text reads "[<mention> ]Open: pod-001 (ab12cd34): …".
        head = text.split(": ", 1)[0].rsplit(" ", 1)[-1]
        state = {"Open": "open", "Acknowledged": "acknowledged", "Resolved": "resolved"}.get(head)
        if state is None or f"{name} (" not in text:
            continue
        replies = [str(r.get("text", "")) for r in message.get("replies", [])]
        return IncidentSeen(
            state=state,
            gave_up=any(GAVE_UP in r for r in replies),
            restarts=sum(1 for r in replies if r.startswith("🔁")),
        )
    return None


def story_notes(
    story: Story,
    *,
    role: str,
    alert_messages: Sequence[dict[str, Any]],
    heartbeat_stopped: dict[str, bool],
    now: float | None = None,
) -> list[str]:
    """The sidebar's 'About this demo' lines (mrkdwn) for a user of ``role``, as of now."""
    now = time.time() if now is None else now
    notes = ["Type `/starpod list` here in #ops, then use a row's ⋯ menu."]
    if role in ROLE_NOTES:
        notes.append(ROLE_NOTES[role])
    left = story.stall_at - now
    for instance in story.instances:
        seen = incident_seen(alert_messages, instance.name)
        notes.append(
            _instance_note(instance, seen, left, heartbeat_stopped.get(instance.id, False))
        )
    return notes


def _instance_note(
    instance: StoryInstance, seen: IncidentSeen | None, left: float, stopped: bool
) -> str:
    name = f"*{instance.name}*"
    if seen is None:
        if left > 0:
            fate = (
                "the bot will restart it and resolve the incident by itself"
                if instance.heals
                else f"{RESTART_BUDGET} auto-restarts will not help it"
            )
            return f"{name} stops its heartbeat in about {left:.0f} s: {fate}."
        if stopped:
            return f"{name} stopped its heartbeat: the bot will notice it in #alerts."
        return f"{name} is running."
    if seen.state == "resolved":
        if instance.heals or not seen.gave_up:
            return f"✅ {name} is back: the bot's restart healed it, incident resolved."
        return f"✅ {name} is back after a person's restart: incident resolved."
    if seen.gave_up:
        if seen.state == "acknowledged":
            return (
                f"{name}: acknowledged. Now click *Restart now* in its thread in #alerts; "
                "the bot resolves the incident when the heartbeat is back."
            )
        return (
            f"🚨 {name}: the bot gave up after {RESTART_BUDGET} restarts and paged @oncall. "
            "Open its thread in #alerts: *Acknowledge*, read *Logs*, write a note, "
            "then *Restart now*."
        )
    restarts = f" (auto-restarts so far: {seen.restarts})" if seen.restarts else ""
    return f"🔴 {name}: incident open in #alerts, the bot is restarting it{restarts}."
