// Screenshots of what the notebook's views and the side panel show, one per item of the "the notebook front
// always tells the truth" issue, for whichever lightnb checkout the JupyterLab at LAB_URL runs (so the same
// script shoots the code before and after the fixes; scripts/screenshots.py drives it).
//
// It checks nothing: it waits (up to a deadline) for what the fixed code shows, then shoots what is there, so
// the code before the fixes is shot as it was. Each shot is cropped to its element.
//
// Environment: LAB_URL (ends with /), LAB_TOKEN, NOTEBOOK and CELLS (the cells of test_panel_browser.py's
// views test: load, start, view, stopped_view, form, stopped_form, block), OUT (the folder), SUFFIX
// ("before" or "after"), CHROMIUM. Prints `SHOT <file>` per screenshot and `SHOTS-DONE`.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { required } from './support.mjs';

const LAB_URL = required('LAB_URL');
const TOKEN = required('LAB_TOKEN');
const NOTEBOOK = required('NOTEBOOK');
const CELLS = JSON.parse(required('CELLS'));
const OUT = required('OUT');
const SUFFIX = required('SUFFIX');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PANEL = '#lightnb-apps-panel';

fs.mkdirSync(OUT, { recursive: true });
const log = message => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

/** Poll `read()` until `accept(value)` or the deadline; returns whether it came (never throws). */
async function settle(read, accept, timeout) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    try {
      if (accept(await read())) {
        return true;
      }
    } catch {
      // not there yet
    }
    await new Promise(resolve => setTimeout(resolve, 200));
  }
  return false;
}

async function shot(locator, item, name) {
  const file = `13-${item}-${name}-${SUFFIX}.png`;
  try {
    await locator.scrollIntoViewIfNeeded({ timeout: 5000 });
    await locator.screenshot({ path: path.join(OUT, file), timeout: 10000 });
    console.log(`SHOT ${file}`);
  } catch (error) {
    console.log(`NO-SHOT ${file}: ${error.message.split('\n')[0]}`);
  }
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']
});
const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
const page = await context.newPage();
const NOTEBOOK_PANEL = `[...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === ${JSON.stringify(NOTEBOOK)})`;
const cell = name => page.locator('[data-e2e-notebook="shots"] .jp-Notebook .jp-Cell').nth(CELLS.indexOf(name));
const output = name => cell(name).locator('.jp-OutputArea-output');
const panel = page.locator(PANEL);
const appSection = name => panel.locator('.jp-LightnbApp', { has: page.locator('.jp-LightnbApp-name', { hasText: name }) });

try {
  log('open the notebook and the panel, run all cells');
  await page.goto(`${LAB_URL}lab/tree/${NOTEBOOK}?token=${TOKEN}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.jupyterapp !== undefined, null, { timeout: 90000 });
  await page.waitForFunction(`${NOTEBOOK_PANEL}?.sessionContext?.session?.kernel?.status === 'idle'`, null, {
    timeout: 90000,
    polling: 200
  });
  await page.evaluate(`${NOTEBOOK_PANEL}.node.dataset.e2eNotebook = 'shots'`);
  await page.evaluate(`window.jupyterapp.shell.activateById(${NOTEBOOK_PANEL}.id)`);
  const tab = page.locator(`.jp-SideBar.jp-mod-left [data-id="lightnb-apps-panel"]`);
  await tab.waitFor({ timeout: 30000 });
  if (!(await panel.isVisible())) {
    await tab.click();
  }
  await page.evaluate(`void window.jupyterapp.commands.execute('notebook:run-all-cells')`);

  log('1: the panel while "Run All" still runs (the last cell blocks)');
  const view = output('view').locator('.lnb-app');
  await view.waitFor({ timeout: 180000 });
  await settle(() => appSection('AnAppWithAVeryLongName').getAttribute('data-stage', { timeout: 500 }), s => s === 'running', 15000);
  await shot(panel, 1, 'panel-live');

  log("3: the work's coloured output in the view");
  const pageRow = view.locator('.lnb-row[data-name="root.page"]');
  await settle(() => pageRow.locator('.lnb-logs').evaluate(e => e.textContent), t => t.includes('Total FLOPs'), 30000);
  await pageRow.locator('.lnb-logs-box summary').click({ timeout: 5000 }).catch(() => {});
  await shot(pageRow.locator('.lnb-logs-box'), 3, 'appview-ansi-logs');

  log("7: the work's metrics in the view (a live chart)");
  await settle(() => pageRow.locator('.lnb-chart').getAttribute('data-points', { timeout: 500 }), n => Number(n) >= 30, 30000);
  await shot(pageRow, 'charts', 'appview-metrics-chart');

  log("4: a stopped app's page tab");
  const stoppedView = output('stopped_view').locator('.lnb-app');
  await stoppedView.locator('.lnb-tab', { hasText: 'page' }).click({ timeout: 10000 }).catch(() => {});
  await settle(() => stoppedView.locator('.lnb-page-stopped, iframe').count(), n => n > 0, 15000);
  await page.waitForTimeout(1500); // what a dead frame shows takes a moment
  await shot(stoppedView, 2, 'stopped-page-tab');

  log('5: a form given a bad value');
  const form = output('form').locator('.lnb-form');
  const lr = form.locator('input[type="text"], input').first();
  await lr.fill('abc', { timeout: 10000 }).catch(() => {});
  await form.locator('button[type="submit"], button').first().click({ timeout: 5000 }).catch(() => {});
  await settle(() => form.innerText(), t => /not a number/.test(t), 10000);
  await shot(form, 4, 'form-error');
  // A valid value ends the busy cell (the panel of the code before the fixes connects only then).
  await lr.fill('0.5', { timeout: 5000 }).catch(() => {});
  await form.locator('button[type="submit"], button').first().click({ timeout: 5000 }).catch(() => {});

  log('2: the panel: whole names, stopped apps and works, one entry per name');
  await settle(() => appSection('RepeatedApp').count(), n => n > 0, 120000);
  await settle(() => panel.locator('.jp-LightnbSparkline').count(), n => n > 0, 10000);
  await page.waitForTimeout(1000);
  await shot(panel, 5, 'panel-names-and-stopped');
  await shot(appSection('AnAppWithAVeryLongName').locator('.jp-LightnbComponent[data-name="root.page"]').first(), 'charts',
    'panel-metrics-sparkline');

  log('6: the view after a kernel restart');
  await page.evaluate(`${NOTEBOOK_PANEL}.sessionContext.session.kernel.restart()`);
  await settle(() => view.locator('.lnb-gone').isVisible(), v => v, 20000);
  await page.waitForTimeout(2000);
  await view.locator('.lnb-tab', { hasText: 'Components' }).click({ timeout: 5000 }).catch(() => {});
  await shot(view, 2, 'appview-kernel-gone');
} catch (error) {
  console.log(`SHOTS-FAILED ${error.stack || error}`);
  await page.screenshot({ path: path.join(OUT, `screenshots-failure-${SUFFIX}.png`) }).catch(() => {});
} finally {
  await browser.close();
}
console.log('SHOTS-DONE');
