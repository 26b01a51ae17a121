"""The exception tree: one root, and the drawing in ``bot.errors`` names every branch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import bot
import bot.errors
from bot.errors import StarpodBotError


def _product_modules() -> list[ModuleType]:
    """Every module of the product; ``bot.sim`` is a standalone test double with its own roots."""
    modules = []
    for info in pkgutil.walk_packages(bot.__path__, prefix="bot."):
        if info.name == "bot.__main__" or info.name.startswith("bot.sim"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _product_modules():
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")  # private control flow never leaves its module
            ):
                found[f"{value.__module__}.{name}"] = value
    return sorted(found.values(), key=lambda cls: (cls.__module__, cls.__name__))


EXCEPTIONS = _exception_classes()


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_public_exception_of_the_product_descends_from_starpod_bot_error(
    cls: type[BaseException],
) -> None:
    assert issubclass(cls, StarpodBotError)


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_the_tree_in_the_errors_docstring_draws_every_exception(
    cls: type[BaseException],
) -> None:
    drawing = bot.errors.__doc__ or ""
    assert f" {cls.__name__} " in drawing


def test_the_boundary_roots_sit_under_the_one_root() -> None:
    from bot.backend.errors import BackendError
    from bot.demo import DemoError
    from bot.store.errors import StoreError
    from bot.store.ssh_links import LinkError

    for root in (BackendError, StoreError, DemoError):
        assert root.__bases__ == (StarpodBotError,)
    # A dead link's message is for the person holding it, as any user error's is.
    assert issubclass(LinkError, bot.errors.UserError)
