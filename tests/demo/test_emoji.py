"""Every emoji the bot sends has a fallback in the playground (stock Chromium has no emoji font).

The emoji are collected from the bot's own code: unicode emoji in any string of bot/ (outside
the simulators), ``:shortcode:`` words in its string literals, and the playground's own page.
The browser half (each fallback glyph really is drawn) is in test_playground_browser.py.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import bot
from bot.sim.playground import STATIC_FILES, static_dir

BOT_DIR = Path(bot.__file__).parent
VS16 = "\ufe0f"
# Unicode's Emoji_Presentation=Yes characters below U+1F000 (emoji-data.txt, Unicode 15):
# drawn as emoji even without U+FE0F. Everything from U+1F000 on that the bot uses is too.
BMP_EMOJI_PRESENTATION = set(
    "⌚⌛⏩⏪⏫⏬⏰⏳◽◾☔☕♈♉♊♋♌♍♎♏♐♑♒♓♿⚓⚡⚪⚫⚽⚾⛄⛅⛎⛔⛪⛲⛳⛵⛺⛽✅✊✋✨❌❎❓❔❕❗\u2795\u2796➗➰➿⬛⬜⭐⭕"
)
SHORTCODE = re.compile(r"(?<![\w:]):([a-z][a-z0-9_+-]*):(?![\w:])")
NOT_SHORTCODES = {"memory"}  # SQLite's ":memory:" database name


def emoji_in(text: str) -> set[str]:
    """The emoji of ``text``, each without its variation selector."""
    found = set()
    for index, char in enumerate(text):
        presented = text[index + 1 : index + 2] == VS16
        if ord(char) >= 0x1F000 or char in BMP_EMOJI_PRESENTATION or presented:
            found.add(char)
    return found


def _strings(path: Path) -> list[str]:
    """The string literals of a module, its docstrings (and attribute docstrings) left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in documentation
    ]


def bot_modules() -> list[Path]:
    """The bot's modules, not the simulator and emulator (which send nothing to Slack)."""
    return [p for p in BOT_DIR.rglob("*.py") if "sim" not in p.relative_to(BOT_DIR).parts]


def table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((static_dir() / "emoji.json").read_text(encoding="utf-8"))
    return data


def test_every_emoji_the_bot_sends_or_the_page_shows_has_a_fallback() -> None:
    used: dict[str, str] = {}
    for path in bot_modules():
        for text in _strings(path):
            for emoji in emoji_in(text):
                used.setdefault(emoji, str(path.relative_to(BOT_DIR)))
    for name in (*STATIC_FILES, "index.html"):
        if name.endswith((".js", ".html")):
            for emoji in emoji_in((static_dir() / name).read_text(encoding="utf-8")):
                used.setdefault(emoji, name)
    # The collection itself works: these are known to be sent.
    assert {"✅", "🔴", "🟢", "⚠", "📣", "🚀"} <= set(used), sorted(used)
    fallbacks = table()["fallbacks"]
    missing = {emoji: where for emoji, where in used.items() if emoji not in fallbacks}
    assert missing == {}, "add these to bot/sim/playground/emoji.json"


def test_every_shortcode_the_bot_writes_is_known_and_has_a_fallback() -> None:
    used = {
        name
        for path in bot_modules()
        for text in _strings(path)
        for name in SHORTCODE.findall(text)
        if name not in NOT_SHORTCODES
    }
    assert "information_source" in used
    data = table()
    assert used <= set(data["shortcodes"]), used - set(data["shortcodes"])
    for name, emoji in data["shortcodes"].items():
        assert emoji.rstrip(VS16) in data["fallbacks"], name


def test_fallbacks_are_well_formed() -> None:
    for emoji, spec in table()["fallbacks"].items():
        assert emoji_in(emoji + VS16) == {emoji} and len(emoji) == 1, emoji
        assert set(spec) <= {"glyph", "color", "background"}, emoji
        assert 1 <= len(spec["glyph"]) <= 3 and not emoji_in(spec["glyph"]), emoji
        for key in ("color", "background"):
            if key in spec:
                assert re.fullmatch(r"#[0-9a-f]{6}", spec[key]), (emoji, key)
