// End-to-end test of the "Lightning apps" panel in a real headless Chromium, driven by playwright-core.
//
// Expects a running JupyterLab (started by tests/labextension/test_panel_browser.py) serving a notebook
// whose cells load lightnb, start an app "PanelDemo" (works `root.train`, which reports progress and
// succeeds, and `root.serve.page`, which serves a page and reports progress until stopped) and print the
// app's stage. Environment: LAB_URL (ends with /), LAB_TOKEN, NOTEBOOK (path in the server's root),
// OTHER_NOTEBOOK (a notebook that does not load lightnb), ARTIFACTS (folder for screenshots), CHROMIUM
// (default /usr/bin/chromium).
// Prints one line per step and, at the end, `E2E-RESULT {json}`; exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { check, required, stepper, waitFor } from './support.mjs';

const LAB_URL = required('LAB_URL');
const TOKEN = required('LAB_TOKEN');
const NOTEBOOK = required('NOTEBOOK');
const OTHER_NOTEBOOK = required('OTHER_NOTEBOOK');
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const APP_NAME = 'PanelDemo';
const TRAIN = 'root.train';
const PAGE = 'root.serve.page';
const PANEL = '#lightnb-apps-panel';

const result = {
  steps: [],
  trainStages: [],
  workStages: [],
  appStages: [],
  progress: [],
  consoleErrors: [],
  warnings: []
};

const step = stepper(result);

fs.mkdirSync(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run'
  ]
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
page.on('console', msg => {
  if (msg.type() === 'error') {
    result.consoleErrors.push(msg.text());
  } else if (msg.type() === 'warning' && msg.text().includes('lightnb')) {
    result.warnings.push(msg.text());
  }
});
page.on('pageerror', error => result.consoleErrors.push(`page error: ${error.message}`));

const panel = page.locator(PANEL);
const hint = panel.locator('.jp-LightnbPanel-notLoaded');
const appSection = panel.locator('.jp-LightnbApp', { hasText: APP_NAME });
const component = name => appSection.locator(`.jp-LightnbComponent[data-name="${name}"]`);
const trainItem = component(TRAIN);
const pageItem = component(PAGE);
const attr = (locator, name) => locator.getAttribute(name, { timeout: 2000 }).catch(() => null);
const stageOf = locator => () => attr(locator, 'data-stage');

/** The notebook panel of NOTEBOOK (found among the main-area widgets: another tab may be in front). */
const NOTEBOOK_PANEL = `[...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === ${JSON.stringify(
  NOTEBOOK
)})`;

async function waitForLab() {
  await page.waitForFunction(() => window.jupyterapp !== undefined, null, { timeout: 90000 });
  await page.waitForFunction(
    `${NOTEBOOK_PANEL}?.sessionContext?.session?.kernel?.status === 'idle'`,
    null,
    { timeout: 90000, polling: 200 }
  );
}

async function openPanel() {
  // The sidebar tab of a widget carries the widget's id as data-id.
  const tab = page.locator(`.jp-SideBar.jp-mod-left [data-id="lightnb-apps-panel"]`);
  await tab.waitFor({ timeout: 30000 });
  if (!(await panel.isVisible())) {
    await tab.click();
  }
  await panel.waitFor({ state: 'visible', timeout: 10000 });
}

async function activateNotebook() {
  await page.evaluate(`window.jupyterapp.shell.activateById(${NOTEBOOK_PANEL}.id)`);
}

async function notebookFacts() {
  return page.evaluate(`(() => {
    const panel = ${NOTEBOOK_PANEL};
    return {
      count: panel.content.widgets.length,
      active: panel.content.activeCellIndex,
      sources: panel.content.widgets.map(c => c.model.sharedModel.getSource())
    };
  })()`);
}

async function setActiveCell(index) {
  await page.evaluate(`${NOTEBOOK_PANEL}.content.activeCellIndex = ${index}`);
}

async function runCommand(id, args = {}) {
  await page.evaluate(`window.jupyterapp.commands.execute(${JSON.stringify(id)}, ${JSON.stringify(args)})`);
}

let failure = null;
try {
  step('open the notebook in JupyterLab');
  await page.goto(`${LAB_URL}lab/tree/${NOTEBOOK}?token=${TOKEN}`, { waitUntil: 'domcontentloaded' });
  await waitForLab();
  await openPanel();

  step('before %load_ext lightnb the panel shows a hint, not an error');
  await hint.waitFor({ timeout: 30000 });
  check((await hint.innerText()).includes('%load_ext lightnb'), 'the hint names %load_ext lightnb');

  step('run the cells: load lightnb, start the app');
  await runCommand('notebook:run-all-cells');

  step('the panel shows the app, its flows and works, and their stages as they change');
  await appSection.waitFor({ timeout: 60000 });
  await waitFor(stageOf(appSection), s => s === 'running', 'the app to be running', { history: result.appStages });
  await waitFor(stageOf(pageItem), s => s === 'running', `${PAGE} to be running`, {
    timeout: 120000,
    history: result.workStages
  });
  await waitFor(stageOf(trainItem), s => s === 'succeeded', `${TRAIN} to succeed`, {
    timeout: 60000,
    history: result.trainStages
  });
  check(
    (await appSection.locator('.jp-LightnbComponent[data-name="root.serve"] [data-name="root.serve.page"]').count()) ===
      1,
    'the page work is drawn inside its flow root.serve'
  );
  check(Number(await attr(trainItem, 'data-progress')) === 1, `${TRAIN} ends at 100%`);

  step('the progress bar moves');
  const progress = async () => Number((await attr(pageItem, 'data-progress')) ?? NaN);
  const first = await waitFor(progress, p => p > 0, 'a first progress value');
  const later = await waitFor(progress, p => p > first, 'the progress to move', { timeout: 30000 });
  const shown = Number(await pageItem.locator('.jp-LightnbProgress').getAttribute('aria-valuenow'));
  result.progress = [first, later, shown];
  check(shown >= Math.floor(first * 100), `the bar shows ${shown}%, behind the work's ${first}`);

  step("the work's URL is listed and its page opens in a tab, through the notebook server's proxy");
  const link = pageItem.locator('.jp-LightnbComponent-url');
  await link.waitFor({ timeout: 30000 });
  const url = await link.innerText();
  const port = Number(new URL(url).port);
  check(url.startsWith('http://127.0.0.1:') && port > 0, `the work's url is a loopback address (${url})`);
  await pageItem.locator('button[data-action="open-page"]').first().click();
  const frame = page.locator('.jp-LightnbPage iframe');
  await frame.waitFor({ timeout: 30000 });
  const src = await frame.getAttribute('src');
  check(new URL(src, LAB_URL).pathname === new URL(`proxy/${port}/`, LAB_URL).pathname, `iframe src ${src}`);
  const pageText = await page.frameLocator('.jp-LightnbPage iframe').locator('body').innerText({ timeout: 30000 });
  check(pageText.includes('lightnb e2e page'), `the tab shows the work's page, got: ${pageText}`);
  result.page = { url, src };

  step('screenshots of the panel');
  await panel.screenshot({ path: path.join(ARTIFACTS, 'panel.png') });
  await page.screenshot({ path: path.join(ARTIFACTS, 'lab.png') });

  step("'show in notebook' displays the app's view below the active cell, then brings it back into sight");
  const appId = await appSection.getAttribute('data-app-id');
  await activateNotebook();
  const before = await notebookFacts();
  await appSection.locator('button[data-action="reveal"]').click();
  const viewSource = `%lightnb view ${appId}`;
  const after = await waitFor(notebookFacts, f => f.sources.includes(viewSource), 'a view cell', { timeout: 15000 });
  const viewCell = after.sources.indexOf(viewSource);
  check(after.count === before.count + 1, `one cell was added (${before.count} → ${after.count})`);
  check(viewCell === before.active + 1, `the view cell comes below the active cell ${before.active}: ${viewCell}`);
  // The cell shows the app's live view (a widget naming the app), not an error.
  const viewOutput = page.locator('.jp-Notebook .jp-Cell').nth(viewCell).locator('.jp-OutputArea-output');
  await viewOutput.locator('.lm-Widget', { hasText: APP_NAME }).first().waitFor({ timeout: 60000 });
  const viewText = (await viewOutput.allInnerTexts()).join('\n');
  check(!/Error|Traceback/.test(viewText), `the view cell shows an error: ${viewText.slice(0, 500)}`);
  await setActiveCell(0);
  await appSection.locator('button[data-action="reveal"]').click();
  const again = await waitFor(notebookFacts, f => f.active === viewCell, 'the view cell to be active again', {
    timeout: 15000
  });
  check(again.count === after.count, 'showing the app again reuses its view instead of adding a cell');

  step('the panel follows the notebook in front: another kernel without lightnb, then back');
  await runCommand('docmanager:open', { path: OTHER_NOTEBOOK });
  await page.waitForFunction(
    `window.jupyterapp.shell.currentWidget?.context?.path === ${JSON.stringify(OTHER_NOTEBOOK)} &&
     window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'`,
    null,
    { timeout: 90000, polling: 200 }
  );
  await hint.waitFor({ timeout: 30000 });
  check((await panel.locator('.jp-LightnbPanel-notebook').innerText()).includes(OTHER_NOTEBOOK), 'names the notebook');
  await activateNotebook();
  await appSection.waitFor({ timeout: 30000 });
  await waitFor(stageOf(pageItem), s => s === 'running', `${PAGE} shown again`, { history: result.workStages });

  step('%lightnb view --panel brings the panel to the front');
  await runCommand('filebrowser:activate');
  await panel.waitFor({ state: 'hidden', timeout: 10000 });
  const panelCell = (await notebookFacts()).sources.findIndex(s => s.startsWith('%lightnb view --panel'));
  await setActiveCell(panelCell);
  await runCommand('notebook:run-cell');
  await panel.waitFor({ state: 'visible', timeout: 30000 });

  step('after a page reload the panel finds the running app again');
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitForLab();
  await openPanel();
  await waitFor(stageOf(pageItem), s => s === 'running', `${PAGE} running after the reload`, {
    history: result.workStages
  });

  step('"Stop a Lightning Work" from the command palette stops the work, and its page server with it');
  // (The modal palette closes when it loses the focus: open it only once the page has settled.)
  await page.waitForTimeout(500);
  await runCommand('apputils:activate-command-palette');
  await page.waitForFunction(() => document.activeElement?.classList.contains('lm-CommandPalette-input'), null, {
    timeout: 10000
  });
  await page.keyboard.type('Stop a Lightning Work');
  const item = page.locator('.jp-ModalCommandPalette .lm-CommandPalette-item', { hasText: 'Stop a Lightning Work' });
  await item.first().waitFor({ timeout: 10000 });
  await item.first().click();
  const dialog = page.locator('.jp-Dialog');
  await dialog.waitFor({ timeout: 10000 });
  const choices = await dialog.locator('option').allInnerTexts();
  check(choices.length === 1 && choices[0].includes(PAGE), `the dialog offers the running work: ${choices}`);
  await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
  await waitFor(stageOf(pageItem), s => s === 'stopped', `${PAGE} to be stopped`, {
    timeout: 60000,
    history: result.workStages
  });
  const status = await waitFor(
    async () => (await page.request.get(`${LAB_URL}proxy/${port}/?token=${TOKEN}`)).status(),
    s => s >= 500,
    'the page to be gone',
    { timeout: 30000, interval: 500 }
  );
  result.pageStatusAfterStop = status;
  check((await stageOf(appSection)()) === 'running', 'the app goes on without the stopped work');

  step('"stop" in the panel stops the app in the kernel');
  await appSection.locator('button[data-action="stop-app"]').click();
  await waitFor(stageOf(appSection), s => s === 'stopped', 'the app to be stopped', {
    timeout: 60000,
    history: result.appStages
  });
  check((await appSection.locator('button[data-action="stop-app"]').count()) === 0, 'a stopped app offers no stop');
  const reportCell = (await notebookFacts()).sources.findIndex(s => s.startsWith('print("APP STAGE:"'));
  // After the reload the other notebook may be the current one: run the cell in this one.
  await activateNotebook();
  await setActiveCell(reportCell);
  await runCommand('notebook:run-cell');
  // Found by its text, not its index: JupyterLab renders only the cells in sight, so indices shift.
  const output = page.locator(".jp-Notebook .jp-Cell", { hasText: 'print("APP STAGE:"' })
    .locator('.jp-OutputArea-output');
  await waitFor(
    async () => (await output.allInnerTexts()).join('\n'),
    text => text.includes('APP STAGE: stopped'),
    'the kernel to report the app stopped',
    { timeout: 30000 }
  );

  step('a kernel restart empties the panel and shows the hint again');
  await page.evaluate(`${NOTEBOOK_PANEL}.sessionContext.session.kernel.restart()`);
  await hint.waitFor({ timeout: 60000 });
  check((await panel.locator('.jp-LightnbApp').count()) === 0, 'no app is listed after the restart');
  await panel.screenshot({ path: path.join(ARTIFACTS, 'panel-after-restart.png') });

  const lightnbErrors = result.consoleErrors.filter(e => /lightnb/i.test(e));
  check(lightnbErrors.length === 0, `no console error from the panel, got: ${lightnbErrors.join(' | ')}`);
} catch (error) {
  failure = error;
  console.error(`E2E FAILED: ${error.stack || error}`);
  // What the user was told (notifications) helps to see why.
  result.toasts = await page.locator('.Toastify__toast').allInnerTexts().catch(() => []);
  console.error(`notifications: ${JSON.stringify(result.toasts)}`);
  // And what the notebook's cells reported (a kernel side that is missing or failing shows up here).
  result.cellErrors = await page
    .locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    .allInnerTexts()
    .catch(() => []);
  console.error(`cell errors: ${JSON.stringify(result.cellErrors).slice(0, 3000)}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png') }).catch(() => {});
} finally {
  await browser.close();
}
result.ok = failure === null;
result.error = failure ? String(failure.message || failure) : null;
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(failure ? 1 : 0);
