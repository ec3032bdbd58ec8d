// What a Binder user sees, in a real headless Chromium driven by playwright-core: JupyterLab served under a
// JupyterHub-like prefix (as binder/start launches it), the quickstart notebook run from the browser with its
// live view and form rendered; the flagship run with Run All, left running, its TensorBoard and Gradio tabs shown
// through jupyter-server-proxy under that prefix, then stopped by its last cell; the existing scripts' Gradio page
// predicting and their TensorBoard showing its run, in the view's tabs through that proxy.
//
// Expects a running JupyterLab (started by tests/binder/test_binder.py). Environment: LAB_URL (the server's
// URL, prefix included, ends with /), LAB_TOKEN, QUICKSTART, FLAGSHIP and EXISTING (notebook paths in the server's root),
// ARTIFACTS (folder for screenshots), CHROMIUM (default /usr/bin/chromium).
// Prints one line per step and, at the end, `E2E-RESULT {json}`; exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { check, required, stepper } from './support.mjs';

const LAB_URL = required('LAB_URL');
const TOKEN = required('LAB_TOKEN');
const QUICKSTART = required('QUICKSTART');
const FLAGSHIP = required('FLAGSHIP');
const EXISTING = required('EXISTING');
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const result = { steps: [], consoleErrors: [], appStages: [] };

const step = stepper(result);

fs.mkdirSync(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--no-first-run']
});
const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
page.on('console', msg => msg.type() === 'error' && result.consoleErrors.push(msg.text()));
page.on('pageerror', error => result.consoleErrors.push(`page error: ${error.message}`));

const current = 'window.jupyterapp.shell.currentWidget';

/** Open a notebook through the prefix and wait for its kernel. */
async function open(notebook) {
  await page.goto(`${LAB_URL}lab/tree/${notebook}?token=${TOKEN}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.jupyterapp !== undefined, null, { timeout: 90000 });
  await page.waitForFunction(
    `${current}?.context?.path === ${JSON.stringify(notebook)} && ${current}.sessionContext.session?.kernel?.status === 'idle'`,
    null, { timeout: 90000, polling: 200 });
}

async function runCommand(id) {
  await page.evaluate(`window.jupyterapp.commands.execute(${JSON.stringify(id)})`);
}

async function openAndRunAll(notebook) {
  await open(notebook);
  await runCommand('notebook:run-all-cells');
}

/** Wait until some output of the notebook in front holds `text`. */
async function waitForOutput(text, timeout) {
  const end = Date.now() + timeout;
  while (!(await outputs()).includes(text)) {
    check(Date.now() < end, `no output holds ${JSON.stringify(text)} after ${timeout / 1000} s`);
    await new Promise(resolve => setTimeout(resolve, 500));
  }
}

/** Click the view's tab `name` and wait until its page (an iframe) shows `pattern`; returns the frame. */
async function openTab(view, name, pattern) {
  await view.locator('button.lnb-tab', { hasText: name }).click();
  const frame = view.locator('.lnb-body iframe.lnb-frame').first();
  await frame.waitFor({ timeout: 60000 });
  const src = await frame.getAttribute('src');
  const inner = await (await frame.elementHandle()).contentFrame();
  await inner.waitForFunction(new Function(`return document.body && ${pattern}.test(document.body.innerText)`),
    null, { timeout: 120000, polling: 500 });
  return { src, inner };
}

/** The outputs of each cell of the notebook in front, from its model (what the kernel sent; the page may not
 * have drawn cells scrolled out of sight). */
async function cellOutputs() {
  return page.evaluate(`${current}.content.widgets.map(c => c.model.type === 'code' ? c.model.outputs.toJSON() : [])`);
}

/** The text of every output of the notebook in front: streams, text results, errors. */
async function outputs() {
  const cells = await cellOutputs();
  return cells.flat().map(o => o.text || (o.data && o.data['text/plain']) || (o.traceback || []).join('\n') || '')
    .join('\n');
}

let failure = null;
try {
  step(`open the quickstart through the prefix (${new URL(LAB_URL).pathname}) and run all its cells`);
  await openAndRunAll(QUICKSTART);
  result.pagePath = new URL(page.url()).pathname;

  step('the live view renders, shows the work, and follows the app until the last cell stops it');
  const view = page.locator('.lnb-app').first();
  await view.waitFor({ timeout: 120000 });
  await view.locator('.lnb-row[data-name="root.train"]').waitFor({ timeout: 60000 });
  const stage = () => view.locator('.lnb-header .lnb-stage').first().getAttribute('class', { timeout: 2000 }).catch(() => '');
  const end = Date.now() + 180000;
  for (;;) {
    const value = ((await stage()) || '').replace(/.*lnb-stage-/, '');
    if (value && result.appStages[result.appStages.length - 1] !== value) result.appStages.push(value);
    if (value === 'stopped' || value === 'failed') break;
    check(Date.now() < end, `the app did not end within 180 s (stages ${result.appStages})`);
    await new Promise(resolve => setTimeout(resolve, 200));
  }
  result.trainRow = await view.locator('.lnb-row[data-name="root.train"]').innerText();
  step('the form renders with the parameters');
  const form = page.locator('.lnb-form').first();
  await form.waitFor({ timeout: 30000 });
  result.formText = await form.innerText();
  result.quickstartOutputs = await outputs();
  await view.scrollIntoViewIfNeeded();
  await view.screenshot({ path: path.join(ARTIFACTS, 'binder-quickstart-view.png') });

  step('the flagship: Run All trains and deploys, then stops on purpose with the app left running');
  await openAndRunAll(FLAGSHIP);
  await page.waitForFunction(
    `${current}.content.widgets.some(c => c.model.type === 'code' && c.model.outputs.toJSON().some(o => o.ename === 'KeepPlaying'))`,
    null, { timeout: 300000, polling: 500 });
  result.pauseMessage = (await outputs()).split('\n').find(line => line.includes('Run All stops here')) || null;
  const flagship = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .lnb-app').first();
  await flagship.waitFor({ timeout: 60000 });
  const flagshipStage = async () => ((await flagship.locator('.lnb-header .lnb-stage').first().getAttribute('class')) || '').replace(/.*lnb-stage-/, '');
  result.flagshipStageAfterRunAll = await flagshipStage();
  const last = (await cellOutputs()).length - 1;
  // The kernel aborted the cells Run All had queued after the pause: the stop cell did not run.
  await page.waitForFunction(`${current}.sessionContext.session?.kernel?.status === 'idle'`, null, { timeout: 60000 });
  result.stopCellOutputsAfterRunAll = (await cellOutputs())[last].length;

  step("its TensorBoard tab shows the runs, through the proxy under the prefix");
  const frameOf = async (name, pattern) => {
    const { src, inner } = await openTab(flagship, name, pattern);
    return { src, title: await inner.title(), text: (await inner.evaluate(() => document.body.innerText)).slice(0, 2000) };
  };
  result.tensorboard = await frameOf('TensorBoard', '/trainer\\/version_1/');
  await flagship.screenshot({ path: path.join(ARTIFACTS, 'binder-flagship-tensorboard.png') });

  step("its Gradio tab shows the deployed model's page, through the proxy under the prefix");
  result.gradio = await frameOf('Gradio', "/What the model thinks/");
  await flagship.screenshot({ path: path.join(ARTIFACTS, 'binder-flagship-gradio.png') });

  step('running the last cell stops the app');
  await page.evaluate(`${current}.content.activeCellIndex = ${last}`);
  await page.evaluate(`window.jupyterapp.commands.execute('notebook:run-cell')`);
  const stopBy = Date.now() + 120000;
  while ((await flagshipStage()) !== 'stopped') {
    check(Date.now() < stopBy, 'the app did not stop within 120 s of running the last cell');
    await new Promise(resolve => setTimeout(resolve, 300));
  }
  await page.waitForFunction(`${current}.content.widgets[${last}].model.outputs.length > 0`, null, { timeout: 60000 });
  result.stopCellText = (await cellOutputs())[last].map(o => o.text || '').join('');

  step('existing scripts: the cells above "Train again" run; the Gradio page of serve.py predicts through the proxy');
  await open(EXISTING);
  const again = await page.evaluate(
    `${current}.content.widgets.findIndex(c => c.model.sharedModel.getSource().startsWith('## Train again'))`);
  check(again > 0, 'the notebook has a "Train again" section');
  await page.evaluate(`${current}.content.activeCellIndex = ${again}`);
  await runCommand('notebook:run-all-above');
  await waitForOutput('serve.py printed:', 300000);
  const scripts = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .lnb-app').first();
  const gradio = await openTab(scripts, 'Gradio', '/A model trained by train.py/');
  result.scriptsGradioSrc = gradio.src;
  await gradio.inner.locator('input[type=number]').first().fill('0.5');
  await gradio.inner.getByRole('button', { name: 'Submit' }).click();
  await gradio.inner.waitForFunction(
    () => [...document.querySelectorAll('input[type=number]')].slice(1).some(e => e.value && e.value !== '0'),
    null, { timeout: 60000, polling: 300 });
  result.scriptsPrediction = Number(await gradio.inner.locator('input[type=number]').nth(1).inputValue());
  await scripts.screenshot({ path: path.join(ARTIFACTS, 'binder-scripts-gradio.png') });
  const board = await openTab(scripts, 'TensorBoard', '/lr_0\\.03/');
  result.scriptsTensorBoardSrc = board.src;
  step('the rest of the notebook stops the app and its processes');
  await page.evaluate(`${current}.content.activeCellIndex = ${again}`);
  await runCommand('notebook:run-all-below');
  await waitForOutput('TensorBoard still answers: False', 300000);
  step('done');
} catch (error) {
  failure = error;
  result.error = String(error && error.stack || error);
  result.outputs = await outputs().catch(() => null);
  await page.screenshot({ path: path.join(ARTIFACTS, 'binder-failure.png') }).catch(() => {});
}
await browser.close();
result.ok = failure === null;
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(failure === null ? 0 : 1);
