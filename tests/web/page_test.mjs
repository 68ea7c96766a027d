// The status page in a real browser: Debian's chromium driven by playwright-core, against a
// natpilotd in the lab. Usage: node page_test.mjs URL NATPILOT SOCKET SCREENSHOT
// Checks: the device and its active mappings are shown; a device removed with the CLI disappears
// from the page without a reload (the stream says so); a screenshot is saved.
import { execFileSync } from 'node:child_process';
import { fail, launch } from './browser.mjs';

const [url, natpilot, socket, screenshot] = process.argv.slice(2);

const browser = await launch();
try {
  const page = await browser.newPage();
  let loads = 0;
  page.on('load', () => { loads += 1; });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url);

  // The device and its 14 active mappings arrive over the stream.
  await page.locator('tr[data-device="ata1"]').waitFor({ timeout: 10000 });
  await page.waitForFunction(
    () => document.querySelectorAll('tr[data-mapping^="ata1 "][data-state="active"]').length === 14,
    null, { timeout: 15000 });
  const row = await page.locator('tr[data-device="ata1"]').innerText();
  if (!row.includes('192.168.50.10') || !row.includes('14/14')) fail('device row says: ' + row);
  const external = await page.locator('#gw-external').innerText();
  if (external !== '203.0.113.1') fail('external address shown: ' + external);
  // A countdown runs on the page itself.
  const first = await page.locator('tr[data-mapping="ata1 udp 5060"] td[data-expires]').innerText();
  await page.waitForTimeout(2100);
  const later = await page.locator('tr[data-mapping="ata1 udp 5060"] td[data-expires]').innerText();
  if (first === later || !/s$/.test(later)) fail(`countdown did not move: ${first} -> ${later}`);
  await page.screenshot({ path: screenshot, fullPage: true });

  // Removed from the CLI: the row goes, with no reload and no polling.
  const before = requests.length;
  execFileSync(natpilot, ['--socket', socket, 'device', 'rm', 'ata1'], { stdio: 'inherit' });
  await page.locator('tr[data-device="ata1"]').waitFor({ state: 'detached', timeout: 10000 });
  await page.waitForFunction(() => !document.querySelector('tr[data-mapping^="ata1 "]'), null, { timeout: 10000 });
  await page.locator('#event-list li[data-kind="device.removed"]').waitFor({ timeout: 10000 });
  if (loads !== 1) fail(`the page loaded ${loads} times; updates must come without a reload`);
  const extra = requests.slice(before);
  if (extra.length) fail('the page made requests after the first load: ' + extra.join(', '));

  // Changes need the admin token: without it the page says so and nothing changes.
  await page.locator('details summary').click();
  await page.fill('#add-form input[name="name"]', 'phone9');
  await page.fill('#add-form input[name="address"]', '192.168.50.99');
  await page.click('#add-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById('action-result').textContent.startsWith('refused'));
  if (await page.locator('tr[data-device="phone9"]').count() !== 0) fail('a device was added without the token');
  console.log('page test: device, mappings, countdown, live removal and the token check all seen');
} finally {
  await browser.close();
}
