"""The `/starpod` command text → a :class:`Command`, or a :class:`UsageProblem` to show.

Pure and total: no I/O, and :func:`parse` never raises, whatever the text (it is fuzzed).
It reads what Slack actually sends, typed on phones at night:

- Slack's markup: ``<@U123|ana>``, ``<#C123|ops>``, ``<!here>``, ``<http://x|x>`` and the
  HTML entities ``&lt; &gt; &amp;`` that stand for literal ``< > &``;
- a phone's "smart" punctuation: ``“quotes”`` and ``—tail`` (an em dash for ``--``);
- capitalised first words (``Restart pod-7``), ``--opt=value`` and ``--opt value``;
- quoted values with spaces (``--grep "connection refused"``); an apostrophe inside a
  word (``--grep don't``) is kept as text, an unclosed quote is a usage answer.

Typos get the nearest valid word (difflib): ``restrat`` → "Did you mean `restart`?".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import timedelta

from bot.alerts.maintenance_rules import MAX_LENGTH as MAX_WINDOW
from bot.alerts.maintenance_rules import MAX_REASON, Start, check_target, parse_start
from bot.catalog import (
    ALIASES,
    COMMAND,
    DEFAULT_TAIL,
    KNOWN_STATUSES,
    LEVEL_ALIASES,
    LOG_LEVELS,
    MAX_TAIL,
    SPECS,
    SYNONYMS,
    Subcommand,
)

MAX_REF_LENGTH = 200
MAX_VALUE_LENGTH = 200
MAX_NAME_LENGTH = 100
MIN_MUTE = timedelta(minutes=1)
MAX_MUTE = timedelta(days=30)

# Options with a value, and flags. Short spellings map to the long ones.
VALUE_OPTIONS = frozenset(
    {"--status", "--region", "--name", "--tail", "--level", "--grep", "--reason"}
)
FLAG_OPTIONS = frozenset({"--no-restart"})
SHORT_OPTIONS = {
    "-n": "--tail",
    "-l": "--level",
    "-g": "--grep",
    "-s": "--status",
    "-r": "--region",
}

_SUBCOMMAND_WORDS = frozenset(sub.value for sub in Subcommand)
_SLACK_MARKUP = re.compile(r"<([^<>]*)>")
_DASHES = "\u2014\u2013\u2212\u2012\u2010"  # em dash, en dash, minus sign, figure dash, hyphen
_QUOTES = {
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_DURATION_PART = re.compile(r"(\d+)\s*([a-z]+)")
_UNITS = {
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}


@dataclass(frozen=True)
class Options:
    """Everything a subcommand may carry besides its instance reference."""

    status: str | None = None
    region: str | None = None
    name: str | None = None
    tail: int = DEFAULT_TAIL
    level: str | None = None
    grep: str | None = None
    mute_for: timedelta | None = None
    no_restart: bool = False
    topic: Subcommand | None = None  # help <subcommand>
    maintenance: MaintenanceRequest | None = None


@dataclass(frozen=True)
class MaintenanceRequest:
    """``maintenance add|list|cancel``: the action and what it needs."""

    action: str  # "add", "list" or "cancel"
    target: str | None = None  # add: "all" or a name glob
    start: Start | None = None  # add
    length: timedelta | None = None  # add
    reason: str | None = None  # add
    window_id: int | None = None  # cancel


@dataclass(frozen=True)
class Command:
    """A well-formed command: what to do, on which instance, with which options."""

    subcommand: Subcommand
    ref: str | None = None
    options: Options = field(default_factory=Options)
    text: str = ""  # the normalised text, for the audit log


@dataclass(frozen=True)
class UsageProblem:
    """Why the text is not a command, the usage line to show, and the word we guess."""

    message: str
    usage: str | None = None
    suggestion: str | None = None
    subcommand: Subcommand | None = None
    text: str = ""


class _Problem(Exception):
    """Internal: a usage problem found deep in the parse, carried out to :func:`parse`."""

    def __init__(self, problem: UsageProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def parse(text: str) -> Command | UsageProblem:
    """Read the text after ``/starpod``. Never raises."""
    normalised = normalise(text)
    tokens = tokenize(normalised)
    if isinstance(tokens, UsageProblem):
        # Still show the usage line when the first word names a subcommand.
        first = normalised.split(maxsplit=1)[0].lower() if normalised.split() else ""
        sub = Subcommand(first) if first in _SUBCOMMAND_WORDS else None
        usage = SPECS[sub].usage_line if sub is not None else f"{COMMAND} help"
        return UsageProblem(tokens.message, usage, None, sub, normalised)
    try:
        return _parse_tokens(tokens, normalised)
    except _Problem as exc:
        p = exc.problem
        return UsageProblem(p.message, p.usage, p.suggestion, p.subcommand, normalised)


# -- text clean-up ----------------------------------------------------------------------


def unescape_slack(text: str) -> str:
    """Turn Slack's ``<…>`` markup into what the user saw, then decode ``&lt; &gt; &amp;``."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            if label:
                return label
            keyword = target[1:].split("^", 1)[0]
            return "@" + keyword
        return label or target

    plain = _SLACK_MARKUP.sub(replace, text)
    # &amp; last, so "&amp;lt;" stays the literal text "&lt;".
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def normalise(text: str) -> str:
    """Slack markup decoded, smart quotes made plain, invisible characters dropped."""
    if not isinstance(text, str):
        return ""
    clean = unescape_slack(text).translate(_INVISIBLE)
    for fancy, plain in _QUOTES.items():
        clean = clean.replace(fancy, plain)
    clean = clean.replace("\u00a0", " ")
    return clean.strip()


def tokenize(text: str) -> list[str] | UsageProblem:
    """Split on whitespace, honouring quotes; an unclosed quote is a usage problem.

    An apostrophe inside a word with no closing partner (``don't``) is plain text.
    A token starting with a dash-like character (``—tail``) becomes ``--tail``.
    """
    tokens: list[str] = []
    current: list[str] = []
    in_token = False
    quote: str | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if quote is not None:
            if char == "\\" and i + 1 < len(text) and text[i + 1] == quote:
                current.append(quote)
                i += 2
                continue
            if char == quote:
                quote = None
            else:
                current.append(char)
            i += 1
            continue
        if char.isspace():
            if in_token:
                tokens.append("".join(current))
                current, in_token = [], False
            i += 1
            continue
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "\"'":
            current.append(text[i + 1])
            in_token = True
            i += 2
            continue
        if char in "\"'":
            closes = text.find(char, i + 1)
            mid_word = bool(current) and current[-1].isalnum()
            if closes == -1:
                if mid_word:
                    current.append(char)  # an apostrophe: don't, it's
                    i += 1
                    continue
                return UsageProblem(
                    f"The quote {char} is never closed. Put the text between two quotes, "
                    'e.g. `--grep "connection refused"`.'
                )
            quote = char
            in_token = True
            i += 1
            continue
        current.append(char)
        in_token = True
        i += 1
    if in_token:
        tokens.append("".join(current))
    return [_fix_dashes(token) for token in tokens]


def _fix_dashes(token: str) -> str:
    # Phones turn "--" into an em dash; a single fancy dash before a word means "--" too.
    if token and token[0] in _DASHES:
        rest = token.lstrip(_DASHES + "-")
        if rest and rest[0].isalpha():
            return "--" + rest
    return token


# -- the parse itself ---------------------------------------------------------------------


def _usage(sub: Subcommand) -> str:
    return SPECS[sub].usage_line


def _fail(message: str, sub: Subcommand | None = None, suggestion: str | None = None) -> _Problem:
    usage = _usage(sub) if sub is not None else f"{COMMAND} help"
    return _Problem(UsageProblem(message, usage, suggestion, sub))


def _nearest(word: str, choices: list[str], cutoff: float = 0.6) -> str | None:
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def _code(text: str) -> str:
    # Values echoed back inside `code`: a backtick would end the span early.
    flat = " ".join(text.split()).replace("`", "'")
    return flat if len(flat) <= 40 else flat[:39] + "…"


def _subcommand(word: str) -> Subcommand:
    folded = word.lower()
    if folded in ALIASES:
        return ALIASES[folded]
    try:
        return Subcommand(folded)
    except ValueError:
        pass
    if folded in SYNONYMS:
        raise _synonym_problem(word, SYNONYMS[folded])
    names = [s.value for s in Subcommand]
    guess = _nearest(folded, names + list(SYNONYMS))
    if guess is not None and guess in SYNONYMS:
        raise _synonym_problem(word, SYNONYMS[guess])
    if guess is not None:
        sub = Subcommand(guess)
        raise _fail(
            f"Unknown subcommand `{_code(word)}`. Did you mean `{guess}`?", sub, suggestion=guess
        )
    raise _fail(f"Unknown subcommand `{_code(word)}`. See `{COMMAND} help` for the list.")


def _synonym_problem(word: str, meant: tuple[Subcommand, ...]) -> _Problem:
    words = " or ".join(f"`{m.value}`" for m in meant)
    return _fail(
        f"`{_code(word)}` is not a subcommand. Did you mean {words}?",
        meant[0],
        suggestion=meant[0].value,
    )


def _parse_tokens(tokens: list[str], text: str) -> Command:
    if not tokens:
        return Command(Subcommand.HELP, text=text)
    sub = _subcommand(tokens[0])
    spec = SPECS[sub]
    values: dict[str, str] = {}
    flags: set[str] = set()
    positional: list[str] = []
    grep_value: str | None = None
    rest = tokens[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if _is_option(token):
            name, has_inline, inline = token.partition("=")
            option = _option_name(name.lower(), sub)
            if option in FLAG_OPTIONS:
                if has_inline:
                    raise _fail(f"`{option}` takes no value.", sub)
                flags.add(option)
                i += 1
                continue
            if has_inline:
                value = inline
                i += 1
            elif i + 1 < len(rest) and not _is_option(rest[i + 1]):
                value = rest[i + 1]
                i += 2
            else:
                raise _fail(f"`{option}` needs a value, e.g. `{_example(option)}`.", sub)
            if not value.strip():
                raise _fail(f"`{option}` needs a value, e.g. `{_example(option)}`.", sub)
            values[option] = value  # given twice: the last one wins
            grep_value = value if option == "--grep" else None
            continue
        positional.append(token)
        i += 1
        if grep_value is not None and len(positional) > _max_positional(sub):
            words = " ".join([grep_value, *rest[i - 1 :]])
            raise _fail(f'Put text with spaces between quotes: `--grep "{_code(words)}"`.', sub)
    return _build(sub, spec.ref, positional, values, flags, text)


def _is_option(token: str) -> bool:
    # "-" alone or "-5" are values, not options.
    return len(token) > 1 and token[0] == "-" and not token[1:2].isdigit()


def _option_name(raw: str, sub: Subcommand) -> str:
    name = SHORT_OPTIONS.get(raw, raw)
    if not name.startswith("--"):
        name = "-" + name  # "-tail" → "--tail"
    allowed = SPECS[sub].options
    if name in allowed:
        return name
    known = VALUE_OPTIONS | FLAG_OPTIONS
    if name in known:
        if allowed:
            also = ", ".join(f"`{o}`" for o in allowed)
            raise _fail(f"`{name}` is not an option of `{sub.value}` (it takes {also}).", sub)
        raise _fail(f"`{sub.value}` takes no options.", sub)
    guess = _nearest(name, list(allowed)) if allowed else None
    if guess is not None:
        raise _fail(f"Unknown option `{_code(name)}`. Did you mean `{guess}`?", sub, guess)
    raise _fail(f"Unknown option `{_code(name)}`.", sub)


def _example(option: str) -> str:
    return {
        "--status": "--status running",
        "--region": "--region eu-west-1",
        "--name": "--name web-1",
        "--tail": "--tail 200",
        "--level": "--level warn",
        "--grep": '--grep "timeout"',
        "--reason": '--reason "kernel upgrade"',
    }.get(option, option)


BUDGET_VERBS = ("reset",)


def _max_positional(sub: Subcommand) -> int:
    if sub in (Subcommand.MUTE, Subcommand.BUDGET):
        return 2
    if sub is Subcommand.MAINTENANCE:
        return 4  # add <target> <start> <duration>
    return 0 if SPECS[sub].ref == "none" and sub is not Subcommand.HELP else 1


def _build(
    sub: Subcommand,
    ref_rule: str,
    positional: list[str],
    values: dict[str, str],
    flags: set[str],
    text: str,
) -> Command:
    limit = _max_positional(sub)
    if len(positional) > limit:
        extra = " ".join(positional[limit:])
        if sub is Subcommand.LIST and positional[0].lower() in KNOWN_STATUSES:
            word = positional[0].lower()
            raise _fail(f"To filter by status, write `--status {word}`.", sub, f"--status {word}")
        if limit == 0:
            raise _fail(
                f"`{sub.value}` takes no instance or other words (got `{_code(extra)}`).", sub
            )
        raise _fail(f"Too many words: `{_code(extra)}`. Quote a name with spaces.", sub)
    options = Options(
        status=_status(values.get("--status"), sub),
        region=_bounded(values.get("--region"), "--region", MAX_NAME_LENGTH, sub),
        name=_bounded(values.get("--name"), "--name", MAX_NAME_LENGTH, sub),
        tail=_tail(values.get("--tail"), sub),
        level=_level(values.get("--level"), sub),
        grep=_bounded(values.get("--grep"), "--grep", MAX_VALUE_LENGTH, sub),
        no_restart="--no-restart" in flags,
    )
    if sub is Subcommand.HELP:
        topic = _topic(positional[0]) if positional else None
        return Command(sub, None, Options(topic=topic), text)
    if sub is Subcommand.MAINTENANCE:
        request = _maintenance(positional, values, flags)
        return Command(sub, None, Options(maintenance=request, no_restart=options.no_restart), text)
    if sub is Subcommand.BUDGET:
        positional = _budget_verb(positional)
    ref: str | None = None
    if ref_rule in ("required", "optional") and positional:
        # A quoted blank (`health " "`) names no instance: as if none was given.
        ref = _ref(positional[0], sub) or None
    if ref_rule == "required" and ref is None:
        raise _fail(f"`{sub.value}` needs an instance: its id, an id prefix or its name.", sub)
    if sub is Subcommand.MUTE:
        if len(positional) < 2:
            raise _fail(
                "`mute` needs a duration after the instance, e.g. `30m`, `2h` or `1d`.", sub
            )
        mute_for = parse_duration(positional[1])
        if isinstance(mute_for, str):
            raise _fail(mute_for, sub)
        options = Options(mute_for=mute_for, no_restart=options.no_restart)
    return Command(sub, ref, options, text)


_MAINTENANCE_ACTIONS = ("add", "list", "cancel")


def _maintenance(
    positional: list[str], values: dict[str, str], flags: set[str]
) -> MaintenanceRequest:
    sub = Subcommand.MAINTENANCE
    if not positional:
        raise _fail("`maintenance` needs `add`, `list` or `cancel`.", sub)
    action = positional[0].lower()
    rest = positional[1:]
    if action not in _MAINTENANCE_ACTIONS:
        guess = _nearest(action, list(_MAINTENANCE_ACTIONS))
        hint = f" Did you mean `{guess}`?" if guess else ""
        raise _fail(
            f"Unknown maintenance action `{_code(positional[0])}`: use `add`, `list` or "
            f"`cancel`.{hint}",
            sub,
            guess,
        )
    if action != "add" and (flags or values):
        raise _fail(f"`maintenance {action}` takes no options.", sub)
    if action == "list":
        if rest:
            raise _fail(
                f"`maintenance list` takes nothing else (got `{_code(' '.join(rest))}`).", sub
            )
        return MaintenanceRequest("list")
    if action == "cancel":
        if len(rest) != 1:
            raise _fail(
                "`maintenance cancel` needs one window id, e.g. `maintenance cancel 3`.", sub
            )
        number = rest[0].strip().lstrip("#")
        if not (number.isascii() and number.isdigit()) or len(number) > 12:
            raise _fail(
                f"`{_code(rest[0])}` is not a window id: use the number `maintenance list` "
                "shows, e.g. `maintenance cancel 3`.",
                sub,
            )
        return MaintenanceRequest("cancel", window_id=int(number))
    if len(rest) < 3:
        raise _fail(
            "`maintenance add` needs a name glob (or `all`), a start and a duration, "
            "e.g. `maintenance add web-* now 2h`.",
            sub,
        )
    try:
        target = check_target(rest[0])
        start = parse_start(rest[1])
    except ValueError as exc:
        raise _fail(str(exc), sub) from None
    length = parse_duration(rest[2], most=MAX_WINDOW, what="A maintenance window lasts")
    if isinstance(length, str):
        raise _fail(length, sub)
    reason = _bounded(values.get("--reason"), "--reason", MAX_REASON, sub)
    return MaintenanceRequest("add", target, start, length, reason or None)


def _budget_verb(positional: list[str]) -> list[str]:
    """``budget reset <id>``: check the verb, return what follows it (the instance)."""
    sub = Subcommand.BUDGET
    if not positional:
        raise _fail("`budget` needs what to do and an instance: `budget reset <id>`.", sub)
    verb = positional[0].lower()
    if verb not in BUDGET_VERBS:
        guess = _nearest(verb, list(BUDGET_VERBS))
        hint = f" Did you mean `{guess}`?" if guess else ""
        raise _fail(f"`budget` can only `reset` (got `{_code(positional[0])}`).{hint}", sub)
    return positional[1:]


def _ref(value: str, sub: Subcommand) -> str:
    ref = value.strip()
    if len(ref) > MAX_REF_LENGTH:
        raise _fail(f"That instance reference is {len(ref)} characters long; ids are shorter.", sub)
    return ref


def _topic(word: str) -> Subcommand:
    folded = word.lower()
    try:
        return Subcommand(folded)
    except ValueError:
        pass
    if folded in SYNONYMS:
        return SYNONYMS[folded][0]
    guess = _nearest(folded, [s.value for s in Subcommand])
    hint = f" Did you mean `{guess}`?" if guess else ""
    raise _fail(f"No help topic `{_code(word)}`.{hint}", Subcommand.HELP, guess)


def _bounded(value: str | None, option: str, limit: int, sub: Subcommand) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise _fail(f"`{option}` is limited to {limit} characters.", sub)
    return value


def _tail(value: str | None, sub: Subcommand) -> int:
    if value is None:
        return DEFAULT_TAIL
    text = value.strip().replace("_", "").replace(",", "")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_TAIL:
        raise _fail(f"`--tail` takes a number from 1 to {MAX_TAIL}, not `{_code(value)}`.", sub)
    return int(text)


def _level(value: str | None, sub: Subcommand) -> str | None:
    if value is None:
        return None
    folded = value.strip().lower()
    folded = LEVEL_ALIASES.get(folded, folded)
    if folded in LOG_LEVELS:
        return folded
    guess = _nearest(folded, list(LOG_LEVELS))
    hint = f" Did you mean `{guess}`?" if guess else ""
    raise _fail(
        f"`--level` is one of error, warn, info, debug, not `{_code(value)}`.{hint}", sub, guess
    )


def _status(value: str | None, sub: Subcommand) -> str | None:
    if value is None:
        return None
    folded = value.strip().lower()
    if folded in KNOWN_STATUSES or not folded:
        return folded or None
    # An unknown word close to a known status is a typo; anything else may be a status
    # our backend has and we never heard of, so it is accepted as typed.
    guess = _nearest(folded, list(KNOWN_STATUSES), cutoff=0.75)
    if guess is not None:
        raise _fail(f"Unknown status `{_code(value)}`. Did you mean `{guess}`?", sub, guess)
    if len(folded) > 64:
        raise _fail("`--status` is limited to 64 characters.", sub)
    return folded


def _span_words(span: timedelta) -> str:
    secs = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs % size == 0:
            count = secs // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{secs} seconds"


def parse_duration(
    text: str,
    *,
    least: timedelta = MIN_MUTE,
    most: timedelta = MAX_MUTE,
    what: str = "Mute for",
) -> timedelta | str:
    """``30m``, ``2h``, ``1d``, ``1h30m``, ``2 hours`` → timedelta, or the problem as text.

    Bounded by ``least`` and ``most``; ``what`` starts the sentence that says so."""
    raw = text.strip().lower()
    if raw.isdigit():
        return f"`{_code(text)}` needs a unit: `{raw}m`, `{raw}h` or `{raw}d`."
    position = 0
    seconds = 0
    compact = raw.replace(" ", "")
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        unit = _UNITS.get(match.group(2))
        if unit is None:
            return f"Unknown unit in `{_code(text)}`: use m, h or d (e.g. `30m`, `2h`, `1d`)."
        # Cap before multiplying: a 400-digit number must not build a huge int for nothing.
        count = int(match.group(1)[:9])
        seconds += count * unit
        position = match.end()
    if position != len(compact) or position == 0:
        return f"`{_code(text)}` is not a duration: use e.g. `30m`, `2h` or `1d`."
    duration = timedelta(seconds=min(seconds, int(most.total_seconds()) + 1))
    if duration < least:
        return f"{what} at least {_span_words(least)}."
    if duration > most:
        return f"{what} at most {_span_words(most)}."
    return duration
