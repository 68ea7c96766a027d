// What the page tests share: Debian's chromium, headless, through playwright-core, and how a
// check fails (the message on stderr, the exit code set, the test goes on to show what else).
import { chromium } from 'playwright-core';

export const fail = (msg) => { console.error('FAIL: ' + msg); process.exitCode = 1; };

export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
