import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (test/prerequisites.sh installs it): the browser tests drive it through playwright-core. */
const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium; a browser test that cannot see a browser must fail, never pass by skipping. */
export async function launchChromium(what: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run ${what}`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    headless: true,
  });
}
