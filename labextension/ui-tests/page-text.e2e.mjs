// Open one page in a real headless Chromium and wait until it shows a text (looking into shadow roots, as
// Panel and Bokeh draw in them). Used by tests/frontend/ for frontends' pages, direct or through the proxy.
//
// Expects PAGE_URL, EXPECT (the text), CHROMIUM; with THEN (a second text) it prints `E2E-SHOWN` once EXPECT
// shows and waits, the page left open, until THEN shows too (the test changes the app meanwhile). Prints
// `E2E-RESULT {json}` ({ok, status, error}); exits non-zero when a text did not show within 60 s.

import { chromium } from 'playwright-core';
import { required } from './support.mjs';

const PAGE_URL = required('PAGE_URL');
const EXPECT = required('EXPECT');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const result = { ok: false };
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  const response = await page.goto(PAGE_URL, { waitUntil: 'domcontentloaded', timeout: 60000 });
  result.status = response.status();
  await page.getByText(EXPECT).first().waitFor({ state: 'visible', timeout: 60000 });
  if (process.env.THEN) {
    console.log('E2E-SHOWN');
    await page.getByText(process.env.THEN).first().waitFor({ state: 'visible', timeout: 60000 });
  }
  result.ok = true;
} catch (error) {
  result.error = String((error && error.message) || error);
} finally {
  await browser.close();
}
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(result.ok ? 0 : 1);
