"""One-shot fitness: the supernet computes each genome's network, trains once per run, resumes after kill -9."""

from __future__ import annotations

import io
import itertools
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, cli_command, run_cli, set_args
from scipy.stats import binomtest, chisquare

from genetic_cnn.config import load_config
from genetic_cnn.data.datasets import Split
from genetic_cnn.evolution import start_run
from genetic_cnn.fitness.oneshot import FITNESS_DB, SUPERNET_FOLDER, WEIGHTS, supernet_training
from genetic_cnn.fitness.supernet import SuperNet
from genetic_cnn.history.store import load_run
from genetic_cnn.nn.network import build_network, count_parameters
from genetic_cnn.nn.train import fit
from genetic_cnn.space.enumerate import architectures, stage_strings_by_convolutions, stratified_sample
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key, count_convolutions, representative
from genetic_cnn.space.presets import get_preset

ONE_SHOT = TINY + ["evaluation.method=one-shot", "evaluation.supernet_schedule=[[2, 0.003]]",
                   "evaluation.calibration_images=64", "evaluation.supernet_sampling=balanced"]  # fmt: skip


def genomes_of(nodes: tuple[int, ...], count: int, seed: int) -> list[Genome]:
    rng = np.random.default_rng(seed)
    return [Genome.zeros(nodes), Genome.ones(nodes)] + [Genome.random(nodes, rng) for _ in range(count)]


def randomize_batch_norms(model: torch.nn.Module, seed: int) -> int:
    """Give every batch norm random weights, biases and running statistics (their defaults, 1, 0, 0 and 1,
    would let a path that forgot to copy them compute the same); returns how many there are."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for norm in norms:
            size = norm.num_features
            norm.weight.copy_(0.5 + torch.rand(size, generator=generator))
            norm.bias.copy_(torch.randn(size, generator=generator))
            norm.running_mean.copy_(torch.randn(size, generator=generator))
            norm.running_var.copy_(0.5 + torch.rand(size, generator=generator))
    return len(norms)


@pytest.mark.parametrize("preset_name", ["mnist", "digits", "cifar10"])
def test_a_genomes_path_computes_what_build_network_computes_with_the_same_weights(preset_name: str) -> None:
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    supernet = SuperNet(preset).eval()
    assert randomize_batch_norms(supernet, seed=2) > 0
    images = torch.randn(3, *preset.input_shape)
    for genome in genomes_of(preset.nodes, 6, seed=1):
        network = supernet.extract(genome).eval()
        assert count_parameters(network) == count_parameters(build_network(genome, preset))
        with torch.no_grad():
            assert torch.equal(supernet.use(genome)(images), network(images)), str(genome)


@pytest.mark.slow
def test_every_digits_architecture_extracts_the_network_its_path_computes() -> None:
    """All 1,812 architectures of the digits space, batch norms randomized: the extracted network (as a
    standalone evaluation would build it, with the supernet's weights copied in) computes the path."""
    preset = get_preset("digits")
    torch.manual_seed(0)
    supernet = SuperNet(preset).eval()
    randomize_batch_norms(supernet, seed=3)
    images = torch.randn(2, *preset.input_shape)
    keys = sorted(architectures(preset.nodes))
    assert len(keys) == 1812
    with torch.no_grad():
        for key in keys:
            genome = representative(key, preset.nodes)
            network = supernet.extract(genome).eval()
            assert torch.equal(supernet.use(genome)(images), network(images)), key


def test_training_a_fixed_path_moves_only_that_paths_weights() -> None:
    preset = get_preset("digits")
    torch.manual_seed(0)
    supernet = SuperNet(preset)
    genome = Genome.from_string("1-00|0-00-000-0001", nodes=preset.nodes)
    supernet.use(genome).sample_paths = False
    before = {name: parameter.detach().clone() for name, parameter in supernet.named_parameters()}
    split = Split(torch.randn(32, *preset.input_shape), torch.randint(0, 10, (32,)))
    fit(supernet, split, load_config(None, TINY).train, seed=0, channels_last=False)
    used = {id(parameter) for module in supernet.path_modules(genome) for parameter in module.parameters()}
    for name, parameter in supernet.named_parameters():
        moved = not torch.equal(before[name], parameter.detach())
        assert moved == (id(parameter) in used), name


def test_training_draws_a_uniformly_random_path_per_forward_call() -> None:
    preset = get_preset("mnist")
    supernet = SuperNet(preset, sampling_seed=5)
    drawn = []
    original = supernet.plans

    def spy(genome: Genome):  # noqa: ANN202
        drawn.append(genome)
        return original(genome)

    supernet.plans = spy  # type: ignore[method-assign]
    supernet.train()
    with torch.no_grad():
        for _ in range(400):
            supernet(torch.randn(2, *preset.input_shape))
    assert len(drawn) == 400 and len({str(genome) for genome in drawn}) > 300
    for position in range(len(drawn[0].bits)):
        ones = sum(genome.bits[position] for genome in drawn)
        assert binomtest(ones, len(drawn), 0.5).pvalue > 1e-3, f"bit {position}: {ones} ones in {len(drawn)}"


def test_balanced_sampling_draws_each_stages_convolution_count_uniformly() -> None:
    preset = get_preset("mnist")
    supernet = SuperNet(preset, sampling_seed=2, sampling="balanced")
    draws = [supernet.sample() for _ in range(1500)]
    for stage, nodes in enumerate(preset.nodes):
        counts = [count_convolutions(genome.stages[stage], nodes) for genome in draws]
        possible = sorted(set(count for count, _ in stage_strings_by_convolutions(nodes)))
        assert sorted(set(counts)) == possible
        observed = [counts.count(count) for count in possible]
        assert chisquare(observed).pvalue > 1e-3, (stage, observed)
    empty = sum(genome.stages[1] == (0,) * 10 for genome in draws)
    assert empty > 200  # one in five draws, where uniform bits leave the 5-node stage empty once in 1,024


def test_the_path_sampler_is_part_of_the_state_dict() -> None:
    preset = get_preset("digits")
    first = SuperNet(preset, sampling_seed=1)
    [first.sample() for _ in range(7)]
    second = SuperNet(preset, sampling_seed=2)
    second.load_state_dict(first.state_dict())
    assert [str(first.sample()) for _ in range(5)] == [str(second.sample()) for _ in range(5)]


def test_the_representative_of_every_architecture_has_that_architecture() -> None:
    nodes = (3, 5)
    seen = set()
    for bits in itertools.product((0, 1), repeat=13):
        key = architecture_key(Genome.from_bits(bits, nodes))
        seen.add(key)
        assert architecture_key(representative(key, nodes)) == key
    assert set(architectures(nodes)) == seen and len(seen) == 1812


def test_a_stratified_sample_is_distinct_spread_and_seeded() -> None:
    nodes = (3, 5)
    space = architectures(nodes)
    sample = stratified_sample(nodes, 30, np.random.default_rng(3))
    keys = [architecture_key(genome) for genome in sample]
    assert len(set(keys)) == 30 and keys[0] == architecture_key(Genome.zeros(nodes))
    counts = [space[key] for key in keys[1:]]
    groups = sorted(set(space.values()) - {space[keys[0]]})
    # Round-robin over the convolution counts: a group has all its members or at most one pick fewer than another.
    sizes = {group: list(space.values()).count(group) for group in groups}
    per_group = {group: counts.count(group) for group in groups}
    most = max(per_group.values())
    assert all(per_group[group] in (sizes[group], most, most - 1) for group in groups), (per_group, sizes)
    assert len(groups) >= 8 and most <= 4
    assert keys == [architecture_key(g) for g in stratified_sample(nodes, 30, np.random.default_rng(3))]
    with pytest.raises(ValueError, match="1812 architectures"):
        stratified_sample(nodes, 1813, np.random.default_rng(0))


def test_fit_resumed_from_its_checkpoint_ends_as_an_uninterrupted_fit() -> None:
    preset = get_preset("digits")
    split = Split(torch.randn(96, *preset.input_shape), torch.randint(0, 10, (96,)))
    config = replace(load_config(None, TINY).train, schedule=((3, 0.003), (1, 0.0003)))

    class Memory:
        """Serializes as a file would: a state dict holds the live tensors, which training goes on changing."""

        saved: bytes | None = None

        def load(self):  # noqa: ANN202
            return None if self.saved is None else torch.load(io.BytesIO(self.saved), weights_only=False)

        def save(self, state) -> None:  # noqa: ANN001
            buffer = io.BytesIO()
            torch.save(state, buffer)
            self.saved = buffer.getvalue()

    def trained(stop_after: int | None) -> dict[str, torch.Tensor]:
        checkpoint = Memory()

        def stop(epoch: int, loss: float) -> None:
            if stop_after is not None and epoch == stop_after:
                raise KeyboardInterrupt

        torch.manual_seed(0)
        model = SuperNet(preset, sampling_seed=0)
        try:
            fit(model, split, config, seed=4, checkpoint=checkpoint, on_epoch=stop)
        except KeyboardInterrupt:
            torch.manual_seed(123)  # whatever the process did since, the checkpoint restores the generators
            model = SuperNet(preset, sampling_seed=9)
            result = fit(model, split, config, seed=4, checkpoint=checkpoint)
            assert result.epochs == 4
        return model.state_dict()

    whole, resumed = trained(None), trained(2)
    assert all(torch.equal(whole[name], resumed[name]) for name in whole if isinstance(whole[name], torch.Tensor))


def run_history(folder: Path) -> tuple[list[tuple], list[tuple]]:
    with load_run(folder) as run:
        evaluations = [(e.generation, e.slot, e.genome, e.key, e.status, e.accuracy, e.loss) for e in run.evaluations()]
        generations = [(g.generation, g.genomes, g.fitness) for g in run.generations()]
    return evaluations, generations


def test_a_one_shot_run_measures_each_architecture_once(tmp_path: Path) -> None:
    config = load_config(None, ONE_SHOT + ["evolution.generations=3"])
    folder = start_run(config, out=tmp_path / "run", progress=False, echo=lambda line: None)
    evaluations, _ = run_history(folder)
    by_key: dict[str, set[float]] = {}
    for _, _, _, key, status, accuracy, _ in evaluations:
        assert status == "ok"
        by_key.setdefault(key, set()).add(accuracy)
    assert all(len(values) == 1 for values in by_key.values())  # deterministic per architecture
    import sqlite3

    with sqlite3.connect(folder / SUPERNET_FOLDER / FITNESS_DB) as db:
        assert db.execute("SELECT COUNT(*) FROM fitness").fetchone()[0] == len(by_key)
    assert (folder / SUPERNET_FOLDER / WEIGHTS).is_file()
    assert supernet_training(load_run_config(folder))["epochs"] == 2
    with load_run(folder) as run:
        assert run.config.evaluation.method == "one-shot"


def load_run_config(folder: Path):  # noqa: ANN201
    with load_run(folder) as run:
        return run.config


@pytest.mark.slow
def test_every_executor_gives_a_one_shot_run_the_same_history(tmp_path: Path) -> None:
    serial = start_run(load_config(None, ONE_SHOT), out=tmp_path / "serial", progress=False, echo=lambda line: None)
    pooled_config = load_config(None, ONE_SHOT + ["run.executor=processes", "run.workers=2"])
    pooled = start_run(pooled_config, out=tmp_path / "pooled", progress=False, echo=lambda line: None)
    assert run_history(serial) == run_history(pooled)


@pytest.mark.slow
def test_kill_9_during_supernet_training_then_resume_gives_the_uninterrupted_history(tmp_path: Path) -> None:
    longer = ONE_SHOT + ["evaluation.supernet_schedule=[[5, 0.003], [1, 0.0003]]"]
    whole = tmp_path / "whole"
    assert run_cli("evolve", "--out", str(whole), "--quiet", *set_args(longer)).returncode == 0

    folder = tmp_path / "killed"
    process = subprocess.Popen(cli_command("evolve", "--out", str(folder), "--quiet", *set_args(longer)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    log = folder / SUPERNET_FOLDER / "epochs.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the supernet made no progress"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert not (folder / SUPERNET_FOLDER / WEIGHTS).is_file(), "the kill should land during the supernet's training"

    resumed = run_cli("resume", str(folder), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert run_history(folder) == run_history(whole)
    a = torch.load(whole / SUPERNET_FOLDER / WEIGHTS, weights_only=False)
    b = torch.load(folder / SUPERNET_FOLDER / WEIGHTS, weights_only=False)
    assert all(torch.equal(a[name], b[name]) for name in a if isinstance(a[name], torch.Tensor))
    assert supernet_training(load_run_config(folder))["epochs"] == 6


@pytest.mark.parametrize("budget", ["default", "one node"])
def test_measuring_with_kept_nodes_is_measuring_the_whole_path(tmp_path: Path, budget: str) -> None:
    """The evaluator keeps node outputs per provenance; whatever order architectures come in, and
    however little memory it may keep, each is measured exactly as recalibrating and evaluating its
    whole path would, and architectures in key order share most of their nodes."""
    from genetic_cnn.data.datasets import load_datasets
    from genetic_cnn.fitness.oneshot import OneShotEvaluator
    from genetic_cnn.fitness.supernet import recalibrate_batch_norm
    from genetic_cnn.nn.train import evaluate_model

    config = load_config(None, ONE_SHOT + [f"run.out={str(tmp_path)!r}", "train.eval_batch_size=50"])
    datasets = load_datasets(config.data, seed=config.run.seed)
    preset = config.preset().for_input(datasets.input_shape, datasets.num_classes)
    torch.manual_seed(0)
    trained = SuperNet(preset, sampling_seed=0)
    for norm in trained.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):  # weights as far from the defaults as training would take them
            torch.nn.init.normal_(norm.weight, 1.0, 0.3)
            torch.nn.init.normal_(norm.bias, 0.0, 0.3)
    (tmp_path / SUPERNET_FOLDER).mkdir()
    torch.save(trained.state_dict(), tmp_path / SUPERNET_FOLDER / WEIGHTS)
    evaluator = OneShotEvaluator(config, datasets, torch.device("cpu"))
    memo = evaluator.memo
    if budget == "one node":
        first = memo.features(Genome.zeros(preset.nodes))
        memo.budget = sum(tensor.element_size() * tensor.nelement() for tensor in first)
    in_key_order = [representative(key, preset.nodes) for key in architectures(preset.nodes)][:40]
    shuffled = genomes_of(preset.nodes, 10, seed=3)
    genomes = in_key_order + shuffled + shuffled[::-1]  # nodes come back after others overwrote the shared batch norms
    assert len({genome.stages[0] for genome in genomes}) >= 4
    computed = memo.computed
    for index, genome in enumerate(genomes):
        if index == len(in_key_order):
            computed = memo.computed - computed
        reference = evaluator.supernet
        recalibrate_batch_norm(reference, genome, evaluator.calibration, 50)
        expected = evaluate_model(reference, evaluator.validation, 50, "cpu", channels_last=False)
        assert evaluator.measure(genome) == expected, genome
    every_value = sum(len(order) + 1 for genome in in_key_order for order, _ in reference.plans(genome))
    if budget == "default":
        assert computed < every_value / 2


def test_workers_open_the_fitness_database_while_others_use_it(tmp_path: Path) -> None:
    """Switching a database to WAL needs it to itself: workers opening it together failed with
    "database is locked". ``prepare`` creates it in WAL mode first, so a worker opens it while
    another connection is in the middle of a read, and writes beside it."""
    import sqlite3

    from genetic_cnn.fitness.oneshot import FitnessCache, prepare

    config = load_config(None, ONE_SHOT + [f"run.out={str(tmp_path)!r}"])
    (tmp_path / SUPERNET_FOLDER).mkdir()
    torch.save(SuperNet(get_preset("digits")).state_dict(), tmp_path / SUPERNET_FOLDER / WEIGHTS)
    prepare(config, progress=False, echo=lambda line: None)
    path = tmp_path / SUPERNET_FOLDER / FITNESS_DB
    reader = sqlite3.connect(path, isolation_level=None)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM fitness").fetchone()  # holds its read lock until COMMIT
    started = time.perf_counter()
    worker = FitnessCache(path)
    assert worker.put("0-00|0-00", 0.5, 1.0) == (0.5, 1.0)
    assert time.perf_counter() - started < 5  # no waiting on the reader's lock
    reader.execute("COMMIT")
    assert reader.execute("SELECT accuracy FROM fitness").fetchall() == [(0.5,)]
