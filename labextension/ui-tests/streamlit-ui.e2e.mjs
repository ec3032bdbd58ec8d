// The Streamlit page of notebooks/streamlit_ui.ipynb in a real headless Chromium: it shows the training the
// notebook ran, then sets new parameters and presses Train as a reader would, and sees the progress and the
// new training's result.
//
// Expects PAGE_URL, CHROMIUM, ARTIFACTS. Prints one line per step and `E2E-RESULT {json}`; exits non-zero
// on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { check, required, stepper } from './support.mjs';

const PAGE_URL = required('PAGE_URL');
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const result = { steps: [], sawProgress: false };
const step = stepper(result);

async function waitForText(page, text, timeout = 120000) {
  const end = Date.now() + timeout;
  let last = '';
  for (;;) {
    last = await page.evaluate(() => document.body.innerText).catch(() => last);
    if (/training 2: epoch/.test(last)) {
      result.sawProgress = true;
    }
    if (last.includes(text)) {
      return last;
    }
    check(Date.now() < end, `timed out after ${timeout / 1000} s waiting for "${text}" (page text: ${JSON.stringify(last.slice(0, 800))})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Wait until the Streamlit page has shown no "Running…" status for a whole second (two of its redraw looks). */
async function settled(page, timeout = 60000) {
  const end = Date.now() + timeout;
  let quietSince = Date.now();
  for (;;) {
    const running = await page.evaluate(
      () => /Running/.test(document.querySelector('[data-testid="stStatusWidget"]')?.innerText || '')
    ).catch(() => true);
    if (running) {
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= 1000) {
      return;
    }
    check(Date.now() < end, `the page was still rerunning after ${timeout / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
let page;
try {
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  step(`opening ${PAGE_URL}`);
  await page.goto(PAGE_URL, { waitUntil: 'domcontentloaded', timeout: 60000 });
  step('the page shows the training the notebook ran');
  await waitForText(page, 'Training parameters');
  await waitForText(page, 'training 1: lr=0.05, epochs=4 → val_loss');

  // As a person does: type a value, let the page settle (its script reruns and the value reaches the flow; the
  // page no longer redraws for a change it made itself, only for the flow's), then the next. This test checks
  // the round trip; tests/frontend checks that the page's own writes count as seen.
  step('setting lr 0.1 and 3 epochs, pressing Train');
  const lr = page.getByLabel('learning rate');
  await lr.fill('0.1');
  await lr.press('Enter');
  await settled(page);
  const epochs = page.getByLabel('epochs');
  await epochs.fill('3');
  await epochs.press('Enter');
  await settled(page);
  await page.getByRole('button', { name: 'Train' }).click();

  step('the second training runs and its result shows');
  const text = await waitForText(page, 'training 2: lr=0.1, epochs=3 → val_loss');
  result.text = text;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'streamlit-ui.png') });
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String((error && error.stack) || error);
  if (page) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'streamlit-ui-failed.png') }).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(result.ok ? 0 : 1);
