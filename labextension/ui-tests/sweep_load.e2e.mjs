// End-to-end test of how the AppView shows a Sweep and a LoadTest, in a real headless Chromium driven by
// playwright-core, against a real JupyterLab, kernel and Dask cluster.
//
// Expects a running JupyterLab serving NOTEBOOK, whose cells are named by CELLS (a JSON list, in order):
// `load` (%load_ext lightnb), `setup` (the classes, a cluster, a small HTTP server on loopback), `sweep`
// (starts the sweep app and shows its AppView), `loadtest` (the same for the load test app).
// Environment: LAB_URL (ends with /), LAB_TOKEN, NOTEBOOK, CELLS, ARTIFACTS (screenshots), CHROMIUM.
// Prints one line per step and, at the end, `E2E-RESULT {json}`; exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { check, required, stepper, waitFor } from './support.mjs';

const LAB_URL = required('LAB_URL');
const TOKEN = required('LAB_TOKEN');
const NOTEBOOK = required('NOTEBOOK');
const CELLS = JSON.parse(required('CELLS'));
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const result = { steps: [], trialStates: {}, sweepFinal: null, loadSamples: [], consoleErrors: [], pageErrors: [] };
const step = stepper(result);

fs.mkdirSync(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
const page = await context.newPage();
page.on('console', msg => {
  if (msg.type() === 'error') {
    result.consoleErrors.push(msg.text());
  }
});
page.on('pageerror', error => result.pageErrors.push(error.message));

const NOTEBOOK_PANEL = `[...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === ${JSON.stringify(
  NOTEBOOK
)})`;
const cell = name => page.locator('[data-e2e-notebook="sweep-load"] .jp-Notebook .jp-Cell').nth(CELLS.indexOf(name));
const view = name => cell(name).locator('.jp-OutputArea-output .lnb-app');

/** What the sweep's view shows: its rows (trial, state, value, best?) and its chart's points. */
const readSweep = box =>
  box
    .evaluate(e => ({
      rows: [...e.querySelectorAll('tr.lnb-trial')].map(r => ({
        trial: Number(r.dataset.trial),
        state: r.dataset.state,
        value: r.querySelector('.lnb-trial-value').textContent,
        best: r.classList.contains('lnb-best'),
        background: getComputedStyle(r).backgroundColor
      })),
      points: Number(e.querySelector('.lnb-sweep-chart')?.dataset.points ?? -1),
      canvas: e.querySelectorAll('.lnb-sweep-chart canvas').length,
      summary: e.querySelector('.lnb-view-summary')?.textContent
    }))
    .catch(() => null);

/** What the load test's view shows: its figures by name, and its chart's points. */
const readLoad = box =>
  box
    .evaluate(e => ({
      figures: Object.fromEntries(
        [...e.querySelectorAll('.lnb-figure')].map(f => [f.dataset.figure, f.querySelector('.lnb-figure-value').textContent])
      ),
      points: Number(e.querySelector('.lnb-load-chart')?.dataset.points ?? -1),
      at: Date.now()
    }))
    .catch(() => null);

let failure = null;
try {
  step('open the notebook and run all cells');
  await page.goto(`${LAB_URL}lab/tree/${NOTEBOOK}?token=${TOKEN}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.jupyterapp !== undefined, null, { timeout: 90000 });
  await page.waitForFunction(`${NOTEBOOK_PANEL}?.sessionContext?.session?.kernel?.status === 'idle'`, null, {
    timeout: 90000,
    polling: 200
  });
  await page.evaluate(`${NOTEBOOK_PANEL}.node.dataset.e2eNotebook = 'sweep-load'`);
  await page.evaluate(`window.jupyterapp.shell.activateById(${NOTEBOOK_PANEL}.id)`);
  await page.evaluate(`void window.jupyterapp.commands.execute('notebook:run-all-cells')`);

  step("the sweep's view: a row per trial, whose state changes live");
  const sweep = view('sweep').locator('.lnb-row[data-name="root.sweep"] .lnb-view[data-kind="sweep"]');
  await sweep.waitFor({ timeout: 150000 });
  const seen = result.trialStates;
  const final = await waitFor(
    async () => {
      const shown = await readSweep(sweep);
      for (const row of shown?.rows || []) {
        const states = (seen[row.trial] ||= []);
        if (states[states.length - 1] !== row.state) states.push(row.state);
      }
      return shown;
    },
    shown => shown && shown.rows.length === 6 && shown.rows.every(row => row.state !== 'running'),
    'every trial of the sweep to end',
    { timeout: 180000, interval: 50 }
  );
  result.sweepFinal = final;
  const live = Object.values(seen).filter(states => states[0] === 'running' && states.includes('complete'));
  check(live.length >= 2, `trials were seen running, then complete: ${JSON.stringify(seen)}`);
  check(final.rows.every(row => row.state === 'complete'), `every trial completed: ${JSON.stringify(final.rows)}`);

  step('the best trial is highlighted, and the chart has a point per finished trial');
  const values = final.rows.map(row => Number(row.value));
  const bestValue = Math.min(...values);
  const best = final.rows.filter(row => row.best);
  check(best.length === 1, `one row is highlighted as the best: ${JSON.stringify(final.rows)}`);
  check(Number(best[0].value) === bestValue, `the highlighted row has the lowest loss (${bestValue}): ${JSON.stringify(best)}`);
  const plain = final.rows.find(row => !row.best);
  check(best[0].background !== plain.background, `the best row looks different: ${best[0].background}`);
  check(final.points === final.rows.length, `the chart has ${final.points} points for ${final.rows.length} finished trials`);
  check(final.canvas === 1, 'the chart is drawn');
  check(/best: trial/.test(final.summary || ''), `the summary names the best trial: ${final.summary}`);
  await sweep.screenshot({ path: path.join(ARTIFACTS, 'appview-sweep.png') });

  step("the load test's view: requests per second and p50/p95/p99 that update as it runs");
  const load = view('loadtest').locator('.lnb-row[data-name="root.load"] .lnb-view[data-kind="loadtest"]');
  await load.waitFor({ timeout: 150000 });
  const samples = result.loadSamples;
  await waitFor(
    async () => {
      const shown = await readLoad(load);
      const last = samples[samples.length - 1];
      if (shown && (!last || JSON.stringify(last.figures) !== JSON.stringify(shown.figures))) samples.push(shown);
      return samples;
    },
    all => all.filter(s => Number(s.figures.requests) > 0).length >= 3,
    'three different sets of figures while the load test runs',
    { timeout: 120000, interval: 100 }
  );
  const running = samples.filter(s => Number(s.figures.requests) > 0);
  for (const sample of running) {
    for (const key of ['rps', 'p50_ms', 'p95_ms', 'p99_ms']) {
      check(Number.isFinite(Number(sample.figures[key])), `${key} is a number: ${JSON.stringify(sample.figures)}`);
    }
    check(Number(sample.figures.p50_ms) <= Number(sample.figures.p99_ms), `p50 ≤ p99: ${JSON.stringify(sample.figures)}`);
  }
  const requests = running.map(s => Number(s.figures.requests));
  check(requests[requests.length - 1] > requests[0], `the request count grows: ${requests}`);
  check(running[running.length - 1].points > running[0].points, `the chart grows: ${running.map(s => s.points)}`);
  await load.screenshot({ path: path.join(ARTIFACTS, 'appview-loadtest.png') });
  check(result.pageErrors.length === 0, `no page errors: ${result.pageErrors.join(' | ')}`);
} catch (error) {
  failure = error;
  console.error(`E2E FAILED: ${error.stack || error}`);
  result.cellErrors = await page
    .locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    .allInnerTexts()
    .catch(() => []);
  await page.screenshot({ path: path.join(ARTIFACTS, 'sweep-load-failure.png') }).catch(() => {});
} finally {
  await browser.close();
}
result.ok = failure === null;
result.error = failure ? String(failure.message || failure) : null;
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(failure ? 1 : 0);
