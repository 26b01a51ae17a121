"""The modals' forms: every bad input gets its one-line error under the right input.

Pure readers (``bot/slack/forms.py``) on ``view.state.values`` shaped as Slack sends them,
plus the builders' limits and the views the emulator accepts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.backend.models import Instance
from bot.blockkit.ids import ActionId, BlockId
from bot.blockkit.views import MAX_VIEW_BLOCKS, modal
from bot.sim.slack_views import check_modal, check_options
from bot.slack.blocks.home import HOME_PER_PAGE, HomeData, home_view
from bot.slack.blocks.modals import (
    act_choice_modal,
    create_modal,
    instance_option,
    kill_modal,
    mute_modal,
)
from bot.slack.forms import CreateForm, MuteForm, read_create, read_mute
from bot.slack.suggestions import matching


def text(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def picked(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"text": {"text": value}, "value": value}}


def create_values(
    name: str | None = None, region: str | None = None, typed: str | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if name is not None:
        values[BlockId.CREATE_NAME] = {ActionId.CREATE_NAME: text(name)}
    if region is not None:
        values[BlockId.CREATE_REGION] = {ActionId.CREATE_REGION: picked(region)}
    if typed is not None:
        values[BlockId.CREATE_REGION_TYPED] = {ActionId.CREATE_REGION_TYPED: text(typed)}
    return values


def mute_values(
    instance: str | None = "i-1",
    duration: str | None = None,
    typed: str | None = None,
    no_restart: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if instance is not None:
        values[BlockId.INSTANCE] = {ActionId.INSTANCE_PICK: picked(instance)}
    if duration is not None:
        values[BlockId.MUTE_DURATION] = {ActionId.MUTE_DURATION: picked(duration)}
    if typed is not None:
        values[BlockId.MUTE_DURATION_TYPED] = {ActionId.MUTE_DURATION_TYPED: text(typed)}
    if no_restart:
        values[BlockId.MUTE_OPTIONS] = {
            ActionId.MUTE_OPTIONS: {"selected_options": [{"value": "no_restart"}]}
        }
    if reason is not None:
        values[BlockId.MUTE_REASON] = {ActionId.MUTE_REASON: text(reason)}
    return values


def test_create_reads_a_name_and_a_picked_or_typed_region() -> None:
    assert read_create(create_values("web-1", "eu-west-1")) == CreateForm("web-1", "eu-west-1")
    assert read_create(create_values(" web-2 ", typed="ap-x-1")) == CreateForm("web-2", "ap-x-1")
    assert read_create({}) == CreateForm(None, None)


@pytest.mark.parametrize(
    ("values", "block", "error"),
    [
        (
            create_values(region="eu-west-1", typed="us-east-1"),
            BlockId.CREATE_REGION_TYPED,
            "Pick a region from the list or type one, not both.",
        ),
        (
            create_values(typed="eu west"),
            BlockId.CREATE_REGION_TYPED,
            "A region is letters, digits, dots and dashes, such as eu-west-1.",
        ),
        (
            create_values(name="x" * 101),
            BlockId.CREATE_NAME,
            "A name has at most 100 characters.",
        ),
    ],
)
def test_create_errors(values: dict[str, Any], block: str, error: str) -> None:
    assert read_create(values) == {block: error}


def test_mute_reads_every_input() -> None:
    form = read_mute(mute_values(duration="2h", no_restart=True, reason=" deploy "))
    assert form == MuteForm("i-1", timedelta(hours=2), True, "deploy")
    typed = read_mute(mute_values(typed="1h30m"))
    assert isinstance(typed, MuteForm) and typed.mute_for == timedelta(minutes=90)


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        (
            mute_values(instance=None, duration="1h"),
            {BlockId.INSTANCE: "Pick the instance to mute."},
        ),
        (
            mute_values(),
            {BlockId.MUTE_DURATION: "Pick how long to mute, or type a duration below."},
        ),
        (
            mute_values(duration="1h", typed="2h"),
            {BlockId.MUTE_DURATION_TYPED: "Pick a duration or type one, not both."},
        ),
        (
            mute_values(typed="45"),
            {BlockId.MUTE_DURATION_TYPED: "45 needs a unit: 45m, 45h or 45d."},
        ),
        (mute_values(typed="40d"), {BlockId.MUTE_DURATION_TYPED: "Mute for at most 30 days."}),
        (
            mute_values(typed="soon"),
            {BlockId.MUTE_DURATION_TYPED: "soon is not a duration: use e.g. 30m, 2h or 1d."},
        ),
        (
            mute_values(duration="1h", reason="r" * 501),
            {BlockId.MUTE_REASON: "A reason has at most 500 characters."},
        ),
    ],
)
def test_mute_errors(values: dict[str, Any], errors: dict[str, str]) -> None:
    assert read_mute(values) == errors


def pod(index: int, *, name: str | None = None, status: str = "running") -> Instance:
    return Instance.model_validate(
        {
            "id": f"{index:08x}-0000-0000-0000-000000000000",
            "name": name if name is not None else f"web-{index:03d}",
            "status": status,
            "region": "eu-west-1",
        }
    )


def test_matching_ranks_exact_then_prefix_then_contains_and_caps_at_100() -> None:
    fleet = [pod(i) for i in range(300)] + [pod(999, name="old-web-7")]
    assert [i.name for i in matching(fleet, "web-007")][:1] == ["web-007"]
    found = matching(fleet, "WEB")
    assert len(found) == 100
    assert all("web" in (i.name or "") for i in found)
    assert [i.name for i in matching(fleet, "old")] == ["old-web-7"]
    assert matching(fleet, "nothing-like-it") == []
    broken = [pod(1, status="error"), pod(2)]
    assert matching(broken, "")[0].status == "error"  # attention first when nothing is typed


def test_option_text_is_plain_and_within_slacks_limits() -> None:
    long_name = "<!channel>" + "x" * 200
    option = instance_option(pod(1, name=long_name))
    assert len(option["text"]["text"]) <= 75 and option["text"]["type"] == "plain_text"
    assert check_options({"options": [option]}) == []
    assert check_options({"options": [option] * 101}) == ["no more than 100 options allowed"]


def test_every_modal_passes_slacks_view_checks() -> None:
    instance = pod(1, name="<b>web</b>")
    views = [
        create_modal(["eu-west-1", "us-east-1"]),
        create_modal([]),
        mute_modal(),
        mute_modal(initial=instance_option(instance)),
        kill_modal(instance, "token", 3600.0),
        act_choice_modal(instance),
    ]
    for view in views:
        assert check_modal(view) == [], view["callback_id"]
    assert "&lt;b&gt;web&lt;/b&gt;" in str(kill_modal(instance, "t", None)["blocks"][0])


def test_views_refuse_what_slack_refuses() -> None:
    with pytest.raises(ValueError, match="3000"):
        modal("c", "t", [], private_metadata="x" * 3001)
    long_title = modal("c", "A title far longer than Slack takes", [])
    assert len(long_title["title"]["text"]) == 24
    assert check_modal({**long_title, "title": {"type": "plain_text", "text": "x" * 25}})
    no_submit = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "blocks": [
            {
                "type": "input",
                "block_id": "b",
                "label": {"type": "plain_text", "text": "l"},
                "element": {"type": "plain_text_input", "action_id": "a"},
            }
        ],
    }
    assert check_modal(no_submit) == [
        "submit is required when an input block is present [json-pointer:/view]"
    ]


def test_the_home_of_a_huge_fleet_stays_under_100_blocks() -> None:
    from datetime import UTC, datetime

    fleet = [pod(i, status="error" if i % 7 == 0 else "running") for i in range(50_000)]
    data = HomeData(user_id="U1", role="operator", now=datetime.now(UTC), fleet=fleet, page=3)
    view = home_view(data)
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    rows = [b for b in view["blocks"] if str(b.get("block_id", "")).startswith(BlockId.HOME_ROW)]
    assert len(rows) == HOME_PER_PAGE
    assert "Page 4 of 2500" in str(view["blocks"])
