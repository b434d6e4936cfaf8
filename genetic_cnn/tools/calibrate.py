"""`genetic-cnn calibrate`: can a fidelity rank architectures, and what does one evaluation cost?

Before hours go into a search, ``calibrate`` trains G distinct architectures (spread over
convolution counts, ``space.stratified_sample``) S times each with new seeds at the config's
fidelity, and reports:

- seed sd: the pooled standard deviation of one architecture's accuracy over seeds (the noise of
  one evaluation), in percentage points;
- spread: the standard deviation of the architectures' mean accuracy (what selection ranks);
- Kendall tau between seeds: how well one seed's ranking of the architectures predicts another's
  (mean over pairs of seeds; 1 = the same order, 0 = unrelated): the agreement of two single
  evaluations, which is what a search's selection works on. It is not a ceiling for a proxy compared
  with the mean of several seeds: a mean is more reliable than one seed, so a perfect proxy agrees
  with it better than two seeds agree with each other (seed Pearson 0.50: against a two-seed mean,
  tau ~ 0.6). Compare like with like, or correct for attenuation: ``tau_ceiling_of_mean`` is the tau a
  perfect proxy would reach against the mean of the S seeds, (2/pi) asin(sqrt(ICC(1,S))) for normal
  scores;
- reliability: the intra-class correlation ICC(1) of one evaluation (one-way random effects, Shrout
  & Fleiss 1979: the share of one evaluation's variance that is the architecture's worth) and ICC(1,S)
  of the mean of S seeds, each with its 95% F-distribution interval, over the architectures every
  seed measured;
- seconds per evaluation, and a verdict: "undecided" whenever |tau| is within twice the scatter of
  tau between unrelated orders (``kendall_error``), whatever tau is; otherwise tau >= 0.5 ranks,
  0.2 <= tau < 0.5 ranks weakly, and below cannot rank.

With ``--fidelity`` given several times (each a ``;``-separated list of ``section.key=value``
overrides, e.g. ``data.subset=8000;train.schedule=[[2, 0.001]]``) it measures each and draws tau
against seconds per evaluation, so that the cheapest fidelity that ranks can be picked.

Each fidelity is a run (``evolution.strategy = "calibration"``, N = G, T = S - 1) in
``OUT/fidelity-<i>``: it resumes after any kill, uses any executor, and ``genetic-cnn report`` and
``export`` read it. ``OUT/calibration.json``, ``calibration.md`` and ``calibration.png`` hold the
comparison. Running the same command again continues; other settings into the same ``--out`` are
refused.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config, parse_override
from genetic_cnn.errors import UserError
from genetic_cnn.files import check_writable, make_folder, plural, write_atomically
from genetic_cnn.history.noise import PERCENT, measured, pooled_sd, spread
from genetic_cnn.history.store import DATABASE, RunStore
from genetic_cnn.search.records import OK

REQUEST = "calibration-request.json"
RESULTS = "calibration.json"
SEPARATOR = ";"
RANKS, WEAK = 0.5, 0.2
"""Verdict thresholds on Kendall tau between seeds, once tau is told apart from chance: at or above
RANKS a fidelity ranks architectures; below WEAK a ranking is mostly noise."""
UNDECIDED_ERRORS = 2.0
"""|tau| within this many standard errors of unrelated orders is indistinguishable from no agreement."""


@dataclass(frozen=True)
class FidelityResult:
    """What one fidelity measured; accuracies and standard deviations in percentage points."""

    name: str
    overrides: tuple[str, ...]
    folder: str
    architectures: int
    seeds: int
    evaluations: int
    failed: int
    mean_accuracy: float | None
    seed_sd: float | None
    spread: float | None
    kendall_tau: float | None
    tau_pairs: tuple[float, ...]
    tau_error: float | None
    seconds_per_evaluation: float | None
    verdict: str
    icc: float | None = None
    """ICC(1): the reliability of one evaluation (None in results written before it was measured)."""
    icc_interval: tuple[float, float] | None = None
    icc_of_mean: float | None = None
    """ICC(1,S): the reliability of the mean of the S seeds."""
    icc_of_mean_interval: tuple[float, float] | None = None
    tau_ceiling_of_mean: float | None = None
    """The Kendall tau a perfect proxy would reach against the S seeds' mean (attenuation by its noise)."""


def parse_fidelity(text: str) -> tuple[str, ...]:
    """``"data.subset=8000; train.schedule=[[2, 0.001]]"`` -> its overrides, each checked for form."""
    overrides = tuple(part.strip() for part in text.split(SEPARATOR) if part.strip())
    if not overrides:
        raise UserError(f"--fidelity {text!r} is empty; give section.key=value overrides separated by '{SEPARATOR}'")
    for override in overrides:
        parse_override(override)
    return overrides


def fidelity_config(base: Config, overrides: Sequence[str], genomes: int, seeds: int, folder: Path) -> Config:
    """``base`` with one fidelity's overrides, as a calibration run of ``genomes`` architectures and ``seeds`` seeds."""
    from genetic_cnn.config import config_from_dict

    raw = base.to_dict()
    for override in overrides:
        section, key, value = parse_override(override)
        if section not in raw or key not in raw[section]:
            raise UserError(f"--fidelity {override}: {section}.{key} is not a config key")
        if section == "evolution" or (section, key) == ("run", "out"):
            raise UserError(f"--fidelity {override}: a fidelity sets how networks are trained and measured, not {section}.{key}")
        raw[section][key] = value
    raw["evolution"].update(strategy="calibration", population=genomes, generations=seeds - 1, identity="architecture",
                            reevaluate="retrain")  # fmt: skip
    raw["run"]["out"] = str(folder)
    return config_from_dict(raw)


def kendall_error(count: int) -> float | None:
    """Standard error of Kendall tau between ``count`` pairs of unrelated values (its null distribution)."""
    return math.sqrt(2 * (2 * count + 5) / (9 * count * (count - 1))) if count >= 2 else None


def seed_taus(by_seed: Sequence[dict[str, float]]) -> tuple[float, ...]:
    """Kendall tau-b between every two seeds, over the architectures both measured."""
    from scipy.stats import kendalltau

    taus = []
    for first, second in itertools.combinations(by_seed, 2):
        common = sorted(set(first) & set(second))
        if len(common) >= 2:
            tau = kendalltau([first[key] for key in common], [second[key] for key in common]).statistic
            if math.isfinite(tau):  # all ties on one side: no order to compare
                taus.append(float(tau))
    return tuple(taus)


@dataclass(frozen=True)
class Reliability:
    """One-way random-effects intra-class correlations of a balanced (architectures x seeds) table."""

    icc: float
    icc_interval: tuple[float, float]
    icc_of_mean: float
    icc_of_mean_interval: tuple[float, float]

    @property
    def tau_ceiling_of_mean(self) -> float:
        """(2/pi) asin(r) with r = sqrt(ICC(1,S)), the correlation of true worth with the mean (normal scores)."""
        return 2 / math.pi * math.asin(math.sqrt(min(max(self.icc_of_mean, 0.0), 1.0)))


def reliability(table: Sequence[Sequence[float]], confidence: float = 0.95) -> Reliability | None:
    """ICC(1) and ICC(1,k) of ``table`` (one row per architecture, k seeds each) with their F intervals
    (Shrout & Fleiss 1979; McGraw & Wong 1996, case 1); None for fewer than 2 rows or 2 columns, or
    without any variance within rows."""
    from scipy.stats import f

    rows = [list(row) for row in table]
    n = len(rows)
    k = len(rows[0]) if rows else 0
    if n < 2 or k < 2 or any(len(row) != k for row in rows):
        return None
    grand = statistics.fmean(value for row in rows for value in row)
    means = [statistics.fmean(row) for row in rows]
    between = k * math.fsum((mean - grand) ** 2 for mean in means) / (n - 1)
    within = math.fsum((value - mean) ** 2 for row, mean in zip(rows, means) for value in row) / (n * (k - 1))
    if within <= 0:
        return None
    ratio = between / within
    upper_quantile = 1 - (1 - confidence) / 2
    low = ratio / f.ppf(upper_quantile, n - 1, n * (k - 1))
    high = ratio * f.ppf(upper_quantile, n * (k - 1), n - 1)
    one = lambda value: (value - 1) / (value + k - 1)  # noqa: E731 - ICC(1) of a variance ratio
    mean = lambda value: 1 - 1 / value  # noqa: E731 - ICC(1,k) of a variance ratio
    return Reliability(float(one(ratio)), (float(one(low)), float(one(high))), float(mean(ratio)), (float(mean(low)), float(mean(high))))


def verdict(tau: float | None, error: float | None, seed_sd: float | None, spread_sd: float | None) -> str:
    if tau is None or error is None:
        return "not measured: needs two seeds that both measured two or more architectures"
    agreement = f"seeds agree with tau {tau:.2f} (an unrelated pair of orders scatters by {error:.2f})"
    noise = ""
    if seed_sd is not None and spread_sd is not None:
        noise = f"; seed sd {seed_sd:.2f} pp against a spread of {spread_sd:.2f} pp between architectures"
    if abs(tau) <= UNDECIDED_ERRORS * error:
        return (
            f"undecided, too few architectures to tell tau from chance (|tau| within {UNDECIDED_ERRORS:g} times the "
            f"scatter of unrelated orders): {agreement}{noise}; measure more (--genomes)"
        )
    if tau >= RANKS:
        return f"ranks architectures: {agreement}{noise}"
    if tau >= WEAK:
        return f"ranks weakly, selection will often follow noise: {agreement}{noise}"
    return (
        f"cannot rank architectures, selection would follow noise: {agreement}{noise}; train on more images or for "
        "more epochs, hold out a larger validation split, or use one-shot fitness"
    )


def verdict_kind(text: str) -> str:
    """A verdict's first words: ranks architectures, ranks weakly, undecided, cannot rank..., not measured."""
    return text.split(":")[0].split(",")[0]


def measure_fidelity(folder: Path, name: str, overrides: Sequence[str]) -> FidelityResult:
    """A fidelity's figures, from its run database."""
    with RunStore.open(folder, readonly=True) as store:
        config, evaluations = store.config, store.evaluations()
    identity = config.evolution.identity
    trained = [e for e in evaluations if e.trained]
    by_seed = [
        {key: values[0] for key, values in measured([e for e in trained if e.generation == g], identity).items()}
        for g in range(config.evolution.generations + 1)
    ]
    groups = measured(trained, identity)
    seed, _ = pooled_sd(groups)
    means = [statistics.fmean(values) for values in groups.values()]
    taus = seed_taus([seeds for seeds in by_seed if seeds])
    tau = statistics.fmean(taus) if taus else None
    error = kendall_error(min((len(seeds) for seeds in by_seed if seeds), default=0)) if taus else None
    seed_pp = None if seed is None else PERCENT * seed
    spread_sd = spread(means)
    spread_pp = None if spread_sd is None else PERCENT * spread_sd
    seconds = [e.seconds for e in trained if e.status == OK]
    complete = [seeds for seeds in groups.values() if len(seeds) == config.evolution.generations + 1]
    reliable = reliability([[PERCENT * value for value in seeds] for seeds in complete])
    return FidelityResult(
        name=name, overrides=tuple(overrides), folder=str(folder), architectures=len(groups),
        seeds=config.evolution.generations + 1, evaluations=len(trained),
        failed=sum(e.status != OK for e in trained), mean_accuracy=PERCENT * statistics.fmean(means) if means else None,
        seed_sd=seed_pp, spread=spread_pp, kendall_tau=tau, tau_pairs=taus, tau_error=error,
        seconds_per_evaluation=statistics.fmean(seconds) if seconds else None,
        verdict=verdict(tau, error, seed_pp, spread_pp),
        icc=None if reliable is None else reliable.icc,
        icc_interval=None if reliable is None else reliable.icc_interval,
        icc_of_mean=None if reliable is None else reliable.icc_of_mean,
        icc_of_mean_interval=None if reliable is None else reliable.icc_of_mean_interval,
        tau_ceiling_of_mean=None if reliable is None else reliable.tau_ceiling_of_mean,
    )  # fmt: skip


def fidelity_name(overrides: Sequence[str]) -> str:
    return "; ".join(overrides) if overrides else "the config as given"


def calibrate(
    config: Config,
    out: str | Path,
    genomes: int = 12,
    seeds: int = 2,
    fidelities: Sequence[Sequence[str]] = ((),),
    progress: bool = True,
) -> list[FidelityResult]:
    """Measure each fidelity (one per list of overrides; ``((),)``: the config as it is) into ``out``.

    Every fidelity is checked before anything is trained or written; a fidelity already measured
    in ``out`` is read back, one left unfinished is resumed."""
    from genetic_cnn.evolution import check_inputs, resume_run, start_run

    if genomes < 2:
        raise UserError(f"--genomes {genomes}: ranking needs at least 2 architectures")
    if seeds < 2:
        raise UserError(f"--seeds {seeds}: the noise of a seed needs at least 2 seeds per architecture")
    out = Path(out)
    fidelities = [tuple(overrides) for overrides in fidelities] or [()]
    folders = [(out / f"fidelity-{index + 1}").resolve() for index in range(len(fidelities))]
    configs = [fidelity_config(config, overrides, genomes, seeds, folder) for overrides, folder in zip(fidelities, folders)]
    request = {"config": config.to_dict(), "genomes": genomes, "seeds": seeds, "fidelities": [list(f) for f in fidelities]}
    _check_request(out, request)
    check_writable(out)
    for fidelity_config_ in configs:
        check_inputs(fidelity_config_)  # every fidelity's data and preset, before any training
    make_folder(out)
    write_atomically(out / REQUEST, json.dumps(request, indent=2) + "\n")
    results = []
    for index, (overrides, folder, run_config) in enumerate(zip(fidelities, folders, configs)):
        print(f"fidelity {index + 1}/{len(fidelities)}: {fidelity_name(overrides)} "
              f"({plural(genomes, 'architecture')} x {plural(seeds, 'seed')}) -> {folder}", flush=True)  # fmt: skip
        if not (folder / DATABASE).is_file():
            start_run(run_config, progress=progress)
        elif _status(folder) != "finished":
            resume_run(folder, progress=progress)
        results.append(measure_fidelity(folder, fidelity_name(overrides), overrides))
        print(f"  {summary_line(results[-1])}", flush=True)
    write_results(out, results)
    return results


def _status(folder: Path) -> str:
    with RunStore.open(folder, readonly=True) as store:
        return store.status


def _check_request(out: Path, request: dict[str, Any]) -> None:
    """``out`` is new, empty, or holds a calibration of exactly this request (which then continues)."""
    path = out / REQUEST
    if path.is_file():
        if _as_read_now(json.loads(path.read_text(encoding="utf-8"))) != _as_read_now(json.loads(json.dumps(request))):
            raise UserError(
                f"{out} holds a calibration with other settings (config, --genomes, --seeds or --fidelity); "
                "repeat its command to continue it, or choose another --out"
            )
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and holds no calibration; choose a new or empty folder")


def _as_read_now(request: dict[str, Any]) -> dict[str, Any]:
    """A stored request with its config read by this version: keys added since take their defaults,
    so that a calibration begun by an older version can be continued."""
    from genetic_cnn.config import ConfigError, config_from_dict

    try:
        return {**request, "config": config_from_dict(request["config"]).to_dict()}
    except (ConfigError, KeyError, TypeError):
        return request  # unreadable: it differs from any request this version makes


def summary_line(result: FidelityResult) -> str:
    seconds = "–" if result.seconds_per_evaluation is None else f"{result.seconds_per_evaluation:.1f} s"
    return f"{seconds} per evaluation; {result.verdict}"


def _points(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _with_interval(value: float | None, interval: Sequence[float] | None) -> str:
    if value is None or interval is None:
        return "–"
    return f"{value:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def markdown(results: Sequence[FidelityResult]) -> str:
    lines = [
        "# Calibration", "",
        "Each fidelity trained the same architectures with several seeds. *Seed sd*: pooled standard deviation of "
        "one architecture's validation accuracy over seeds; *spread*: standard deviation of the architectures' mean "
        "accuracy; both in percentage points. *tau*: Kendall tau between the seeds' rankings (mean over pairs of "
        "seeds), with the standard error of tau between unrelated orders beside it: a tau within twice that "
        "error of 0 is undecided. *ICC(1)*: the reliability of one evaluation (intra-class correlation, one-way "
        "random effects), *ICC(1,S)*: of the mean of the S seeds, each with its 95% F interval; *tau ceiling*: the "
        "tau a perfect proxy would reach against the seeds' mean (seed-against-seed tau is not that ceiling).", "",
        "| fidelity | architectures | seeds | s / evaluation | mean accuracy | seed sd | spread | tau | ± | ICC(1) "
        "[95%] | ICC(1,S) [95%] | tau ceiling | failed | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in results:
        lines.append(
            f"| {r.name} | {r.architectures} | {r.seeds} | {_points(r.seconds_per_evaluation, 1)} | "
            f"{_points(r.mean_accuracy)}% | {_points(r.seed_sd)} | {_points(r.spread)} | {_points(r.kendall_tau)} | "
            f"{_points(r.tau_error)} | {_with_interval(r.icc, r.icc_interval)} | "
            f"{_with_interval(r.icc_of_mean, r.icc_of_mean_interval)} | {_points(r.tau_ceiling_of_mean)} | {r.failed} | "
            f"{verdict_kind(r.verdict)} |"
        )
    lines += ["", "![tau against seconds per evaluation](calibration.png)", ""]
    lines += [f"- **{r.name}** ({r.folder}): {r.verdict}" for r in results]
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: Sequence[FidelityResult]) -> None:
    from genetic_cnn.report.plots import plot_calibration

    payload = {"written": datetime.now().isoformat(timespec="seconds"), "fidelities": [asdict(r) for r in results]}
    write_atomically(out / RESULTS, json.dumps(payload, indent=2) + "\n", "free disk space, then repeat the command")
    write_atomically(out / "calibration.md", markdown(results), "free disk space, then repeat the command")
    points = [(r.name, r.seconds_per_evaluation, r.kendall_tau, r.tau_error or 0.0) for r in results]
    plot_calibration(points, RANKS, WEAK, out / "calibration.png")


def load_results(out: str | Path) -> list[FidelityResult]:
    """The fidelities of a finished calibration, as ``calibrate`` returned them."""
    payload = json.loads((Path(out) / RESULTS).read_text(encoding="utf-8"))
    pairs = ("icc_interval", "icc_of_mean_interval")
    return [FidelityResult(**{**r, "overrides": tuple(r["overrides"]), "tau_pairs": tuple(r["tau_pairs"]),
                              **{key: tuple(r[key]) for key in pairs if r.get(key) is not None}})
            for r in payload["fidelities"]]  # fmt: skip


# ---------------------------------------------------------------------- CLI


def closing_line(results: Sequence[FidelityResult]) -> str:
    """The calibration's conclusion, from the same verdicts as its table."""
    best = [r for r in results if r.kendall_tau is not None and verdict_kind(r.verdict) == "ranks architectures"]
    if best:
        cheapest = min(best, key=lambda r: r.seconds_per_evaluation or math.inf)
        return f"cheapest fidelity that ranks: {cheapest.name} ({_points(cheapest.seconds_per_evaluation, 1)} s per evaluation)"
    verdicts = "; ".join(f"{r.name}: {verdict_kind(r.verdict)} (tau {_points(r.kendall_tau)})" for r in results)
    return f"no fidelity measured here was shown to rank architectures (tau >= {RANKS} beyond chance): {verdicts}"
