"""The `/starpod` parser: every subcommand, every option, every bad input, and fuzzing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalog import MAX_TAIL, SPECS, Subcommand
from bot.slack.parser import (
    Command,
    UsageProblem,
    normalise,
    parse,
    parse_duration,
    tokenize,
    unescape_slack,
)


def ok(text: str) -> Command:
    result = parse(text)
    assert isinstance(result, Command), f"{text!r} → {result}"
    return result


def bad(text: str) -> UsageProblem:
    result = parse(text)
    assert isinstance(result, UsageProblem), f"{text!r} parsed as {result}"
    assert result.message
    return result


# -- every subcommand ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sub", "ref"),
    [
        ("help", Subcommand.HELP, None),
        ("list", Subcommand.LIST, None),
        ("create", Subcommand.CREATE, None),
        ("health a1b2", Subcommand.HEALTH, "a1b2"),
        ("logs pod-7", Subcommand.LOGS, "pod-7"),
        ("ssh pod-7", Subcommand.SSH, "pod-7"),
        ("pause pod-7", Subcommand.PAUSE, "pod-7"),
        ("restart pod-7", Subcommand.RESTART, "pod-7"),
        ("kill pod-7", Subcommand.KILL, "pod-7"),
        ("history pod-7", Subcommand.HISTORY, "pod-7"),
        ("mute pod-7 30m", Subcommand.MUTE, "pod-7"),
        ("unmute pod-7", Subcommand.UNMUTE, "pod-7"),
        ("audit", Subcommand.AUDIT, None),
        ("audit pod-7", Subcommand.AUDIT, "pod-7"),
        ("status", Subcommand.STATUS, None),
    ],
)
def test_every_subcommand_parses(text: str, sub: Subcommand, ref: str | None) -> None:
    command = ok(text)
    assert command.subcommand is sub
    assert command.ref == ref


def test_every_catalog_entry_is_covered_by_the_table_above() -> None:
    assert set(SPECS) == set(Subcommand)


def test_empty_text_and_help_spellings_show_help() -> None:
    for text in ("", "   ", "help", "HELP", "-h", "--help", "?"):
        assert ok(text).subcommand is Subcommand.HELP


def test_help_topic() -> None:
    assert ok("help logs").options.topic is Subcommand.LOGS
    assert ok("help stop").options.topic is Subcommand.PAUSE
    problem = bad("help logz")
    assert problem.suggestion == "logs"


def test_subcommand_is_case_insensitive_for_phones() -> None:
    command = ok("Restart Pod-7")
    assert command.subcommand is Subcommand.RESTART
    assert command.ref == "Pod-7"  # names keep their case


# -- options -------------------------------------------------------------------------------


def test_list_filters() -> None:
    command = ok("list --status Running --region eu-west-1")
    assert command.options.status == "running"
    assert command.options.region == "eu-west-1"
    assert ok("list --status=paused").options.status == "paused"
    assert ok("list -s error -r us-east-1").options.region == "us-east-1"


def test_unknown_status_close_to_a_known_one_is_a_typo() -> None:
    problem = bad("list --status runing")
    assert problem.suggestion == "running"
    assert "Did you mean `running`?" in problem.message


def test_unknown_status_far_from_known_ones_is_accepted_as_a_new_backend_status() -> None:
    assert ok("list --status hibernating").options.status == "hibernating"


def test_list_with_a_bare_status_word_hints_the_option() -> None:
    problem = bad("list running")
    assert "--status running" in problem.message


def test_create_options() -> None:
    command = ok('create --name "web 1" --region us-west-2')
    assert command.options.name == "web 1"
    assert command.options.region == "us-west-2"
    assert ok("create").options.name is None


def test_logs_options() -> None:
    command = ok('logs pod-7 --tail 200 --level warning --grep "conn refused"')
    assert command.options.tail == 200
    assert command.options.level == "warn"
    assert command.options.grep == "conn refused"
    assert ok("logs pod-7").options.tail == 50
    assert ok("logs pod-7 -n 10").options.tail == 10
    assert ok("logs pod-7 --tail=1").options.tail == 1
    assert ok(f"logs pod-7 --tail {MAX_TAIL}").options.tail == MAX_TAIL
    assert ok("logs pod-7 --tail 1,000").options.tail == 1000


@pytest.mark.parametrize("value", ["0", "10001", "-5", "abc", "1.5", "1e3", "٣"])
def test_tail_out_of_bounds_or_not_a_number(value: str) -> None:
    problem = bad(f"logs pod-7 --tail {value}")
    assert "1 to 10000" in problem.message
    assert problem.usage == SPECS[Subcommand.LOGS].usage_line


def test_level_aliases_and_typos() -> None:
    assert ok("logs p --level ERR").options.level == "error"
    assert ok("logs p --level trace").options.level == "debug"
    problem = bad("logs p --level wran")
    assert problem.suggestion == "warn"


def test_option_given_twice_keeps_the_last() -> None:
    assert ok("logs p --tail 5 --tail 7").options.tail == 7


def test_option_without_value() -> None:
    problem = bad("logs pod-7 --tail")
    assert "`--tail` needs a value" in problem.message
    problem = bad("logs pod-7 --grep --tail 5")
    assert "`--grep` needs a value" in problem.message
    assert "needs a value" in bad("logs pod-7 --grep=").message


def test_unknown_option_suggests_the_nearest() -> None:
    problem = bad("logs pod-7 --tial 5")
    assert problem.suggestion == "--tail"
    assert "Did you mean `--tail`?" in problem.message


def test_option_of_another_subcommand() -> None:
    problem = bad("list --tail 5")
    assert "`--tail` is not an option of `list`" in problem.message
    assert "takes no options" in bad("health pod-7 --tail 5").message


def test_a_quoted_blank_names_no_instance() -> None:
    # Found by the fuzzer: `health " "` (smart quotes too) once gave an empty reference.
    assert "needs an instance" in bad('health " "').message
    assert "needs an instance" in bad("health \u201c \u201c").message
    assert ok('audit "  "').ref is None  # the instance is optional: the whole audit log


def test_flag_with_a_value_is_refused() -> None:
    assert "takes no value" in bad("mute p 1h --no-restart=yes").message


def test_negative_number_is_a_value_not_an_option() -> None:
    assert "1 to 10000" in bad("logs p --tail -5").message


# -- mute durations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2 hours", timedelta(hours=2)),
        ("1w", timedelta(weeks=1)),
        ("45MIN", timedelta(minutes=45)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("30", "needs a unit"),
        ("0m", "at least 1 minute"),
        ("31d", "at most 30 days"),
        ("5y", "Unknown unit"),
        ("soon", "not a duration"),
        ("h2", "not a duration"),
        ("9" * 400 + "d", "at most 30 days"),
    ],
)
def test_bad_durations(text: str, fragment: str) -> None:
    result = parse_duration(text)
    assert isinstance(result, str)
    assert fragment in result


def test_mute_command() -> None:
    command = ok("mute pod-7 2h --no-restart")
    assert command.options.mute_for == timedelta(hours=2)
    assert command.options.no_restart is True
    assert ok("mute pod-7 2h").options.no_restart is False
    assert "needs a duration" in bad("mute pod-7").message
    assert "needs a unit" in bad("mute pod-7 30").message


def test_budget_reset_command() -> None:
    command = ok("budget reset pod-7")
    assert command.subcommand is Subcommand.BUDGET and command.ref == "pod-7"
    assert ok("Budget RESET pod-7").ref == "pod-7"
    assert "`budget reset <id>`" in bad("budget").message
    assert "can only `reset`" in bad("budget pod-7").message
    assert "Did you mean `reset`?" in bad("budget rset pod-7").message
    assert "needs an instance" in bad("budget reset").message


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("restrat pod-7", "restart"),
        ("lsit", "list"),
        ("halth pod", "health"),
        ("lgos pod", "logs"),
        ("unmtue pod", "unmute"),
        ("histroy pod", "history"),
    ],
)
def test_typo_suggests_the_nearest_subcommand(text: str, suggestion: str) -> None:
    problem = bad(text)
    assert problem.suggestion == suggestion
    assert f"Did you mean `{suggestion}`?" in problem.message
    assert problem.usage == SPECS[Subcommand(suggestion)].usage_line


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("stop", "`pause` or `kill`"),
        ("delete", "`kill`"),
        ("ls", "`list`"),
        ("resume", "`restart`"),
    ],
)
def test_synonyms_are_suggested_never_run(word: str, meant: str) -> None:
    problem = bad(f"{word} pod-7")
    assert meant in problem.message


def test_nonsense_subcommand_points_to_help() -> None:
    problem = bad("xyzzy")
    assert "Unknown subcommand `xyzzy`" in problem.message
    assert problem.usage == "/starpod help"
    assert problem.suggestion is None


def test_missing_instance() -> None:
    for sub in ("health", "logs", "ssh", "pause", "restart", "kill", "history", "unmute"):
        problem = bad(sub)
        assert "needs an instance" in problem.message
        assert problem.usage == SPECS[Subcommand(sub)].usage_line


def test_too_many_words() -> None:
    assert "Too many words" in bad("health pod 7").message
    assert "takes no instance" in bad("status now").message
    assert "takes no instance" in bad("create pod-7").message


def test_unquoted_grep_with_spaces_hints_quotes() -> None:
    problem = bad("logs pod-7 --grep connection refused")
    assert '--grep "connection refused"' in problem.message


def test_unbalanced_quote_is_a_usage_answer() -> None:
    problem = bad('logs pod-7 --grep "connection refused')
    assert "never closed" in problem.message
    assert problem.usage == SPECS[Subcommand.LOGS].usage_line


def test_overlong_values_are_refused() -> None:
    assert "shorter" in bad("health " + "a" * 300).message
    assert "limited to" in bad("logs p --grep " + "x" * 300).message
    assert "limited to" in bad("create --name " + "n" * 101).message


def test_backticks_in_echoed_words_cannot_break_the_code_span() -> None:
    problem = bad("re`start")
    assert problem.message.count("`") % 2 == 0


# -- what Slack and phones send -------------------------------------------------------------


def test_slack_markup_is_unescaped() -> None:
    assert unescape_slack("<@U123|ana>") == "@ana"
    assert unescape_slack("<@U123>") == "@U123"
    assert unescape_slack("<#C1|ops>") == "#ops"
    assert unescape_slack("<!here>") == "@here"
    assert unescape_slack("<!subteam^S1|@oncall>") == "@oncall"
    assert unescape_slack("<https://x.example|x.example>") == "x.example"
    assert unescape_slack("<https://x.example>") == "https://x.example"
    assert unescape_slack("a &lt;b&gt; &amp;lt;") == "a <b> &lt;"


def test_html_entities_in_a_name() -> None:
    assert ok("health &lt;!channel&gt;").ref == "<!channel>"
    assert ok("logs p --grep &quot;x&amp;y").options.grep == "&quot;x&y"


def test_phone_punctuation() -> None:
    command = ok("logs pod-7 \u2014tail 20 \u2013level warn --grep \u201cdisk full\u201d")
    assert command.options.tail == 20
    assert command.options.level == "warn"
    assert command.options.grep == "disk full"
    assert ok("logs p --grep \u2018x y\u2019").options.grep == "x y"
    assert ok("health\u00a0pod-7\u200b").ref == "pod-7"


def test_apostrophe_inside_a_word_is_text() -> None:
    assert ok("logs p --grep don't").options.grep == "don't"
    assert ok("health o'brien").ref == "o'brien"


def test_tokenizer_quotes_and_escapes() -> None:
    assert tokenize('a "b c" d') == ["a", "b c", "d"]
    assert tokenize("--grep='x y'") == ["--grep=x y"]
    assert tokenize(r'"say \"hi\""') == ['say "hi"']
    assert tokenize('""') == [""]
    assert isinstance(tokenize("'open"), UsageProblem)


def test_normalise_tolerates_non_text() -> None:
    assert normalise(None) == ""  # type: ignore[arg-type]


# -- fuzzing: parse never raises -----------------------------------------------------------

_words = st.sampled_from(
    [
        *[s.value for s in Subcommand],
        "--tail",
        "--level",
        "--grep",
        "--status",
        "--region",
        "--name",
        "--no-restart",
        "-n",
        "=",
        '"',
        "'",
        "\\",
        "<@U1|x>",
        "<!channel>",
        "&lt;",
        "&amp;",
        "\u2014",
        "30m",
        "0",
        "-1",
        "10001",
        "pod-7",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_words, st.text(max_size=12)), max_size=8))
def test_fuzz_parse_never_raises(parts: list[str]) -> None:
    result = parse(" ".join(parts))
    assert isinstance(result, Command | UsageProblem)
    if isinstance(result, UsageProblem):
        assert result.message.strip()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    assert isinstance(parse(text), Command | UsageProblem)
