// A lightnb app's Streamlit frontend in a real headless Chromium, through jupyter-server-proxy: the page shows
// the flow's live state, a button and a number input in the page set the flow's attributes, and the flow's
// next pass sees them (the page shows what the flow saw, redrawn on its own).
//
// Expects PAGE_URL (the page's proxied address, with the server's token), ARTIFACTS (screenshots), CHROMIUM.
// The flow (tests/frontend/test_streamlit_browser.py) has `lr`, `epochs`, `seen` (what its last pass saw,
// "lr=… epochs=…") and `note` (set from the kernel); the page writes "lr = …", "epochs = …", "flow saw: …",
// "note: …", a "double lr" button and an "epochs" number input.
// Prints one line per step and, at the end, `E2E-RESULT {json}`; exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { check, required, stepper } from './support.mjs';

const PAGE_URL = required('PAGE_URL');
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NOTE = process.env.NOTE || '';

const result = { steps: [], consoleErrors: [] };
const step = stepper(result);

/** Poll the page's text until it contains `text`; the last text is in the error when the deadline passes. */
async function waitForText(page, text, timeout = 60000) {
  const end = Date.now() + timeout;
  let last = '';
  for (;;) {
    last = await page.evaluate(() => document.body.innerText).catch(() => last);
    if (last.includes(text)) {
      return last;
    }
    check(Date.now() < end, `timed out after ${timeout / 1000} s waiting for "${text}" (page text: ${JSON.stringify(last.slice(0, 600))})`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
let page;
try {
  page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on('console', (message) => message.type() === 'error' && result.consoleErrors.push(message.text()));
  step(`opening ${PAGE_URL.replace(/token=[^&]+/, 'token=…')}`);
  const response = await page.goto(PAGE_URL, { waitUntil: 'domcontentloaded', timeout: 60000 });
  result.status = response.status();
  check(response.ok(), `the proxied page answered ${response.status()}`);

  step('the page shows the flow\'s state');
  await waitForText(page, 'lr = 0.01');
  await waitForText(page, 'flow saw: lr=0.01 epochs=2');
  if (NOTE) {
    step('a value set in the kernel reaches the page without touching it');
    await waitForText(page, `note: ${NOTE}`);
  }

  step('clicking "double lr" sets lr on the flow; its next pass sees it');
  await page.getByRole('button', { name: 'double lr' }).click();
  await waitForText(page, 'lr = 0.02');
  await waitForText(page, 'flow saw: lr=0.02 epochs=2');

  step('typing 7 epochs sets epochs on the flow');
  const epochs = page.getByLabel('epochs');
  await epochs.fill('7');
  await epochs.press('Enter');
  await waitForText(page, 'flow saw: lr=0.02 epochs=7');
  result.text = await page.evaluate(() => document.body.innerText);

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'streamlit-frontend.png') });
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String((error && error.stack) || error);
  if (page) {
    result.text = await page.evaluate(() => document.body.innerText).catch(() => '');
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'streamlit-frontend-failed.png') }).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(result.ok ? 0 : 1);
