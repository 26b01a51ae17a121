"""app-manifest.yml: valid against Slack's own schema, with exactly the scopes the code needs.

The scope check scans ``bot/`` for the Web API methods the bot calls (``client.chat_update(``,
``api_call("chat.update")``, Bolt's ``say(``) and maps each to its scope with ``METHOD_SCOPES``,
so adding a call without its scope, or keeping a scope nothing uses, fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "app-manifest.yml"
# Slack's manifest schema, vendored with its MIT license (tests/data/slack/LICENSE.manifest-schema)
# so the validation runs on every clone.
SCHEMA = Path(__file__).resolve().parent / "data" / "slack" / "manifest.schema.1.0.0.json"
BOT = ROOT / "bot"
# The emulator and simulator serve Slack's side; their code is not the bot calling Slack.
NOT_CLIENT_CODE = (BOT / "sim",)

# slack_sdk method name → the bot scope Slack requires for it (None: no scope needed).
# From Slack's method reference; a method missing here fails the test until it is added.
METHOD_SCOPES: dict[str, str | None] = {
    "auth_test": None,
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_update": "chat:write",
    "chat_delete": "chat:write",
    "chat_scheduleMessage": "chat:write",
    "chat_getPermalink": None,
    "conversations_info": "channels:read",
    "conversations_list": "channels:read",
    "conversations_members": "channels:read",
    "conversations_history": "channels:history",
    "conversations_replies": "channels:history",
    "conversations_join": "channels:join",
    "conversations_open": "im:write",
    "files_upload": "files:write",
    "files_upload_v2": "files:write",
    "files_getUploadURLExternal": "files:write",
    "files_completeUploadExternal": "files:write",
    "files_info": "files:read",
    "usergroups_list": "usergroups:read",
    "usergroups_users_list": "usergroups:read",
    "users_info": "users:read",
    "users_list": "users:read",
    "users_lookupByEmail": "users:read.email",
    "views_open": None,
    "views_publish": None,
    "views_update": None,
    "views_push": None,
    "reactions_add": "reactions:write",
    "reactions_remove": "reactions:write",
    "pins_add": "pins:write",
    "team_info": "team:read",
}
# Bolt helpers that call a Web API method for the listener.
BOLT_HELPERS: dict[str, str] = {"say": "chat_postMessage"}

_FAMILIES = (
    "auth|bookmarks|bots|chat|conversations|dnd|emoji|files|pins|reactions|reminders|team|"
    "usergroups|users|views"
)
_SDK_CALL = re.compile(rf"\.(?P<method>(?:{_FAMILIES})_[A-Za-z0-9_]+)\s*\(")
_API_CALL = re.compile(r"api_call\(\s*(?:api_method\s*=\s*)?[\"'](?P<method>[A-Za-z.]+)[\"']")
_BOLT_CALL = re.compile(rf"(?<![.\w])(?P<helper>{'|'.join(BOLT_HELPERS)})\s*\(")


def web_api_methods(source: str) -> set[str]:
    """The slack_sdk method names one Python source calls."""
    found = {m["method"] for m in _SDK_CALL.finditer(source)}
    found |= {m["method"].replace(".", "_") for m in _API_CALL.finditer(source)}
    found |= {BOLT_HELPERS[m["helper"]] for m in _BOLT_CALL.finditer(source)}
    return found


def bot_sources() -> dict[Path, str]:
    """Every Python file under bot/ that runs as the bot (simulators excluded)."""
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted(BOT.rglob("*.py"))
        if not any(path.is_relative_to(skip) for skip in NOT_CLIENT_CODE)
    }


def called_methods() -> dict[str, list[str]]:
    """Method → the files (relative to the repo) that call it."""
    calls: dict[str, list[str]] = {}
    for path, source in bot_sources().items():
        for method in web_api_methods(source):
            calls.setdefault(method, []).append(str(path.relative_to(ROOT)))
    return calls


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "app-manifest.yml must be a YAML mapping"
    return data


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_manifest(manifest: dict[str, Any]) -> None:
    """The validation above has teeth: the same schema refuses a manifest Slack would refuse."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(manifest))
    broken["features"]["slash_commands"][0]["command"] = "starpod"  # no leading slash
    broken["display_information"]["name"] = "x" * 36  # over 35 characters
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert len(list(validator.iter_errors(broken))) == 2


def test_display_information_and_bot_user(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] and info["description"]
    # The schema names this pattern under a non-standard "regex" key, so check it here.
    assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", info["background_color"])
    assert manifest["features"]["bot_user"]["display_name"]


def test_the_slash_command_has_description_and_usage_hint(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/starpod"]
    command = commands[0]
    assert command["description"].strip()
    assert "list" in command["usage_hint"] and "restart" in command["usage_hint"]
    assert command["url"].endswith("/slack/events")


def test_socket_mode_and_interactivity(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    # HTTP mode: Slack posts commands and clicks to the bot's one events route.
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["request_url"].startswith("https://")


def test_bot_scopes_are_exactly_what_the_code_calls(manifest: dict[str, Any]) -> None:
    calls = called_methods()
    unknown = {m: files for m, files in calls.items() if m not in METHOD_SCOPES}
    assert not unknown, f"add these methods to METHOD_SCOPES with their scope: {unknown}"
    needed = {scope for m in calls if (scope := METHOD_SCOPES[m]) is not None}
    if manifest["features"].get("slash_commands"):
        needed.add("commands")
    declared = manifest["oauth_config"]["scopes"]["bot"]
    assert len(declared) == len(set(declared)), "a scope is listed twice"
    missing = sorted(needed - set(declared))
    unused = sorted(set(declared) - needed)
    assert not missing, f"app-manifest.yml lacks scopes the code needs: {missing}"
    assert not unused, f"app-manifest.yml asks for scopes no code uses: {unused}"
    assert "user" not in manifest["oauth_config"]["scopes"], "the bot needs no user scopes"


def test_the_bot_sends_messages_through_the_web_api() -> None:
    """A guard on the scanner: the bot does post messages, so the scan must see that."""
    assert "chat_postMessage" in called_methods() or "chat_update" in called_methods()


def test_event_subscriptions_match_the_events_the_code_listens_to(
    manifest: dict[str, Any],
) -> None:
    listened = set()
    for source in bot_sources().values():
        listened |= set(re.findall(r"\.event\(\s*[\"']([a-z_]+)[\"']", source))
        # The listener pipeline's routes: Route("event", "<type>", …).
        listened |= set(re.findall(r"Route\(\s*[\"']event[\"'],\s*[\"']([a-z_]+)[\"']", source))
    declared = set(manifest["settings"].get("event_subscriptions", {}).get("bot_events", []))
    assert listened == declared
    assert "app_home_opened" in listened  # a guard on the scan


def test_shortcuts_match_the_callback_ids_the_code_answers(manifest: dict[str, Any]) -> None:
    from bot.blockkit.ids import CallbackId
    from bot.slack import shortcuts

    declared = {(s["callback_id"], s["type"]) for s in manifest["features"]["shortcuts"]}
    assert declared == {
        (CallbackId.ACT_SHORTCUT.value, "global"),
        (CallbackId.INCIDENT_SHORTCUT.value, "message"),
    }
    answered = {route.name for route in shortcuts.ROUTES}
    assert {callback for callback, _ in declared} == answered
    # The demo's playground offers the same shortcuts, by the same names.
    from bot.demo import SHORTCUTS

    offered = {(s.name, s.type, s.callback_id) for s in SHORTCUTS}
    assert offered == {
        (s["name"], s["type"], s["callback_id"]) for s in manifest["features"]["shortcuts"]
    }


def test_app_home_and_the_options_url(manifest: dict[str, Any]) -> None:
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    interactivity = manifest["settings"]["interactivity"]
    # HTTP mode: Slack asks the instance pickers' options at the one events route too.
    assert interactivity["message_menu_options_url"].endswith("/slack/events")
    assert manifest["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("await client.chat_postMessage(channel=c, text=t)", {"chat_postMessage"}),
        ("await self._client.files_upload_v2(channel=c)", {"files_upload_v2"}),
        ("await web.usergroups_users_list(usergroup=g)", {"usergroups_users_list"}),
        ('await client.api_call("conversations.info", params=p)', {"conversations_info"}),
        ("await say(text='hi')", {"chat_postMessage"}),
        ("await respond(text='hi')", set()),  # response_url: no scope
        ("def chat_update_text(x):  # not a call on a client", set()),
        ("essay(x); self.say_hello()", set()),
    ],
)
def test_the_scanner_finds_calls(source: str, expected: set[str]) -> None:
    assert web_api_methods(source) == expected
