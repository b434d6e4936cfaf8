"""`genetic-cnn dashboard`: the JSON agrees with the run database, the databases are only read, and
the page in a real headless Chromium shows a run's numbers and updates by itself as evaluations land."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY, cli_command, run_cli

from genetic_cnn.config import load_config
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import start_run
from genetic_cnn.history.front import run_front
from genetic_cnn.history.rundata import RunData, key_of, pct
from genetic_cnn.history.store import DATABASE, RunStore
from genetic_cnn.report.dashboard import Dashboard, genome_svg, make_server
from genetic_cnn.search.records import OK, EvaluationResult
from genetic_cnn.space.genome import Genome

UPDATE_WITHIN = 5.0
"""Seconds the page may take to show a newly committed evaluation (it polls every second)."""


def silent(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = TINY + ["train.schedule=[[2, 0.003]]"]
    return start_run(load_config(None, overrides), out=tmp_path_factory.mktemp("dash") / "run", progress=False, echo=silent)


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    """A copy the test may write to."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    return folder


def test_state_agrees_with_the_database(finished_run: Path) -> None:
    state = json.loads(Dashboard([finished_run]).state())
    (run,) = state["runs"]
    data = RunData.load(finished_run)
    assert [row["generation"] for row in run["table"]] == [0, 1, 2]
    for row, expected in zip(run["table"], data.generation_rows()):
        assert (row["max"], row["mean"], row["best_genome"]) == (
            expected.summary.maximum, expected.summary.mean, expected.summary.best_genome
        )
    assert run["counts"]["trained"] == len(data.evaluations) == 12
    assert run["best"][0]["genome"] == data.ranking()[0].genome
    assert run["best_so_far"]["accuracy"] == data.best_so_far()[2]
    assert len(run["curves"]) == 12 and all(len(curve["epochs"]) == 2 for curve in run["curves"])
    assert run["individuals"] == [[r.generation, list(r.fitness)] for r in data.generations]
    assert run["objectives"] == ["accuracy"] and run["pareto"] is None  # one objective: no front to show


def test_the_databases_are_only_read(run_copy: Path) -> None:
    before = (run_copy / DATABASE).read_bytes()
    files = sorted(path.name for path in run_copy.iterdir())
    dashboard = Dashboard([run_copy])
    for _ in range(3):
        dashboard.state()
    assert (run_copy / DATABASE).read_bytes() == before
    assert sorted(path.name for path in run_copy.iterdir()) == files


def test_reading_while_a_run_writes_disturbs_neither(run_copy: Path) -> None:
    dashboard = Dashboard([run_copy])
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                dashboard.state()
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)
                return

    reader = threading.Thread(target=read)
    reader.start()
    with RunStore.open(run_copy) as store:
        store.lock()
        for slot in range(30):
            store.add_evaluation(EvaluationResult(3, slot, "1-01|0-01-100-0111", "k", slot, OK, accuracy=slot / 100))
    stop.set()
    reader.join()
    assert not errors
    assert json.loads(dashboard.state())["runs"][0]["counts"]["trained"] == 12 + 30


def test_genome_drawing_is_svg() -> None:
    assert genome_svg("1-01|0-01-100-0111").lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError):
        genome_svg("1-0x")


def test_bad_folders_are_refused(tmp_path: Path, finished_run: Path) -> None:
    with pytest.raises(UserError, match="not a run folder"):
        Dashboard([tmp_path])
    with pytest.raises(UserError, match="twice"):
        Dashboard([finished_run, finished_run])


def test_a_port_in_use_is_refused_with_what_to_do(finished_run: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(UserError, match="choose another --port"):
            make_server([finished_run], port=taken.getsockname()[1])


def test_cli_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("dashboard", str(tmp_path), "--port", "0", timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not a run folder" in result.stderr and "Traceback" not in result.stderr


def test_several_runs_side_by_side(finished_run: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copytree(finished_run, tmp_path / name / "run")
    runs = json.loads(Dashboard([tmp_path / "a" / "run", tmp_path / "b" / "run"]).state())["runs"]
    assert [run["name"] for run in runs] == ["a/run", "b/run"]
    assert runs[0]["table"] == runs[1]["table"]


def test_cli_serves_on_the_port_it_prints(finished_run: Path) -> None:
    process = subprocess.Popen(cli_command("dashboard", str(finished_run), "--port", "0"), stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:(\d+)/)  \(Ctrl-C to stop\)\n", line)
        assert match and int(match[2]) > 0, line
        with urllib.request.urlopen(match[1] + "api/state") as answer:
            assert json.loads(answer.read())["runs"][0]["counts"]["trained"] == 12
    finally:
        process.terminate()  # SIGTERM stops it as Ctrl-C does
        assert process.wait(timeout=30) == 0


@pytest.fixture
def served(run_copy: Path) -> Iterator[str]:
    server = make_server([run_copy], port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_server_answers_page_json_and_drawings(served: str) -> None:
    with urllib.request.urlopen(served) as page:
        assert b"/dashboard.js" in page.read()
    with urllib.request.urlopen(served + "dashboard.js") as script:
        assert b"/api/state" in script.read()  # everything the page needs comes from this server
    with urllib.request.urlopen(served + "api/state") as answer:
        assert answer.headers["Content-Type"] == "application/json"
        assert json.loads(answer.read())["runs"][0]["counts"]["trained"] == 12
    with urllib.request.urlopen(served + "genome.svg?genome=1-01%7C0-01-100-0111") as drawing:
        assert drawing.headers["Content-Type"] == "image/svg+xml"


def chromium_driver():  # noqa: ANN201 - selenium's WebDriver
    """Headless Debian Chromium driven by Debian's chromedriver (installed by .ci/run)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("the dashboard test needs Chromium: apt-get install chromium chromium-driver (.ci/run does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1300,2000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for(condition, timeout: float) -> float:  # noqa: ANN001
    """Seconds until ``condition()`` is true; fails after ``timeout``."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            pytest.fail(f"the page did not show it within {timeout} s")
        time.sleep(0.05)
    return time.perf_counter() - started


@pytest.mark.slow
def test_page_shows_the_run_and_updates_by_itself(served: str, run_copy: Path) -> None:
    from selenium.webdriver.common.by import By

    data = RunData.load(run_copy)
    browser = chromium_driver()
    try:
        started = time.perf_counter()
        browser.get(served)

        def field(name: str) -> str:
            # One script call: the page may redraw between finding an element and reading it.
            return browser.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : '';",
                f'#run-0 [data-field="{name}"]',
            )

        wait_for(lambda: field("trained") == "12", 10)
        load_seconds = time.perf_counter() - started
        best = data.ranking()[0]
        assert field("best-genome") == best.genome
        assert field("best-fitness") == pct(best.fitness) and field("best-test") == pct(best.test_accuracy)
        assert field("best-so-far") == pct(data.best_so_far()[2][-1])
        assert field("generations") == "3" and field("status") == "finished"
        rows = browser.find_elements(By.CSS_SELECTOR, "#run-0 table.generations tbody tr")
        expected = [[str(s.generation), pct(s.maximum), pct(s.minimum), pct(s.mean), pct(s.median), pct(s.std),
                     s.best_genome, pct(row.test_accuracy), str(s.trained), str(s.reused)]
                    for row in data.generation_rows() for s in [row.summary]]  # fmt: skip
        assert [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows] == expected
        assert len(browser.find_elements(By.CSS_SELECTOR, "#run-0 svg.chart")) == 6
        assert not browser.find_elements(By.CSS_SELECTOR, "#run-0 .pareto")  # one objective: no front panel
        drawn = "return [...document.querySelectorAll('#run-0 .genomes img')].map((i) => i.complete && i.naturalWidth);"
        wait_for(lambda: all(browser.execute_script(drawn)), 20)  # the genomes' drawings came from the server

        # A new evaluation lands: the page shows it without being reloaded.
        with RunStore.open(run_copy) as store:
            store.lock()
            store.add_evaluation(EvaluationResult(
                3, 0, best.genome, best.key, 99, OK, accuracy=0.9876, test_accuracy=0.9, epochs=2,
                extra={"curve": [[0, 1.0, 0.5, 1.2], [1, 0.5, 0.9876, 0.4]]},
            ))  # fmt: skip
        update_seconds = wait_for(lambda: field("best-so-far") == "98.76", UPDATE_WITHIN)
        assert field("trained") == "13" and field("evaluations") == "13"
        print(f"dashboard: page load {load_seconds:.2f} s, update {update_seconds:.2f} s after the commit")
    finally:
        browser.quit()


# ------------------------------------------------------------------ a multi-objective run's Pareto front
NSGA2_ON_THE_DIGITS_TABLE = [
    "data.dataset=digits", "space.preset=digits",  # the space of the shipped table
    "evaluation.method=table", "evaluation.table=digits-standalone",  # the shipped table: read, not trained
    "evolution.strategy=nsga2", 'evolution.objectives=["accuracy", "flops"]',
    "evolution.population=8", "evolution.generations=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def nsga2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = load_config(None, NSGA2_ON_THE_DIGITS_TABLE)
    return start_run(config, out=tmp_path_factory.mktemp("dash-front") / "run", progress=False, echo=silent)


def test_state_of_a_multi_objective_run_has_its_front(nsga2_run: Path) -> None:
    (run,) = json.loads(Dashboard([nsga2_run]).state())["runs"]
    summary = json.loads((nsga2_run / "summary.json").read_text())["pareto"]
    front = run["pareto"]
    assert run["objectives"] == ["accuracy", "flops"] and front["cost"] == "flops"
    for key in ("objectives", "front", "generations", "hypervolume"):
        assert front[key] == summary[key]  # the very front summary.json, the report and export give
    assert len(front["generations"]) == 3 and front["front"]
    data = RunData.load(nsga2_run)
    assert {genome for genome, *_ in front["individuals"]} >= {member["genome"] for member in front["front"]}
    assert len(front["individuals"]) == len({data.identity(e.genome) for e in data.evaluations})
    best = max(front["individuals"], key=lambda individual: individual[1])
    assert front["front"][0]["accuracy"] == best[1]  # rank 1 is the most accurate individual measured


@pytest.mark.slow
def test_page_shows_the_front_of_a_multi_objective_run_and_updates_it(nsga2_run: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    folder = tmp_path / "run"
    shutil.copytree(nsga2_run, folder)
    front = json.loads((folder / "summary.json").read_text())["pareto"]["front"]
    server = make_server([folder], port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = chromium_driver()

    def shown() -> tuple[str, list[list[str]]]:
        """The front's size and its table's rows, read in one script call (the page may redraw between two)."""
        return tuple(browser.execute_script(
            "const size = document.querySelector('#run-0 .pareto [data-field=\"front-size\"]');"
            "const rows = [...document.querySelectorAll('#run-0 table.front tbody tr')];"
            "return [size ? size.textContent : '', rows.map((r) => [...r.cells].map((c) => c.textContent))];"
        ))  # fmt: skip

    def highlighted() -> int:
        return len(browser.find_elements(By.CSS_SELECTOR, '#run-0 .pareto circle[r="4"]'))

    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        wait_for(lambda: shown()[0] == str(len(front)), 10)
        size, rows = shown()
        assert [row[:2] for row in rows] == [[str(m["rank"]), m["genome"]] for m in front]
        assert rows[0][1] == front[0]["genome"] and rows[0][2] == pct(front[0]["accuracy"])
        assert highlighted() == len(front)
        individuals = json.loads(Dashboard([folder]).state())["runs"][0]["pareto"]["individuals"]
        assert len(browser.find_elements(By.CSS_SELECTOR, "#run-0 .pareto circle")) == len(individuals) + len(front)

        # One more evaluation lands: the cheapest network at a new best accuracy must join the front.
        cheapest = str(Genome.zeros(RunData.load(folder).config.preset().nodes))
        with RunStore.open(folder) as store:
            store.lock()
            store.add_evaluation(EvaluationResult(3, 0, cheapest, key_of(cheapest), 99, OK, accuracy=0.999, test_accuracy=0.99))
        expected = run_front(RunData.load(folder))
        assert [m.genome for m in expected] != [m["genome"] for m in front]
        wait_for(lambda: [row[1] for row in shown()[1]] == [m.genome for m in expected], UPDATE_WITHIN)
        assert shown()[0] == str(len(expected)) and highlighted() == len(expected)
    finally:
        browser.quit()
        server.shutdown()
        server.server_close()
