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

// Costs as axis labels and in tables: 1.2M rather than 1200000.
function compact(value) {
  const size = Math.abs(value);
  for (const [unit, suffix] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (size >= unit) { return +(value / unit).toPrecision(3) + suffix; }
  }
  return String(+value.toPrecision(3));
}

// Ticks of a log axis between 10^low and 10^high: the powers of ten, and 2x and 5x when they are few.
function logTicks(low, high) {
  const ticks = [];
  const steps = high - low < 2 ? [1, 2, 5] : [1];
  for (let power = Math.floor(low); power <= Math.ceil(high); power++) {
    for (const step of steps) {
      const t = step * Math.pow(10, power);
      if (Math.log10(t) >= low - 1e-9 && Math.log10(t) <= high + 1e-9) { ticks.push(t); }
    }
  }
  return ticks;
}

// series: [{name, colour, xs, ys, kind: "line" | "step" | "points", width, opacity, radius, titles, labels}];
// null ys break a line. logX: a log x axis (xs > 0); padX: room left and right (scatters).
function chart(series, {xLabel = "", yLabel = "", percent = false, width = 480, height = 250, integerX = false,
  logX = false, padX = false, xFormat = (t) => +t.toFixed(6)} = {}) {
  const m = {left: 52, right: 12, top: 10, bottom: 38};
  const scaleX = logX ? Math.log10 : (x) => x;
  const xs = series.flatMap((s) => s.xs).map(scaleX), ys = series.flatMap((s) => s.ys).filter((y) => y !== null);
  if (!ys.length) {
    return `<svg class="chart" viewBox="0 0 ${width} ${height}"><text x="${width / 2}" y="${height / 2}" text-anchor="middle">nothing measured yet</text></svg>`;
  }
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  if (padX) { const room = (x1 - x0) * 0.04; x0 -= room; x1 += room; }
  const pad = (y1 - y0 || Math.abs(y1) || 1) * 0.06;
  y0 -= pad; y1 += pad;
  const X = (x) => m.left + (scaleX(x) - x0) / (x1 - x0) * (width - m.left - m.right);
  const Y = (y) => height - m.bottom - (y - y0) / (y1 - y0) * (height - m.top - m.bottom);
  const parts = [`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">`];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${Y(t)}" y2="${Y(t)}" stroke="#eee"/>`,
      `<text x="${m.left - 4}" y="${Y(t) + 3}" text-anchor="end">${percent ? +(100 * t).toFixed(4) + "%" : +t.toFixed(6)}</text>`);
  }
  const xTicks = logX ? logTicks(x0, x1) : niceTicks(x0, x1).filter((t) => !integerX || Number.isInteger(t));
  for (const t of xTicks) {
    parts.push(`<text x="${X(t)}" y="${height - m.bottom + 13}" text-anchor="middle">${esc(xFormat(t))}</text>`);
  }
  parts.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#999"/>`,
    `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#999"/>`,
    `<text x="${(m.left + width - m.right) / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(11 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  for (const s of series) {
    const opacity = s.opacity ?? 1, colour = s.colour || COLOURS[0];
    if (s.kind === "points") {
      s.xs.forEach((x, i) => {
        if (s.ys[i] === null) { return; }
        parts.push(`<circle cx="${X(x)}" cy="${Y(s.ys[i])}" r="${s.radius || 2.6}" fill="${colour}" fill-opacity="${opacity}"><title>${esc(s.titles ? s.titles[i] : "")}</title></circle>`);
        if (s.labels) { parts.push(`<text x="${X(x) + 5}" y="${Y(s.ys[i]) - 5}" style="fill:${colour}">${esc(s.labels[i])}</text>`); }
      });
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

const COST_NAMES = {flops: "FLOPs per image", params: "parameters"};
const costOf = (objective, flops, parameters) => (objective === "flops" ? flops : parameters);

// A multi-objective run's Pareto front (run.pareto, from genetic_cnn.front): every measured individual
// against its first cost, the front's members highlighted and joined as the staircase of what they
// dominate, the members in a table, and the hypervolume per generation. A single-objective run has none.
function renderPareto(run) {
  const front = run.pareto;
  if (!front) { return ""; }
  const cost = front.cost;
  const individuals = front.individuals;  // [genome, accuracy, flops, parameters, evaluations]
  const xs = individuals.map((i) => costOf(cost, i[2], i[3]));
  const members = [...front.front].sort((a, b) => costOf(cost, a.flops, a.parameters) - costOf(cost, b.flops, b.parameters));
  const memberXs = members.map((m) => costOf(cost, m.flops, m.parameters));
  const logX = xs.length > 0 && Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) > 10;
  const scatter = chart([
    {kind: "points", xs, ys: individuals.map((i) => i[1]), colour: "#999", opacity: 0.6,
      titles: individuals.map((i) => `${i[0]}: ${pct(i[1])}%, ${compact(costOf(cost, i[2], i[3]))} ${COST_NAMES[cost]}, ${i[4]} evaluation${i[4] === 1 ? "" : "s"}`)},
    // With two objectives the members make a staircase; with more, some look dominated in this projection.
    ...(front.objectives.length === 2 ? [{kind: "step", xs: memberXs, ys: members.map((m) => m.accuracy), colour: COLOURS[0], width: 1.8}] : []),
    {kind: "points", xs: memberXs, ys: members.map((m) => m.accuracy), colour: COLOURS[0], radius: 4,
      titles: members.map((m) => `front #${m.rank} ${m.genome}: ${pct(m.accuracy)}%, ${compact(costOf(cost, m.flops, m.parameters))} ${COST_NAMES[cost]}`),
      labels: members.map((m) => String(m.rank))},
  ], {xLabel: `${COST_NAMES[cost]}${logX ? " (log scale)" : ""}`, yLabel: "fitness (mean validation accuracy)", percent: true,
    logX, padX: true, xFormat: compact, width: 560, height: 300}) +
    legend([["measured individual", "#999"], [`Pareto front (${front.front.length})`, COLOURS[0]]]);
  const volumes = front.generations;
  const hypervolume = chart([{kind: "line", xs: volumes.map((g) => g.generation), ys: volumes.map((g) => g.hypervolume), colour: COLOURS[2]}],
    {xLabel: "generation", yLabel: "hypervolume", integerX: true});
  const costs = front.objectives.slice(1);
  const rows = front.front.map((m) => `<tr><td>${m.rank}</td><td class="genome">${esc(m.genome)}</td><td>${pct(m.accuracy)}</td><td>${pct(m.test_accuracy)}</td>` +
    costs.map((c) => `<td>${compact(costOf(c, m.flops, m.parameters))}</td>`).join("") + `<td>${m.evaluations}</td></tr>`).join("");
  const table = `<div class="table-scroll"><table class="front"><thead><tr><th>rank</th><th class="genome">genome</th><th>accuracy</th><th>test</th>` +
    costs.map((c) => `<th>${esc(COST_NAMES[c])}</th>`).join("") + `<th>evaluations</th></tr></thead><tbody>${rows}</tbody></table></div>`;
  return `<section class="pareto"><h3>Pareto front: <b data-field="front-size">${front.front.length}</b> members</h3>
    <p class="muted">Objectives: ${front.objectives.map(esc).join(", ")}. Hypervolume <b data-field="hypervolume">${num(front.hypervolume, 4)}</b>
      (error and costs scaled by the largest network's, reference ${front.hypervolume_reference.point}). Member K: <code>genetic-cnn train --run RUN --front-rank K</code>.</p>
    <div class="charts">
      <figure><figcaption>Every measured architecture; the front in blue, numbered by rank</figcaption>${scatter}</figure>
      <figure><figcaption>Hypervolume of the front so far, per completed generation</figcaption>${hypervolume}</figure>
    </div>
    ${table}</section>`;
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
    ${renderPareto(run)}
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
