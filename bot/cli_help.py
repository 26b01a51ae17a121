"""The help screens of ``starpod-bot``: Typer's, without its type placeholders.

Typer (0.29) writes a required argument as ``{ref}`` in the usage line and a type column
beside every option, so a flag reads ``--help <bool>`` and ``--yes <bool>`` although it
takes no value. :class:`StarpodTyper` builds every group and command with the classes
below, which print an argument as its metavar (``ID``) and a flag without a type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

F = TypeVar("F", bound=Callable[..., Any])


def _untyped_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""  # a flag takes no value: no "<bool>" beside it
    return params


class StarpodCommand(TyperCommand):
    """A command whose help shows ``ID`` for an argument and no type beside a flag."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class StarpodGroup(TyperGroup):
    """A group whose help shows no type beside a flag (``--help``, ``--version``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class StarpodTyper(typer.Typer):
    """``typer.Typer`` whose groups and commands use the classes above."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", StarpodGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", StarpodCommand)
        decorator: Callable[[F], F] = super().command(*args, **kwargs)
        return decorator
