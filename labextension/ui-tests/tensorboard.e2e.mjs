// TensorBoard served by a TensorBoardWork, opened through the notebook server's proxy
// (jupyter-server-proxy, `{base_url}proxy/{port}/`) in a real headless Chromium: the page loads whole, with
// its fonts, and not one of its requests answers 404 (TensorBoard asks for its fonts at the server's root).
//
// Environment: LAB_URL (ends with /), LAB_TOKEN, BOARD_PORT (TensorBoard's port), ARTIFACTS, CHROMIUM.
// Prints one line per step and, at the end, `E2E-RESULT {json}`; exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { check, required, stepper } from './support.mjs';

const LAB_URL = required('LAB_URL');
const TOKEN = required('LAB_TOKEN');
const PORT = required('BOARD_PORT');
const ARTIFACTS = process.env.ARTIFACTS || path.resolve('test-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const result = { steps: [], responses: [], failed: [], fonts: [] };
const step = stepper(result);

fs.mkdirSync(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']
});
const page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
let failure = null;
try {
  step('log in to the notebook server (its cookie authorizes the proxy)');
  await page.goto(`${LAB_URL}api/status?token=${TOKEN}`);

  step('open TensorBoard through the proxy, recording every response');
  page.on('response', response => {
    const entry = { url: response.url(), status: response.status() };
    result.responses.push(entry);
    if (response.url().includes('font-roboto')) result.fonts.push(entry);
  });
  page.on('requestfailed', request => result.failed.push({ url: request.url(), error: request.failure()?.errorText }));
  const board = `${LAB_URL}proxy/${PORT}/`;
  const answer = await page.goto(board, { waitUntil: 'load', timeout: 120000 });
  check(answer && answer.status() === 200, `TensorBoard's page answered ${answer && answer.status()}`);
  await page.waitForFunction(() => document.querySelector('tb-webapp') !== null, null, { timeout: 60000 });
  await page.waitForFunction(() => document.fonts.status === 'loaded', null, { timeout: 60000 });
  await page.waitForLoadState('networkidle', { timeout: 60000 }).catch(() => {});

  step('no response is a 404; the fonts came from TensorBoard, through the proxy');
  const missing = result.responses.filter(r => r.status === 404);
  check(missing.length === 0, `${missing.length} responses were 404: ${missing.map(r => r.url).join(', ')}`);
  check(result.fonts.length > 0, 'the page asked for its Roboto fonts');
  const outside = result.fonts.filter(r => !r.url.startsWith(board) || r.status !== 200);
  check(outside.length === 0, `fonts not served through the proxy: ${JSON.stringify(outside)}`);
  const roboto = await page.evaluate(() => [...document.fonts].some(f => f.family.includes('Roboto') && f.status === 'loaded'));
  check(roboto, 'a Roboto font face is loaded');
  await page.screenshot({ path: path.join(ARTIFACTS, 'tensorboard-proxy.png') });
} catch (error) {
  failure = error;
  console.error(`E2E FAILED: ${error.stack || error}`);
} finally {
  await browser.close();
}
result.ok = failure === null;
result.error = failure ? String(failure.message || failure) : null;
result.responses = result.responses.filter(r => r.status >= 400).concat([{ count: result.responses.length }]);
console.log(`E2E-RESULT ${JSON.stringify(result)}`);
process.exit(failure ? 1 : 0);
