"""Genome: parsing, formatting, construction and validation."""

import re

import numpy as np
import pytest

from genetic_cnn.space.genome import Genome, GenomeError, bits_per_stage, edge_list, parse_genome


def test_round_trip_paper_notation() -> None:
    for text in ("1-01|0-01-100-0111", "1-01|0-01-100|0-11-101-0001", "0|1", "1-11-111-1111-11111"):
        genome = Genome.from_string(text)
        assert str(genome) == text
        assert Genome.from_string(str(genome)) == genome


def test_nodes_inferred_and_bits_in_paper_order() -> None:
    genome = Genome.from_string("1-01|0-01-100-0111")
    assert genome.nodes == (3, 5)
    assert genome.bits == (1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1)
    assert len(genome) == 13
    # The paper's figure: stage "1-00-111" is v1->v2 and v1, v2, v3 -> v4.
    assert Genome.from_string("1-00-111").stage_edges(0) == [(1, 2), (1, 4), (2, 4), (3, 4)]


def test_edge_order_groups_by_target() -> None:
    assert edge_list(4) == [(1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4)]
    assert [bits_per_stage(k) for k in (2, 3, 4, 5)] == [1, 3, 6, 10]


def test_from_bits_and_equality_and_hash() -> None:
    a = Genome.from_bits([1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1], (3, 5))
    b = Genome.from_string("1-01|0-01-100-0111", nodes=(3, 5))
    assert a == b and hash(a) == hash(b)
    assert len({a, b, Genome.zeros((3, 5))}) == 2
    with pytest.raises(ValueError, match="needs 13"):
        Genome.from_bits([1, 0], (3, 5))


def test_zeros_ones() -> None:
    assert str(Genome.zeros((3, 5))) == "0-00|0-00-000-0000"
    assert str(Genome.ones((3, 4))) == "1-11|1-11-111"


def test_random_uses_the_given_generator() -> None:
    first = [Genome.random((3, 4, 5), np.random.default_rng(7)) for _ in range(3)]
    again = [Genome.random((3, 4, 5), np.random.default_rng(7)) for _ in range(3)]
    assert first == again
    rng = np.random.default_rng(1)
    bits = np.array([Genome.random((3, 4, 5), rng).bits for _ in range(2000)])
    assert abs(bits.mean() - 0.5) < 0.01  # 38,000 Bernoulli(0.5) draws: sd 0.0026


def test_immutable() -> None:
    genome = Genome.zeros((3,))
    with pytest.raises(AttributeError):
        genome.nodes = (4,)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "nodes", "message"),
    [
        ("", None, "empty genome string"),
        ("   ", None, "empty genome string"),
        ("1-0|0", None, r"stage 1, group 2 \(edges into node v3\) is '0' with 1 bit\(s\); it needs 2"),
        ("1-011", None, "stage 1, group 2 .* it needs 2"),
        ("1-0x", None, r"character 'x' at position 4 \(stage 1, group 2\) is not 0 or 1"),
        ("1-01|2", None, r"character '2' at position 6 \(stage 2, group 1\)"),
        ("1-01||1", None, "stage 2 is empty"),
        ("1-01|", None, "stage 2 is empty"),
        ("1-01|0-01-100", (3, 5), r"has nodes \(3, 4\) per stage but nodes=\(3, 5\)"),
    ],
)
def test_bad_strings_name_problem_and_position(text: str, nodes: tuple[int, ...] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Genome.from_string(text, nodes=nodes)


def test_stage_with_fewer_than_two_nodes() -> None:
    with pytest.raises(ValueError, match="stage 2 has 1 node"):
        Genome.zeros((3, 1))
    with pytest.raises(ValueError, match="at least 2 nodes"):
        Genome.from_bits([], (1,))


def test_bits_must_be_binary() -> None:
    with pytest.raises(ValueError, match="bit 2: 2 is not 0 or 1"):
        Genome((3,), ((1, 2, 0),))


HINT = "the shell cut it at '|': quote the genome"
HINT_PATTERN = re.escape(HINT)


@pytest.mark.parametrize("text", ["1-01", "1-0x"])
def test_a_string_with_too_few_stages_gets_the_shell_hint(text: str) -> None:
    """``genetic-cnn show 1-01|0-01-100-0111`` unquoted passes ``1-01``: every caller that knows the
    stages it wants (show, train, lr-find, the API) hears why."""
    with pytest.raises(GenomeError, match=HINT_PATTERN):
        Genome.from_string(text, nodes=(3, 5))
    with pytest.raises(GenomeError, match=HINT_PATTERN):
        parse_genome(text, (3, 5), "mnist")


@pytest.mark.parametrize(("text", "nodes"), [("1-01|0-01-100", (3, 5)), ("1-01|0-01-100-0111", (3, 4)), ("1-01|0-0x", (3, 5))])
def test_no_shell_hint_when_the_stages_are_all_there(text: str, nodes: tuple[int, ...]) -> None:
    with pytest.raises(GenomeError) as error:
        Genome.from_string(text, nodes=nodes)
    assert HINT not in str(error.value)


def test_parse_genome_takes_a_string_or_a_value() -> None:
    genome = Genome.from_string("1-01|0-01-100-0111")
    assert parse_genome("1-01|0-01-100-0111", (3, 5)) == genome
    assert parse_genome(genome, (3, 5), "mnist") is genome
    assert parse_genome(genome) is genome
    with pytest.raises(GenomeError, match=r"has nodes \(3, 5\) per stage, preset 'cifar10' expects \(3, 4\)"):
        parse_genome(genome, (3, 4), "cifar10")
    with pytest.raises(GenomeError, match=r"per stage, nodes=\(3, 4\) was expected"):
        parse_genome(genome, (3, 4))
    with pytest.raises(GenomeError, match="a genome string is expected"):
        parse_genome(b"1-01|0-01-100-0111", (3, 5))  # type: ignore[arg-type]
