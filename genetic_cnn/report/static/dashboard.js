// The dashboard page: polls /api/state and redraws when a run database changed. Charts are inline
// SVG drawn here; nothing is loaded from anywhere but the dashboard's own server.
"use strict";

const POLL_MS = Number(new URLSearchParams(location.search).get("interval")) || 1000;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
let shownVersion = null;

const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const pct = (value, digits = 2) => (value === null || value === undefined ? "–" : (100 * value).toFixed(digits));
const num = (value, digits = 2) => (value === null || value === undefined ? "–" : value.toFixed(digits));

function niceTicks(low, high, count = 5) {
  if (!(high > low)) { high = low + 1; }
  const raw = (high - low) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) { ticks.push(+t.toFixed(10)); }
  return ticks;
}

// series: [{name, colour, xs, ys, kind: "line" | "step" | "points", width, opacity}]; null ys break a line.
function chart(series, {xLabel = "", yLabel = "", percent = false, width = 480, height = 250, integerX = false} = {}) {
  const m = {left: 52, right: 12, top: 10, bottom: 38};
  const xs = series.flatMap((s) => s.xs), ys = series.flatMap((s) => s.ys).filter((y) => y !== null);
  if (!ys.length) {
    return `<svg class="chart" viewBox="0 0 ${width} ${height}"><text x="${width / 2}" y="${height / 2}" text-anchor="middle">nothing measured yet</text></svg>`;
  }
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  const pad = (y1 - y0 || Math.abs(y1) || 1) * 0.06;
  y0 -= pad; y1 += pad;
  const X = (x) => m.left + (x - x0) / (x1 - x0) * (width - m.left - m.right);
  const Y = (y) => height - m.bottom - (y - y0) / (y1 - y0) * (height - m.top - m.bottom);
  const parts = [`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">`];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${Y(t)}" y2="${Y(t)}" stroke="#eee"/>`,
      `<text x="${m.left - 4}" y="${Y(t) + 3}" text-anchor="end">${percent ? +(100 * t).toFixed(4) + "%" : +t.toFixed(6)}</text>`);
  }
  for (const t of niceTicks(x0, x1).filter((t) => !integerX || Number.isInteger(t))) {
    parts.push(`<text x="${X(t)}" y="${height - m.bottom + 13}" text-anchor="middle">${+t.toFixed(6)}</text>`);
  }
  parts.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#999"/>`,
    `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#999"/>`,
    `<text x="${(m.left + width - m.right) / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(11 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  for (const s of series) {
    const opacity = s.opacity ?? 1, colour = s.colour || COLOURS[0];
    if (s.kind === "points") {
      s.xs.forEach((x, i) => { if (s.ys[i] !== null) parts.push(`<circle cx="${X(x)}" cy="${Y(s.ys[i])}" r="2.6" fill="${colour}" fill-opacity="${opacity}"><title>${esc(s.titles ? s.titles[i] : "")}</title></circle>`); });
      continue;
    }
    let path = "", pen = false, lastY = null;
    s.xs.forEach((x, i) => {
      const y = s.ys[i];
      if (y === null) { pen = false; return; }
      if (pen && s.kind === "step") { path += `L${X(x)},${Y(lastY)}`; }
      path += `${pen ? "L" : "M"}${X(x)},${Y(y)}`;
      pen = true; lastY = y;
    });
    parts.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="${s.width || 1.6}" stroke-opacity="${opacity}"/>`);
  }
  parts.push("</svg>");
  return parts.join("");
}

function legend(items) {
  return `<div class="legend">${items.map(([name, colour]) => `<span style="--c:${colour}">${esc(name)}</span>`).join("")}</div>`;
}

function timeScale(seconds) {
  const longest = Math.max(0, ...seconds);
  return longest < 120 ? [1, "s"] : longest < 7200 ? [60, "min"] : [3600, "h"];
}

function generationTable(run) {
  const rows = run.table.map((r) => `<tr><td>${r.generation}</td><td>${pct(r.max)}</td><td>${pct(r.min)}</td><td>${pct(r.mean)}</td>` +
    `<td>${pct(r.median)}</td><td>${pct(r.std)}</td><td class="genome">${esc(r.best_genome)}</td><td>${pct(r.test)}</td>` +
    `<td>${r.trained}</td><td>${r.reused}</td></tr>`).join("");
  return `<div class="table-scroll"><table class="generations"><thead><tr><th>gen</th><th>max</th><th>min</th><th>mean</th><th>median</th>` +
    `<th>std</th><th class="genome">best genome</th><th>test</th><th>trained</th><th>reused</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function fitnessChart(run) {
  // Every evaluation as it lands (slots spread within a generation), and each completed generation's mean fitness.
  const size = Math.max(1, run.population - 1);
  const evaluations = run.evaluations;
  const xs = evaluations.map(([g, slot]) => g + 0.3 * (slot / size - 0.5));
  const ys = evaluations.map((e) => e[4]);
  const titles = evaluations.map(([g, slot, genome, status, value]) => `generation ${g}, slot ${slot}: ${genome} (${status}) ${pct(value)}%`);
  const series = [
    {kind: "points", xs, ys, titles, colour: "#555", opacity: 0.55},
    {kind: "line", xs: run.table.map((r) => r.generation), ys: run.table.map((r) => r.mean), colour: COLOURS[0], width: 2.2},
    {kind: "line", xs: run.table.map((r) => r.generation), ys: run.table.map((r) => r.max), colour: COLOURS[2]},
  ];
  return chart(series, {xLabel: "generation", yLabel: "validation accuracy", percent: true, integerX: true}) +
    legend([["evaluation", "#555"], ["mean fitness", COLOURS[0]], ["max fitness", COLOURS[2]]]);
}

function noiseChart(run) {
  const rows = run.noise.by_generation;
  const xs = rows.map((r) => r[0]);
  return chart([
    {kind: "line", xs, ys: rows.map((r) => r[1]), colour: COLOURS[3]},
    {kind: "line", xs, ys: rows.map((r) => r[2]), colour: COLOURS[0]},
  ], {xLabel: "generation", yLabel: "sd (percentage points)", integerX: true}) +
    legend([["seed sd (same genome, new seed)", COLOURS[3]], ["population sd (between genomes)", COLOURS[0]]]);
}

function curveCharts(run) {
  if (!run.curves.length) { return `<p class="muted">No learning curves: this run's database was written before they were kept, or no evaluation trained yet.</p>`; }
  // All curves thin and grey; the best evaluation's and the latest one's in colour.
  const trained = run.evaluations.filter((e) => e[3] === "ok");
  const best = trained.reduce((a, b) => (b[4] > a[4] ? b : a), trained[0] || [null, null]);
  const isBest = (c) => best && c.generation === best[0] && c.slot === best[1];
  const latest = run.curves[run.curves.length - 1];
  const style = (c) => (isBest(c) ? {colour: COLOURS[2], width: 2.4} : c === latest ? {colour: COLOURS[1], width: 2} : {colour: "#888", width: 1, opacity: 0.35});
  const order = [...run.curves].sort((a, b) => (isBest(a) || a === latest) - (isBest(b) || b === latest));
  const axis = (c) => c.epochs.map((e) => e + 1);
  const key = legend([["best evaluation", COLOURS[2]], ["latest", COLOURS[1]], ["others", "#bbb"]]);
  return `<div class="charts">` +
    `<figure><figcaption>Training loss per epoch</figcaption>${chart(order.map((c) => ({kind: "line", xs: axis(c), ys: c.train_loss, ...style(c)})), {xLabel: "epoch", yLabel: "training loss", integerX: true})}${key}</figure>` +
    `<figure><figcaption>Validation accuracy per epoch</figcaption>${chart(order.map((c) => ({kind: "line", xs: axis(c), ys: c.validation_accuracy, ...style(c)})), {xLabel: "epoch", yLabel: "validation accuracy", percent: true, integerX: true})}${key}</figure></div>`;
}

// The place kept for the Pareto front of a multi-objective search (run.objectives has more than one
// name then); a single-objective run has none to show.
function renderPareto(run) {
  if (run.objectives.length < 2) { return ""; }
  return `<h3>Pareto front</h3><p class="muted">Objectives: ${run.objectives.map(esc).join(", ")}.</p>`;
}

function bestGenomes(run) {
  if (!run.best.length) { return `<p class="muted">No trained evaluation yet.</p>`; }
  return `<div class="genomes">${run.best.map((c, i) => `<figure><figcaption>#${i + 1} <code>${esc(c.genome)}</code>: fitness ${pct(c.fitness)}%, ` +
    `test ${pct(c.test)}%, ${c.evaluations} evaluation${c.evaluations === 1 ? "" : "s"}</figcaption>` +
    `<img alt="${esc(c.genome)}" src="/genome.svg?genome=${encodeURIComponent(c.genome)}"></figure>`).join("")}</div>`;
}

function renderRun(run, index) {
  const best = run.best[0];
  const top = run.best_so_far.accuracy.length ? run.best_so_far.accuracy[run.best_so_far.accuracy.length - 1] : null;
  const [scale, unit] = timeScale(run.best_so_far.seconds);
  const bsf = run.best_so_far;
  const noise = run.noise.run;
  return `<section class="run" id="run-${index}" data-name="${esc(run.name)}">
    <h2>${esc(run.name)} <small class="status-${esc(run.status)}" data-field="status">${esc(run.status)}</small></h2>
    <div class="facts">
      <span>${esc(run.strategy)}, seed ${run.seed}, ${esc(run.dataset)}, preset ${esc(run.preset)}, N = ${run.population}</span>
      <span>generations <b data-field="generations">${run.table.length}</b> of ${run.generations_planned}</span>
      <span>evaluations <b data-field="evaluations">${run.evaluations.length}</b>: <b data-field="trained">${run.counts.trained}</b> trained
        (${run.counts.failed} failed, ${run.counts.diverged} diverged), ${run.counts.reused} reused</span>
      <span>best so far <b data-field="best-so-far">${pct(top)}</b>%</span>
      <span>best individual <code data-field="best-genome">${best ? esc(best.genome) : "–"}</code>: fitness <b data-field="best-fitness">${best ? pct(best.fitness) : "–"}</b>%,
        test <b data-field="best-test">${best ? pct(best.test) : "–"}</b>%</span>
      <span>noise: seed sd <b data-field="seed-sd">${num(noise.seed_sd)}</b> pp, population sd <b data-field="population-sd">${num(noise.population_sd)}</b> pp</span>
    </div>
    <h3>Population per generation (the paper's table)</h3>
    ${generationTable(run)}
    <h3>Best validation accuracy so far</h3>
    <div class="charts">
      <figure><figcaption>against trained evaluations</figcaption>${chart([{kind: "step", xs: bsf.evaluations, ys: bsf.accuracy}], {xLabel: "trained evaluations", yLabel: "best validation accuracy", percent: true, integerX: true})}</figure>
      <figure><figcaption>against wall time</figcaption>${chart([{kind: "step", xs: bsf.seconds.map((s) => s / scale), ys: bsf.accuracy}], {xLabel: `wall time since the run was created (${unit})`, yLabel: "best validation accuracy", percent: true})}</figure>
    </div>
    <div class="charts">
      <figure><figcaption>Fitness of every individual</figcaption>${fitnessChart(run)}</figure>
      <figure><figcaption>Evaluation noise against the spread between genomes</figcaption>${noiseChart(run)}</figure>
    </div>
    <h3>Learning curves</h3>
    ${curveCharts(run)}
    ${renderPareto(run)}
    <h3>Best genomes</h3>
    ${bestGenomes(run)}
  </section>`;
}

function renderComparison(runs) {
  const section = document.getElementById("comparison");
  section.hidden = runs.length < 2;
  if (runs.length < 2) { return; }
  document.getElementById("comparison-table").innerHTML = `<table><thead><tr><th class="genome">run</th><th>strategy</th><th>seed</th>` +
    `<th>generations</th><th>trained</th><th>best so far</th><th class="genome">best genome</th><th>fitness</th><th>test</th></tr></thead><tbody>` +
    runs.map((r) => `<tr><td class="genome">${esc(r.name)}</td><td>${esc(r.strategy)}</td><td>${r.seed}</td><td>${r.table.length}/${r.generations_planned}</td>` +
      `<td>${r.counts.trained}</td><td>${pct(r.best_so_far.accuracy.slice(-1)[0] ?? null)}</td><td class="genome">${r.best[0] ? esc(r.best[0].genome) : "–"}</td>` +
      `<td>${r.best[0] ? pct(r.best[0].fitness) : "–"}</td><td>${r.best[0] ? pct(r.best[0].test) : "–"}</td></tr>`).join("") + "</tbody></table>";
  const colour = (i) => COLOURS[i % COLOURS.length];
  const [scale, unit] = timeScale(runs.flatMap((r) => r.best_so_far.seconds));
  document.getElementById("compare-evaluations").innerHTML = chart(runs.map((r, i) => ({kind: "step", xs: r.best_so_far.evaluations, ys: r.best_so_far.accuracy, colour: colour(i)})),
    {xLabel: "trained evaluations", yLabel: "best validation accuracy", percent: true, integerX: true}) + legend(runs.map((r, i) => [r.name, colour(i)]));
  document.getElementById("compare-time").innerHTML = chart(runs.map((r, i) => ({kind: "step", xs: r.best_so_far.seconds.map((s) => s / scale), ys: r.best_so_far.accuracy, colour: colour(i)})),
    {xLabel: `wall time (${unit})`, yLabel: "best validation accuracy", percent: true}) + legend(runs.map((r, i) => [r.name, colour(i)]));
}

async function poll() {
  try {
    const response = await fetch("/api/state", {cache: "no-store"});
    if (!response.ok) { throw new Error(await response.text()); }
    const state = await response.json();
    if (state.version !== shownVersion) {
      renderComparison(state.runs);
      document.getElementById("runs").innerHTML = state.runs.map(renderRun).join("");
      shownVersion = state.version;
      document.body.dataset.version = String(state.version);
    }
    document.getElementById("status").textContent = `${state.runs.length} run${state.runs.length === 1 ? "" : "s"}; checked ${new Date().toLocaleTimeString()}, every ${POLL_MS / 1000} s`;
  } catch (error) {
    document.getElementById("status").textContent = `cannot read the runs: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

poll();
