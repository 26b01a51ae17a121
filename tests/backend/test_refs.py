"""The reference rule (bot.backend.refs), through the real client and the backend simulator:
actions need 4 characters of an id prefix or an exact name; reads take any unique prefix;
an unknown name gets the nearest names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.backend import (
    MIN_ACTION_PREFIX,
    AmbiguousInstance,
    InstanceClient,
    InstanceNotFound,
    PrefixTooShort,
)
from bot.sim.backend import BackendSimulator

POD1 = "8a3f2100-0000-4000-8000-000000000001"
POD2 = "8b770000-0000-4000-8000-000000000002"
WEB = "c0ffee00-0000-4000-8000-000000000003"


@pytest.fixture
async def client(backend_sim: BackendSimulator) -> AsyncIterator[InstanceClient]:
    backend_sim.add_instance(name="pod-001", id=POD1)
    backend_sim.add_instance(name="pod-002", id=POD2)
    backend_sim.add_instance(name="web-frontend", id=WEB)
    async with InstanceClient(backend_sim.url, retry_backoff=0.01, fleet_cache_secs=0) as c:
        yield c


async def test_an_action_refuses_a_one_character_prefix_and_names_what_it_matches(
    client: InstanceClient,
) -> None:
    """Issue 16: `/starpod pause 8` paused pod-001."""
    with pytest.raises(PrefixTooShort) as caught:
        await client.resolve("8")
    error = caught.value
    assert {c.id for c in error.candidates} == {POD1, POD2}
    assert error.minimum == MIN_ACTION_PREFIX == 4
    assert str(error).startswith("'8' is too short to act on: type at least 4 characters")
    assert "8a3f2100 (pod-001)" in str(error) and "8b770000 (pod-002)" in str(error)
    # Unique but short: still refused for an action, and the answer says which one it is.
    with pytest.raises(PrefixTooShort, match=r"it matches c0ffee00 \(web-frontend\)"):
        await client.resolve("c0f")


async def test_an_action_takes_four_characters_an_exact_name_or_a_full_id(
    client: InstanceClient,
) -> None:
    assert (await client.resolve("8a3f")).id == POD1
    assert (await client.resolve("8A3F")).id == POD1
    assert (await client.resolve("pod-002")).id == POD2
    assert (await client.resolve(WEB)).id == WEB


async def test_a_read_takes_any_unique_prefix_and_lists_an_ambiguous_one(
    client: InstanceClient,
) -> None:
    assert (await client.resolve("c", acting=False)).id == WEB
    with pytest.raises(AmbiguousInstance) as caught:
        await client.resolve("8", acting=False)
    assert {c.id for c in caught.value.candidates} == {POD1, POD2}


async def test_an_unknown_name_gets_the_nearest_names(client: InstanceClient) -> None:
    """Issue 16: `/starpod health pod` said only "no instance matches"."""
    for acting in (False, True):
        with pytest.raises(InstanceNotFound) as caught:
            await client.resolve("pod", acting=acting)
        assert caught.value.suggestions == ["pod-001", "pod-002"]
        assert str(caught.value) == (
            "No instance matches 'pod' (by id, id prefix or name); did you mean pod-001 or pod-002?"
        )
    with pytest.raises(InstanceNotFound) as typo:
        await client.resolve("web-frontnd")
    assert typo.value.suggestions == ["web-frontend"]
    with pytest.raises(InstanceNotFound) as case:
        await client.resolve("POD-001")  # names are exact; the answer shows the right case
    assert case.value.suggestions[0] == "pod-001"
    with pytest.raises(InstanceNotFound) as nothing:
        await client.resolve("zzzz")
    assert nothing.value.suggestions == []
    assert str(nothing.value) == "No instance matches 'zzzz' (by id, id prefix or name)."
