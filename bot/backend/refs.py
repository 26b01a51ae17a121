"""What a typed reference (id, id prefix or name) names: the one rule every entry point uses.

Slack, the gateway, the CLI and the instance actions all resolve through
:func:`pick_instance` (via :meth:`bot.backend.client.InstanceClient.resolve`), so a
reference means the same thing everywhere:

* a full id or an exact name names its instance;
* an id prefix names the one instance whose id starts with it, but an *action* (create,
  pause, restart, kill, ssh, mute …) needs at least :data:`MIN_ACTION_PREFIX` characters
  of it: ``/starpod pause 8`` must not pause whichever instance happens to start with 8.
  Reading (health, logs, history …) takes a shorter unique prefix;
* anything else is not found, and the answer names the nearest names
  ("did you mean pod-001") and, for a too-short prefix, the instances it matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from bot.backend.errors import AmbiguousInstance, InstanceNotFound, PrefixTooShort
from bot.backend.models import Instance

MIN_ACTION_PREFIX = 4
MAX_SUGGESTIONS = 3


def pick_instance(ref: str, instances: Sequence[Instance], *, acting: bool = True) -> Instance:
    """Resolve ``ref`` among ``instances``: exact id, then exact name, then unique id prefix.

    ``acting`` says the caller will change the instance (the default, the safe side): an
    id prefix shorter than :data:`MIN_ACTION_PREFIX` is then refused with PrefixTooShort.
    """
    folded = ref.lower()
    for instance in instances:
        if instance.id.lower() == folded:
            return instance
    by_name = [i for i in instances if i.name is not None and i.name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise AmbiguousInstance(ref=ref, candidates=by_name)
    by_prefix = [i for i in instances if i.id.lower().startswith(folded)] if folded else []
    if by_prefix and acting and len(ref) < MIN_ACTION_PREFIX:
        raise PrefixTooShort(ref=ref, candidates=by_prefix, minimum=MIN_ACTION_PREFIX)
    if len(by_prefix) == 1:
        return by_prefix[0]
    if by_prefix:
        raise AmbiguousInstance(ref=ref, candidates=by_prefix)
    raise InstanceNotFound(ref=ref, suggestions=nearest_names(ref, instances))


def nearest_names(ref: str, instances: Sequence[Instance]) -> list[str]:
    """Up to :data:`MAX_SUGGESTIONS` names a user who typed ``ref`` probably meant.

    Names that contain what was typed (any case) come first, in order, then the closest
    spellings (``difflib``'s ratio, as Python's own "did you mean" does).
    """
    names = sorted({i.name for i in instances if i.name})
    folded = ref.strip().lower()
    if not folded:
        return []
    containing = [n for n in names if folded in n.lower()]
    # Prefix matches before other substrings: "pod" → pod-001 before hotpod.
    containing.sort(key=lambda n: (not n.lower().startswith(folded), n))
    lowered = {n.lower(): n for n in names}
    close = [lowered[n] for n in difflib.get_close_matches(folded, list(lowered), n=5)]
    picked = list(dict.fromkeys(containing + close))
    return picked[:MAX_SUGGESTIONS]
