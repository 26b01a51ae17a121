"""Any log line, and any byte chunking of a log stream → entries, never an exception.

Two levels: :func:`~bot.backend.logparse.parse_log_line` on arbitrary text and bytes, and
the whole path — a scripted server on loopback streams a hypothesis-built body cut at
hypothesis-chosen byte offsets (through multi-byte characters, inside ``\\r\\n``, one byte at a
time) and the real client's ``stream_logs`` must yield exactly the entries that parsing the
body line by line gives. So a chunk boundary can never lose, split or merge a line.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.backend.client import InstanceClient
from bot.backend.logparse import parse_log_line
from bot.backend.models import LogEntry, LogLevel

pytestmark = pytest.mark.slow

# Test modules cannot import each other (importlib mode): the budget is read here too.
FUZZ_EXAMPLES = int(os.environ.get("STARPOD_FUZZ_EXAMPLES", "150"))

_level_word = st.sampled_from(
    ["error", "ERROR", "err", "fatal", "warn", "WARNING", "info", "debug", "trace", "bogus", ""]
)
_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
_json_line = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.one_of(_value, st.datetimes().map(lambda d: d.isoformat() + "Z")),
        "ts": _value,
        "level": st.one_of(_level_word, _value),
        "severity": _level_word,
        "message": st.one_of(st.text(max_size=80), _value),
        "msg": _value,
    },
).map(lambda d: json.dumps(d))
_plain_line = st.tuples(
    st.sampled_from(
        ["", "2026-03-24T09:00:00Z ", "2026-03-24 09:00:00.123+02:00 ", "9999-99-99T99:99:99Z "]
    ),
    st.sampled_from(["", "[WARN] ", "ERROR ", "info: ", "[trace] ", "FATAL"]),
    st.text(max_size=80),
).map("".join)
_line = st.one_of(
    _json_line.map(str.encode),
    _plain_line.map(lambda s: s.encode("utf-8", errors="surrogatepass")),
    st.binary(max_size=60),
    st.sampled_from([b"", b"\r", b"\xef\xbb\xbf{}", b"{", b'{"a":' * 3000, b"\xff\xfe\xfd"]),
)
_eol = st.sampled_from([b"\n", b"\r\n"])


@st.composite
def chunked_stream(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A log body and the same bytes cut into chunks at arbitrary offsets."""
    lines = draw(st.lists(st.tuples(_line, _eol), max_size=25))
    body = b"".join(line.replace(b"\n", b" ") + eol for line, eol in lines)
    if draw(st.booleans()):
        body += draw(_line).replace(b"\n", b" ")  # a last line without its newline
    cuts = sorted(set(draw(st.lists(st.integers(0, max(len(body), 1)), max_size=30))))
    if draw(st.booleans()):
        cuts = list(range(len(body)))  # one byte at a time
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    return body, chunks


def _expected(body: bytes) -> list[LogEntry]:
    return [e for line in body.split(b"\n") if (e := parse_log_line(line)) is not None]


_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


@_SETTINGS
@given(line=st.one_of(st.text(max_size=300), st.binary(max_size=300), _line))
@example(line='{"a":' * 3000)
@example(line=b"\xef\xbb\xbf")
def test_any_log_line_gives_an_entry_or_nothing(
    line: str | bytes, reliability_figures: dict[str, object]
) -> None:
    entry = parse_log_line(line)
    reliability_figures["bad_inputs_tried"] = (
        int(reliability_figures.get("bad_inputs_tried", 0)) + 1
    )
    if entry is None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        assert not text.strip().lstrip("\ufeff")
        return
    assert isinstance(entry, LogEntry)
    assert isinstance(entry.level, LogLevel) and isinstance(entry.message, str)


@_SETTINGS
@given(stream=chunked_stream())
async def test_any_chunking_of_a_log_stream_gives_the_same_entries(
    scripted: Any,
    scripted_client: InstanceClient,
    reliability_figures: dict[str, object],
    stream: tuple[bytes, list[bytes]],
) -> None:
    body, chunks = stream
    scripted.answer.status = 200
    scripted.answer.content_type = "application/x-ndjson"
    scripted.answer.chunks = chunks
    got = [entry async for entry in scripted_client.stream_logs("some-id", tail=100)]
    assert got == _expected(body)
    tried = int(reliability_figures.get("streams_tried", 0)) + 1
    reliability_figures["streams_tried"] = tried
    reliability_figures["bad_inputs_tried"] = tried
    reliability_figures["chunks_max"] = max(
        int(reliability_figures.get("chunks_max", 0)), len(chunks)
    )
