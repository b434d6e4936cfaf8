"""How fast `genetic-cnn dashboard` shows a run and shows a new evaluation, in headless Chromium.

Over a copy of RUN (the copy is written to; RUN is left alone): the page's load time (from the
browser being asked for the page to the run's numbers on it) and, ``--updates`` times, the update
latency (from an evaluation committed through the run database, at a random moment of the page's
one-second polling cycle, to the page showing it by itself).
Needs Debian's chromium and chromium-driver and selenium (the ``dev`` extra).

    python benchmarks/dashboard_latency.py RUN [--updates 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import write_json
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from genetic_cnn.history.rundata import RunData
from genetic_cnn.history.store import RunStore
from genetic_cnn.report.dashboard import make_server
from genetic_cnn.search.records import OK, EvaluationResult


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1300,2000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def until(condition, timeout: float = 30.0) -> float:  # noqa: ANN001
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the page did not show it")
        time.sleep(0.01)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--json", help="write the figures here (default benchmarks/results/dashboard_latency.json)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp()) / "run"
    shutil.copytree(args.run, work)
    data = RunData.load(work)
    server = make_server([work], port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser()
    try:
        def field(name: str) -> str:
            # One script call: the page may redraw between finding an element and reading it.
            return driver.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : '';",
                f'#run-0 [data-field="{name}"]',
            )

        started = time.perf_counter()
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        count = len(data.evaluations)
        until(lambda: field("evaluations") == str(count))
        load = time.perf_counter() - started
        pacing = random.Random(0)
        generation = max(e.generation for e in data.evaluations) + 1
        latencies = []
        with RunStore.open(work) as store:
            store.lock()
            for slot in range(args.updates):
                # Commits fall at any moment of the page's polling cycle, as a run's do.
                time.sleep(pacing.uniform(0.0, 1.0))
                best = data.evaluations[0]
                store.add_evaluation(EvaluationResult(generation, slot, best.genome, best.key, slot, OK, accuracy=0.5))
                count += 1
                latencies.append(until(lambda: field("evaluations") == str(count)))  # noqa: B023 - read at once
    finally:
        driver.quit()
        server.shutdown()
    result = {
        "run": str(args.run), "evaluations": len(data.evaluations), "page_load_s": load,
        "update_s": {"median": statistics.median(latencies), "min": min(latencies), "max": max(latencies),
                     "all": latencies},
        "state_bytes": len(server.RequestHandlerClass.dashboard.state()),  # type: ignore[attr-defined]
    }  # fmt: skip
    print(f"page load {load:.2f} s; update after a commit: median {result['update_s']['median']:.2f} s "
          f"(min {min(latencies):.2f}, max {max(latencies):.2f}, {len(latencies)} updates); "
          f"/api/state {result['state_bytes']:,} bytes for {len(data.evaluations)} evaluations")  # fmt: skip
    print(f"wrote {write_json(result, 'dashboard_latency', args.json)}")


if __name__ == "__main__":
    main()
