import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, provisionReleaseTenant } from '../helpers.ts';
import { launchChromium } from '../browser.ts';
import { authorizationUrl, pkce } from './authorization.ts';

// Issue 13: PAS's login page in a real browser (Debian's Chromium): its Content-Security-Policy lets the
// form post and the redirect that answers it reach the client (CSP form-action governs both), the
// __Host- cookie comes back with the form, and nothing on the page is blocked.

let suite: Suite;
let browser: Browser;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
  browser = await launchChromium('the login page test');
});
afterAll(async () => {
  await browser?.close();
  await suite?.close();
});

describe('the login page in Chromium', () => {
  it('signs a person in: wrong password first, then the redirect to the client with code, state and iss', async () => {
    // a downloader: the releases site's login (scope releases) accepts release-only roles
    const { email } = await provisionReleaseTenant(suite);
    const { challenge } = pkce();
    const url = new URL(authorizationUrl(suite.urls.pas, challenge, { state: 'chromium-state' }));

    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    // The browser's request to the client's callback (nothing listens there: the releases site is not
    // built yet). A redirect the page's policy refused would never be requested. Playwright does not
    // route the redirected request, so it is observed, not answered.
    const callbacks: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(RELEASES_CLIENT.redirect_uri)) callbacks.push(request.url());
    });
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') blocked.push(message.text());
    });

    await page.goto(url.href);
    await page.fill('#email', email);
    await page.fill('#password', 'not the password at all');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('[role=alert]').textContent()).toBe('The email or password is incorrect.');
    expect(await page.inputValue('#email')).toBe(email);

    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await expect.poll(() => callbacks.length, { timeout: 10_000 }).toBe(1);
    const callback = new URL(callbacks[0]!);
    expect(callback.origin + callback.pathname).toBe(RELEASES_CLIENT.redirect_uri);
    expect({ state: callback.searchParams.get('state'), iss: callback.searchParams.get('iss') }).toEqual({ state: 'chromium-state', iss: suite.urls.pas });
    expect(callback.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // nothing was refused on the way (a CSP violation is a console error); the wrong password answered 400
    expect(blocked.filter((text) => !/status of 400/.test(text))).toEqual([]);
    await context.close();
  });
});
