// The status page kept open in chromium while a hostile LAN host attacks (tests/lab/test_hostile_lan.sh).
// Usage: node hostile_page.mjs URL READY_FILE DONE_FILE
// Opens the page, writes READY_FILE once the device row is shown, waits (as long as the lab test
// runs) for DONE_FILE, then checks: the page never reloaded and threw nothing, the stream still
// carries news (the device `after1`, added after the attack, appears without a reload), the
// conflicting entry's hostile description is shown without its control characters.
import { existsSync, writeFileSync } from 'node:fs';
import { fail, launch } from './browser.mjs';

const [url, readyFile, doneFile] = process.argv.slice(2);

const browser = await launch();
try {
  const page = await browser.newPage();
  let loads = 0;
  const errors = [];
  page.on('load', () => { loads += 1; });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.locator('tr[data-device="ata1"]').waitFor({ timeout: 30000 });
  writeFileSync(readyFile, 'ready\n');
  // The lab test decides how long the attack lasts (a loaded machine is slower): wait for its word.
  while (!existsSync(doneFile)) await page.waitForTimeout(200);

  await page.locator('tr[data-device="after1"]').waitFor({ timeout: 30000 });
  await page.locator('tr[data-mapping="ata1 udp 5061"][data-state="failed"]').waitFor({ timeout: 30000 });
  const detail = await page.locator('tr[data-mapping="ata1 udp 5061"]').innerText();
  if (!detail.includes('192.168.50.66')) fail('the conflict row does not name the holder: ' + detail);
  const text = await page.locator('body').innerText();
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) fail('control characters reached the page');
  if (loads !== 1) fail(`the page loaded ${loads} times during the attack`);
  if (errors.length) fail('the page threw: ' + errors.join('; '));
  if (!process.exitCode) console.log('hostile page: stayed up, kept streaming, showed no control characters');
} finally {
  await browser.close();
}
