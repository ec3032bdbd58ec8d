// What a Binder user sees, in a real headless Chromium driven by playwright-core: JupyterLab served under a
// JupyterHub-like prefix (as binder/start launches it), the quickstart notebook run from the browser with its
// live view and form rendered, and an app's page shown in a view tab through jupyter-server-proxy under that
// prefix.
//
// Expects a running JupyterLab (started by tests/binder/test_binder.py). Environment: LAB_URL (the server's
// URL, prefix included, ends with /), LAB_TOKEN, QUICKSTART and TABS (notebook paths in the server's root),
// ARTIFACTS (folder for screenshots), CHROMIUM (default /usr/bin/chromium).
// Prints one line per step and, at the end, `E2E-RESULT {json}`; exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const LAB_URL = required('LAB_URL');
const TOKEN = required('LAB_TOKEN');
const QUICKSTART = required('QUICKSTART');
const TABS = required('TABS');
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const result = { steps: [], consoleErrors: [], appStages: [] };

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name}`);
    process.exit(2);
  }
  return value;
}

function step(message) {
  const line = `[${new Date().toISOString().slice(11, 19)}] ${message}`;
  result.steps.push(line);
  console.log(line);
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

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

/** Open a notebook through the prefix, wait for its kernel, run all its cells. */
async function openAndRunAll(notebook) {
  await page.goto(`${LAB_URL}lab/tree/${notebook}?token=${TOKEN}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.jupyterapp !== undefined, null, { timeout: 90000 });
  await page.waitForFunction(
    `${current}?.context?.path === ${JSON.stringify(notebook)} && ${current}.sessionContext.session?.kernel?.status === 'idle'`,
    null, { timeout: 90000, polling: 200 });
  await page.evaluate(`window.jupyterapp.commands.execute('notebook:run-all-cells')`);
}

/** The text of every cell's output area of the notebook in front (errors included). */
async function outputs() {
  return page.evaluate(`[...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output')].map(e => e.innerText).join('\\n')`);
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

  step("open an app with TensorBoard; its view's tab shows TensorBoard through the proxy under the prefix");
  await openAndRunAll(TABS);
  const tabView = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .lnb-app').first();
  await tabView.waitFor({ timeout: 120000 });
  const tab = tabView.locator('button.lnb-tab', { hasText: 'TensorBoard' });
  await tab.waitFor({ timeout: 120000 });
  await tab.click();
  const frame = tabView.locator('iframe.lnb-frame');
  await frame.waitFor({ timeout: 120000 });
  result.frameSrc = await frame.getAttribute('src');
  // TensorBoard's page is an app of its own: its scripts and data load through the proxy, under the prefix.
  const inner = await (await frame.elementHandle()).contentFrame();
  await inner.waitForFunction(() => document.body && /No dashboards are active|Scalars/.test(document.body.innerText),
    null, { timeout: 90000, polling: 500 });
  result.frameTitle = await inner.title();
  result.frameText = (await inner.evaluate(() => document.body.innerText)).slice(0, 1000);
  await page.screenshot({ path: path.join(ARTIFACTS, 'binder-tab.png') });
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
