"""Keeps httpx's command-line tool out of the bot's process; imported first by :mod:`bot.cli`.

``import httpx`` imports its CLI (``httpx._main``: click, rich's console, progress and
syntax, pygments' lexers) whenever those are installed, and typer installs them. The bot
never runs the ``httpx`` command, yet the running bot kept those modules: ~4 MB of RSS
(BENCHMARKS.md, "What the running bot imports"). A ``None`` in ``sys.modules`` makes that
import fail, and httpx defines its fallback ``main`` instead (it only prints how to install
the CLI). Nothing else of httpx changes; the ``httpx`` command itself, a process of its
own, is unaffected. Too late once httpx is imported, hence first.
"""

import sys

# None in sys.modules: "import raises ModuleNotFoundError" (the import system's documented
# way to block a module); typeshed types the mapping as modules only.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
