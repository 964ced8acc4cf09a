"""Every parser, fed a valid file with one byte changed, never raises and loses at most one item.

A bounded, derandomised run (the same examples each time); bench/fuzz_parsers.py runs longer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz_helpers import SAMPLES, items, mutated
from ingest.kit import registry

EXAMPLES_PER_SAMPLE = {"image": 150, "whatsapp": 400}     # the slower parsers run fewer
DEFAULT_EXAMPLES = 600


def test_every_registered_parser_has_a_sample():
    registry.load()
    assert {sample.parser for sample in SAMPLES} == set(registry.PARSERS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: f"{sample.parser}:{sample.name}")
def test_one_changed_byte_loses_at_most_one_item(tmp_path, sample):
    data = sample.data()
    path = tmp_path / sample.name
    path.write_bytes(data)
    baseline = items(sample.parser, path, sample.name)
    assert baseline >= 1

    @settings(max_examples=EXAMPLES_PER_SAMPLE.get(sample.parser, DEFAULT_EXAMPLES), derandomize=True,
              database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(position=st.integers(0, len(data) - 1), value=st.integers(0, 255))
    def one_byte(position, value):
        path.write_bytes(mutated(data, position, value))
        found = items(sample.parser, path, sample.name)
        if sample.loss_bound is not None:
            assert baseline - found <= sample.loss_bound, f"byte {position} -> {value:#04x}: {found} of {baseline}"

    one_byte()


def test_a_zip_claiming_a_future_version_is_said_not_raised(tmp_path):
    sample = next(sample for sample in SAMPLES if sample.name.endswith(".zip"))
    path = tmp_path / sample.name
    path.write_bytes(mutated(sample.data(), 2399, 0xB7))
    items(sample.parser, path, sample.name)
