"""The one rule for "the same individual" (``space.identity.individual_key``)."""

from __future__ import annotations

import pytest

from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.space.identity import individual_key


def test_string_identity_is_the_exact_string() -> None:
    a, b = Genome.from_string("1-01|1-00-000-0000"), Genome.from_string("1-01|0-00-000-0001")
    assert architecture_key(a) == architecture_key(b)  # the same network ...
    assert individual_key(a, "string") != individual_key(b, "string")  # ... but two individuals by string
    assert individual_key(a, "architecture") == individual_key(b, "architecture")
    assert individual_key(a, "string") == "1-01|1-00-000-0000" == individual_key("1-01|1-00-000-0000", "string")


def test_a_stored_string_and_its_genome_give_the_same_key() -> None:
    text = "1-01|0-01-100-0111"
    assert individual_key(text, "architecture") == individual_key(Genome.from_string(text), "architecture")
    assert individual_key(text, "architecture") == architecture_key(text)


def test_a_known_key_is_used_only_for_architecture_identity() -> None:
    assert individual_key("1-01|1", "architecture", key="given") == "given"
    assert individual_key("1-01|1", "string", key="given") == "1-01|1"


def test_an_unknown_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="'bits' is not 'string' or 'architecture'"):
        individual_key("1-01|1", "bits")
