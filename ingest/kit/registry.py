"""Adapters by name: every module in `adapters/` plus `ingest.adapters` entry-point plugins.

A duplicate name is an error, never a silent override.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

from ingest.kit.adapter import Parser, Source
from ingest.model.errors import RegistryError

ENTRY_POINT_GROUP = "ingest.adapters"
SOURCES: dict[str, type[Source]] = {}
PARSERS: dict[str, type[Parser]] = {}
_loaded = False


def register(cls):
    """Class decorator: register a Source or Parser subclass under its `name`."""
    table = SOURCES if issubclass(cls, Source) else PARSERS if issubclass(cls, Parser) else None
    if table is None:
        raise RegistryError(f"{cls.__name__} is neither a Source nor a Parser.")
    existing = table.get(cls.name)
    if existing is not None and existing is not cls:
        raise RegistryError(f"Two adapters are named {cls.name!r}: {existing.__module__} and {cls.__module__}.")
    table[cls.name] = cls
    return cls


def load() -> None:
    """Register the built-in adapters, then the plugins, once."""
    global _loaded
    if _loaded:
        return
    for module_name in adapter_modules():
        importlib.import_module(module_name)
    load_plugins()
    _loaded = True


def adapter_modules() -> list[str]:
    """Every public module under `adapters/`, subpackages included; `_private` helpers are skipped."""
    package = importlib.import_module("adapters")     # by name: the kit never imports an adapter itself
    return [module.name for module in pkgutil.walk_packages(package.__path__, "adapters.")
            if not module.ispkg and not module.name.rsplit(".", 1)[1].startswith("_")]


def load_plugins() -> None:
    """Adapters other packages declare under the `ingest.adapters` entry-point group."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        register(entry.load())


def source(name: str) -> type[Source]:
    load()
    if name not in SOURCES:
        raise RegistryError(f"There is no source called {name!r}.", hint=f"Known: {', '.join(sorted(SOURCES))}.")
    return SOURCES[name]


def parser(name: str) -> type[Parser]:
    load()
    if name not in PARSERS:
        raise RegistryError(f"There is no parser called {name!r}.", hint=f"Known: {', '.join(sorted(PARSERS))}.")
    return PARSERS[name]


def adapters() -> list[type[Source] | type[Parser]]:
    """Every registered source and parser, sources first, each group by name."""
    load()
    return [*(SOURCES[name] for name in sorted(SOURCES)), *(PARSERS[name] for name in sorted(PARSERS))]


def presets() -> dict[str, tuple[str, str | None]]:
    """`--source` names: preset -> (source name, parser name; None means sniff each original)."""
    load()
    table: dict[str, tuple[str, str | None]] = {"files": ("files", None)}
    for parser_cls in PARSERS.values():
        for preset, source_name in parser_cls.presets.items():
            if preset in table:
                raise RegistryError(f"Two parsers claim the --source preset {preset!r}.")
            table[preset] = (source_name, parser_cls.name)
    return table


def resolve_preset(name: str) -> tuple[type[Source], type[Parser] | None]:
    table = presets()
    if name not in table:
        raise RegistryError(f"{name!r} is not a source ingest knows.", hint=f"Choose one of: {', '.join(sorted(table))}.")
    source_name, parser_name = table[name]
    return source(source_name), parser(parser_name) if parser_name else None


def sniff(head: bytes, filename: str | None, options: dict | None = None, *,
          exclude: set[str] = frozenset()) -> Parser:
    """The most specific parser that recognises these bytes (the generic file parser at worst),
    leaving out the parsers in `exclude` (those that already said it is not their format)."""
    load()
    for parser_cls in sorted(PARSERS.values(), key=lambda cls: -cls.priority):
        if parser_cls.name in exclude:
            continue
        candidate = parser_cls(options)
        if candidate.sniff(head, filename):
            return candidate
    return PARSERS["file"](options)
