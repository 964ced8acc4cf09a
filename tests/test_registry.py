"""The adapter registry: every module registers, names are unique, plugins load by entry point."""

import importlib
import sys

import pytest

from ingest.kit import registry
from ingest.kit.adapter import Parser, Source
from ingest.model.errors import RegistryError


def test_every_module_in_adapters_registers_an_adapter():
    registry.load()
    registered = {cls.__module__ for cls in [*registry.SOURCES.values(), *registry.PARSERS.values()]}
    modules = set(registry.adapter_modules())
    assert {"adapters.email", "adapters.phone.sms", "adapters.whatsapp.parser"} <= modules
    assert modules - registered == set()


def test_every_registered_parser_has_a_name_and_version():
    registry.load()
    for name, cls in registry.PARSERS.items():
        assert cls.name == name and cls.version, cls


def test_presets_name_a_registered_source_and_parser():
    for preset, (source_name, parser_name) in registry.presets().items():
        assert source_name in registry.SOURCES, preset
        assert parser_name is None or parser_name in registry.PARSERS, preset
    assert registry.presets()["files"] == ("files", None)


def test_a_duplicate_name_is_an_error():
    class Another(Parser):
        name = "file"
        version = "9"

    with pytest.raises(RegistryError, match="Two adapters are named 'file'"):
        registry.register(Another)


def test_unknown_source_names_the_known_ones():
    with pytest.raises(RegistryError) as caught:
        registry.resolve_preset("fax")
    assert str(caught.value).startswith("'fax' is not a source ingest knows. Choose one of: ")
    assert "files" in str(caught.value)


def test_sniff_falls_back_to_the_generic_file_parser():
    assert registry.sniff(b"\x00\x01 nothing in particular", "blob.dat").name == "file"


def test_entry_point_plugins_are_registered(tmp_path, monkeypatch):
    """A real installed-distribution layout on sys.path, found by importlib.metadata."""
    (tmp_path / "ingest_fax_plugin.py").write_text(
        "from ingest.kit.adapter import Source\n"
        "class FaxSource(Source):\n"
        "    name = 'fax'\n"
        "    def originals(self, ctx):\n"
        "        return iter(())\n")
    dist = tmp_path / "ingest_fax_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ingest-fax-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ingest.adapters]\nfax = ingest_fax_plugin:FaxSource\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        registry.load_plugins()
        assert issubclass(registry.SOURCES["fax"], Source)
        assert registry.SOURCES["fax"].__module__ == "ingest_fax_plugin"
    finally:
        registry.SOURCES.pop("fax", None)
        sys.modules.pop("ingest_fax_plugin", None)
