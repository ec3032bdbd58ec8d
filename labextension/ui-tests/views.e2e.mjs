// End-to-end test of what the notebook's own views (AppView, ParamsForm) and the side panel tell the user,
// in a real headless Chromium driven by playwright-core, against a real JupyterLab, kernel and Dask cluster.
//
// Expects a running JupyterLab (started by tests/labextension/test_panel_browser.py) serving NOTEBOOK, whose
// cells are named by CELLS (a JSON list, in order): `load` (%load_ext lightnb), `start` (two ended runs of
// "RepeatedApp", the latest in `done`, and a running app `app` with a long name; each serves a page and prints
// ANSI-coloured output), `view` (`app`'s AppView), `stopped_view` (`done`'s), `form` (a ParamsForm on
// app.root.lr in [0, 1]), `stopped_form` (one on done.root), `block` (keeps the kernel busy until lr
// changes). Environment: LAB_URL (ends with /), LAB_TOKEN, NOTEBOOK, CELLS, ARTIFACTS (screenshots), CHROMIUM.
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
const LONG_NAME = 'AnAppWithAVeryLongNameThatTheSidePanelShowsWhole';
const REPEATED = 'RepeatedApp';
const PANEL = '#lightnb-apps-panel';

const result = { steps: [], problems: [], consoleErrors: [], pageErrors: [] };

const step = stepper(result);

/** A check that does not stop the test: every problem the user would see is reported at the end. */
function expect(condition, message) {
  if (!condition) {
    result.problems.push(message);
    console.log(`  PROBLEM: ${message}`);
  }
  return Boolean(condition);
}

/** `waitFor`, reporting a timeout as a problem (see `expect`) instead of stopping; returns whether it came. */
async function eventually(read, accept, what, options = {}) {
  try {
    await waitFor(read, accept, what, options);
    return true;
  } catch (error) {
    return expect(false, error.message);
  }
}

fs.mkdirSync(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
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
// (Scoped to this notebook: other notebooks the workspace restored keep their cells in the page.)
const cell = name => page.locator('[data-e2e-notebook="views"] .jp-Notebook .jp-Cell').nth(CELLS.indexOf(name));
const output = name => cell(name).locator('.jp-OutputArea-output');
const panel = page.locator(PANEL);
const appSection = name => panel.locator('.jp-LightnbApp', { has: page.locator('.jp-LightnbApp-name', { hasText: name }) });

/** The prompt of a cell: "[*]:" while it runs, "[3]:" once it ran. */
const prompt = name => cell(name).locator('.jp-InputPrompt').first().innerText({ timeout: 2000 }).catch(() => '');

async function screenshot(locator, name) {
  await locator.screenshot({ path: path.join(ARTIFACTS, name) });
}

let failure = null;
try {
  step('open the notebook, the panel, and run all cells');
  await page.goto(`${LAB_URL}lab/tree/${NOTEBOOK}?token=${TOKEN}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.jupyterapp !== undefined, null, { timeout: 90000 });
  await page.waitForFunction(`${NOTEBOOK_PANEL}?.sessionContext?.session?.kernel?.status === 'idle'`, null, {
    timeout: 90000,
    polling: 200
  });
  await page.evaluate(`${NOTEBOOK_PANEL}.node.dataset.e2eNotebook = 'views'`);
  await page.evaluate(`window.jupyterapp.shell.activateById(${NOTEBOOK_PANEL}.id)`);
  const tab = page.locator(`.jp-SideBar.jp-mod-left [data-id="lightnb-apps-panel"]`);
  await tab.waitFor({ timeout: 30000 });
  if (!(await panel.isVisible())) {
    await tab.click();
  }
  await panel.waitFor({ state: 'visible', timeout: 10000 });
  // (Not awaited: the command's promise ends with the last cell, which waits for the form below.)
  await page.evaluate(`void window.jupyterapp.commands.execute('notebook:run-all-cells')`);

  step('the panel shows the running app while the cells still run (not "Connecting…" until the last one)');
  const running = appSection(LONG_NAME);
  await waitFor(
    () => running.getAttribute('data-stage', { timeout: 1000 }).catch(() => null),
    stage => stage === 'running',
    'the panel to show the running app',
    { timeout: 150000 }
  );
  const blockPrompt = await prompt('block');
  expect(blockPrompt.includes('*'), `the last cell was still running when the panel showed the app (prompt ${blockPrompt})`);

  step('the panel: whole names, stopped is not an error, one entry per name for ended runs, no ANSI codes');
  const name = running.locator('.jp-LightnbApp-name');
  expect((await name.innerText()) === LONG_NAME, `the app's name is shown whole: ${await name.innerText()}`);
  const fits = await name.evaluate(e => e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1);
  expect(fits, "the app's name is not cut off");
  expect(((await name.getAttribute('title')) || '').includes(LONG_NAME), 'the name has a tooltip');
  const repeatedCount = await appSection(REPEATED).count();
  expect(repeatedCount === 1, `one entry for the two ended runs of ${REPEATED}, got ${repeatedCount}`);
  const repeated = appSection(REPEATED).last();
  expect((await repeated.getAttribute('data-stage')) === 'stopped', `${REPEATED} is shown stopped`);
  const earlier = repeated.locator('.jp-LightnbApp-earlier');
  expect(
    (await earlier.count()) === 1 && (await earlier.innerText()).includes('1 earlier ended run'),
    'the hidden earlier run is mentioned'
  );
  const stoppedWork = repeated.locator('.jp-LightnbComponent[data-name="root.page"]');
  expect((await stoppedWork.getAttribute('data-stage')) === 'stopped', 'the work of the stopped app is stopped');
  const summaries = await stoppedWork.locator('summary').allInnerTexts();
  expect(!summaries.some(s => /error/i.test(s)), `a stopped work is not shown under an "Error" heading: ${summaries}`);
  const pageWork = running.locator('.jp-LightnbComponent[data-name="root.page"]');
  const lastLine = await waitFor(
    () => pageWork.locator('.jp-LightnbComponent-log').innerText({ timeout: 1000 }).catch(() => ''),
    text => text.includes('Total FLOPs'),
    "the work's last line in the panel"
  );
  expect(!/\[\d+m|\x1b/.test(lastLine), `the panel's last line has no ANSI codes: ${JSON.stringify(lastLine)}`);
  expect(lastLine.includes('Total FLOPs: 1.2 G'), `the panel's last line reads as printed: ${lastLine}`);
  await screenshot(panel, 'panel-names-and-stopped.png');

  step("the panel draws the work's streamed metrics as sparklines that grow while it streams");
  const spark = pageWork.locator('.jp-LightnbSparkline[data-metric="loss"]');
  const sparkState = () =>
    spark
      .evaluate(e => ({
        points: Number(e.dataset.points),
        value: e.querySelector('.jp-LightnbSparkline-value').textContent,
        src: e.querySelector('img').getAttribute('src')
      }))
      .catch(() => null);
  const firstSpark = await waitFor(sparkState, s => s && s.points >= 3, 'a loss sparkline with a few points', {
    timeout: 30000
  });
  expect((await pageWork.locator('.jp-LightnbSparkline').count()) === 2, 'one sparkline per metric (loss, accuracy)');
  const drawn = (/points="([^"]*)"/.exec(decodeURIComponent(firstSpark.src)) || ['', ''])[1].split(' ').filter(Boolean);
  expect(
    drawn.length === firstSpark.points,
    `the sparkline draws its ${firstSpark.points} points: ${decodeURIComponent(firstSpark.src).slice(0, 300)}`
  );
  // It grows (up to the points it keeps, then it moves on: its latest value changes).
  await eventually(
    sparkState,
    s => s && (s.points > firstSpark.points || (s.value !== firstSpark.value && s.src !== firstSpark.src)),
    'the sparkline to grow while the work streams',
    { timeout: 30000 }
  );
  result.sparkline = [firstSpark.points, (await sparkState())?.points];
  await screenshot(pageWork, 'panel-sparkline.png');

  step("the AppView renders the work's output in colour, not as raw ANSI codes");
  const view = output('view').locator('.lnb-app');
  await view.waitFor({ timeout: 60000 });
  const logs = view.locator('.lnb-row[data-name="root.page"] .lnb-logs');
  await waitFor(() => logs.evaluate(e => e.textContent).catch(() => ''), t => t.includes('Total FLOPs'), 'the logs');
  const rendered = await logs.evaluate(e => {
    const styled = [...e.querySelectorAll('*')];
    const bold = styled.find(s => s.textContent.includes('Total FLOPs') && Number(getComputedStyle(s).fontWeight) >= 600);
    const green = styled.find(s => s.textContent.includes('1.2 G') && getComputedStyle(s).color !== getComputedStyle(e).color);
    return { text: e.textContent, bold: Boolean(bold), coloured: Boolean(green) };
  });
  expect(!/\[\d+m|\x1b/.test(rendered.text), `no raw ANSI codes in the view's logs: ${JSON.stringify(rendered.text)}`);
  expect(rendered.bold && rendered.coloured, `the output is bold and coloured as printed: ${JSON.stringify(rendered)}`);
  await view.locator('.lnb-row[data-name="root.page"] .lnb-logs-box summary').click();
  await screenshot(view, 'appview-ansi-logs.png');

  step("the work's metrics are a live line chart, at most 10 new points a second");
  const chart = view.locator('.lnb-row[data-name="root.page"] .lnb-chart');
  const points = async () => Number((await chart.getAttribute('data-points', { timeout: 1000 }).catch(() => null)) ?? 0);
  if (await eventually(points, n => n >= 5, 'a chart with a few points', { timeout: 30000 })) {
    const labels = await chart.locator('.u-legend .u-label').allInnerTexts();
    expect(labels.includes('loss') && labels.includes('accuracy'), `one series per metric: ${labels}`);
    expect((await chart.locator('canvas').count()) === 1, 'the chart is drawn');
    const [n1, t1] = [await points(), Date.now()];
    await eventually(points, n => n >= n1 + 15, 'the chart to grow', { timeout: 30000 });
    const [n2, t2] = [await points(), Date.now()];
    const rate = (n2 - n1) / ((t2 - t1) / 1000);
    expect(rate <= 12, `at most 10 points a second, got ${rate.toFixed(1)}`);
    await screenshot(chart, 'appview-metrics-chart.png');
  }

  step("a page tab is as high as most of the notebook's view, and resizable");
  await view.locator('.lnb-tab', { hasText: 'page' }).click();
  await view.locator('iframe.lnb-frame').waitFor({ timeout: 30000 });
  const sizes = await view.locator('iframe.lnb-frame').evaluate(frame => {
    const box = frame.closest('.lnb-frame-box');
    return {
      box: Boolean(box),
      height: frame.getBoundingClientRect().height,
      viewport: window.innerHeight,
      resize: box ? getComputedStyle(box).resize : getComputedStyle(frame).resize
    };
  });
  expect(sizes.box && sizes.resize === 'vertical', `the page's box is resizable: ${JSON.stringify(sizes)}`);
  expect(Math.abs(sizes.height - 0.75 * sizes.viewport) < 8, `the page is 75% of the view high: ${JSON.stringify(sizes)}`);
  if (sizes.box) {
    const resized = await view.locator('.lnb-frame-box').evaluate(e => {
      e.style.height = '320px'; // what dragging the corner does
      return e.querySelector('iframe').getBoundingClientRect().height;
    });
    expect(Math.abs(resized - 320) < 4, `the page follows its box: ${resized}`);
  }
  const frameText = await output('view')
    .frameLocator('iframe.lnb-frame')
    .locator('body')
    .innerText({ timeout: 30000 });
  expect(frameText.includes('lightnb views page'), `the tab shows the page: ${frameText}`);

  step('the page tab of a stopped app says "stopped", not a dead frame');
  const stoppedView = output('stopped_view').locator('.lnb-app');
  await stoppedView.waitFor({ timeout: 30000 });
  await stoppedView.locator('.lnb-tab', { hasText: 'page' }).click();
  const stoppedPane = stoppedView.locator('.lnb-page-stopped');
  if (await eventually(() => stoppedPane.count(), n => n === 1, 'the stopped page tab to say so', { timeout: 10000 })) {
    expect((await stoppedPane.innerText()).includes('stopped'), 'the pane says stopped');
  }
  expect((await stoppedView.locator('iframe').count()) === 0, 'no (dead) iframe for a stopped app');

  step('a form on a stopped app refuses to apply, and says why');
  const stoppedForm = output('stopped_form').locator('.lnb-form');
  await stoppedForm.locator('input[type="text"]').fill('0.2');
  await stoppedForm.locator('button[type="submit"]').click();
  const refusal = await waitFor(
    () => stoppedForm.locator('.lnb-status').innerText(),
    t => t !== '',
    'the stopped form to answer'
  );
  expect(/not running/.test(refusal) && !/^applied/.test(refusal), `the form refuses: ${refusal}`);

  step('invalid input keeps what was typed beside its error');
  const form = output('form').locator('.lnb-form');
  const lr = form.locator('input[type="text"]');
  const fieldError = form.locator('.lnb-field-error');
  for (const [typed, problem] of [
    ['abc', "'abc' is not a number"],
    ['5', 'above the maximum'],
    ['', 'a number is required']
  ]) {
    await lr.fill(typed);
    await form.locator('button[type="submit"]').click();
    await eventually(() => fieldError.innerText(), t => t.includes(problem), `the error for ${JSON.stringify(typed)}`, {
      timeout: 20000
    });
    expect((await lr.inputValue()) === typed, `what was typed stays: ${JSON.stringify(await lr.inputValue())} ≠ ${JSON.stringify(typed)}`);
    if (typed === 'abc') {
      await screenshot(form, 'params-form-error.png');
    }
  }
  step('a valid value applies to the running app (and ends the busy cell)');
  await lr.fill('0.5');
  await form.locator('button[type="submit"]').click();
  await waitFor(() => form.locator('.lnb-status').innerText(), t => t.startsWith('applied'), 'applied');
  await eventually(
    async () => (await output('block').allInnerTexts()).join('\n'),
    t => t.includes('LR NOW 0.5'),
    'the flow to see the new lr (while its cell was still running)'
  );

  step('after a kernel restart the view says its app is gone, and its buttons are off');
  await page.evaluate(`${NOTEBOOK_PANEL}.sessionContext.session.kernel.restart()`);
  const gone = view.locator('.lnb-gone');
  await eventually(() => gone.isVisible(), v => v, 'the view to say the kernel went away', { timeout: 30000 });
  expect((await gone.count()) && (await gone.innerText()).includes('this app is gone'), 'the notice says the app is gone');
  const stop = view.locator('.lnb-header button', { hasText: 'Stop' });
  expect(await stop.isDisabled(), 'the Stop button is off');
  expect(!(await view.locator('.lnb-app-stage').innerText()).includes('running'), 'the view no longer says running');
  await stop.click({ force: true }).catch(() => {});
  expect((await view.locator('iframe').count()) === 0, 'the page of the gone app is not shown in a dead frame');
  expect((await view.locator('.lnb-page-stopped').count()) === 1, 'its tab says stopped');
  await eventually(() => form.locator('.lnb-status').innerText(), t => t.includes('kernel'), 'the form to say its kernel is gone', {
    timeout: 10000
  });
  expect(await form.locator('button[type="submit"]').isDisabled(), 'Apply is off once the kernel is gone');
  await view.locator('.lnb-tab', { hasText: 'Components' }).click();
  await screenshot(view, 'appview-kernel-gone.png');
  const cannotSend = [...result.pageErrors, ...result.consoleErrors].filter(e => /Cannot send/.test(e));
  expect(cannotSend.length === 0, `no uncaught "Cannot send": ${cannotSend.join(' | ')}`);
  check(result.problems.length === 0, `${result.problems.length} problem(s):\n- ${result.problems.join('\n- ')}`);
} catch (error) {
  failure = error;
  console.error(`E2E FAILED: ${error.stack || error}`);
  result.cellErrors = await page
    .locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    .allInnerTexts()
    .catch(() => []);
  await page.screenshot({ path: path.join(ARTIFACTS, 'views-failure.png') }).catch(() => {});
} finally {
  await browser.close();
}
result.ok = failure === null;
result.error = failure ? String(failure.message || failure) : null;
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(failure ? 1 : 0);
