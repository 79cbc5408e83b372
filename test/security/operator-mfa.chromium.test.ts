import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM, form } from '@keyway/clients';
import { ACR_MULTI_FACTOR } from '@keyway/contracts';
import { secretOfOtpauthUri, totpAt, totpStep } from '@keyway/kit';
import { RELEASES_CLIENT, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { launchChromium } from '../browser.ts';
import { PASSWORD, provisionReleaseTenant, rawClient } from '../helpers.ts';
import { authorizationUrl, pkce } from '../lifecycle/authorization.ts';

// Issue 14: the login page's second step in a real browser (Debian's Chromium): after the right
// password of an account with a TOTP factor, the code page; a wrong code shows it again; the right
// one redirects to the client, and the code it carries redeems for tokens with acr mfa.

let suite: Suite;
let browser: Browser;
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL });
  browser = await launchChromium('the login page second step test');
});
afterAll(async () => {
  await browser?.close();
  await suite?.close();
});

describe('the login page asks for the second factor (Chromium)', () => {
  it('password, then a wrong code, then the right one: redirected with a code that carries amr mfa', async () => {
    const person = await provisionReleaseTenant(suite);
    const secret = secretOfOtpauthUri((await suite.pas.enrolTotp(person.email, PASSWORD)).otpauth_uri);
    const { verifier, challenge } = pkce();
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const callbacks: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(RELEASES_CLIENT.redirect_uri)) callbacks.push(request.url());
    });
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') blocked.push(message.text());
    });

    await page.goto(authorizationUrl(suite.urls.pas, challenge));
    await page.fill('#email', person.email);
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Two-step verification');
    expect(await page.getAttribute('#otp', 'autocomplete')).toBe('one-time-code');

    const now = totpStep(Date.now());
    const right = totpAt(secret, now);
    await page.fill('#otp', right === '000000' ? '111111' : '000000');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('[role=alert]').textContent()).toBe('The code is incorrect or has been used already.');
    expect(callbacks).toEqual([]);

    await page.fill('#otp', right);
    await page.click('button[type=submit]');
    await expect.poll(() => callbacks.length, { timeout: 10_000 }).toBe(1);
    const code = new URL(callbacks[0]!).searchParams.get('code')!;
    const tokens = await rawClient(suite, 'pas').post(
      '/oauth2/token',
      form({ grant_type: 'authorization_code', code, redirect_uri: RELEASES_CLIENT.redirect_uri, client_id: RELEASES_CLIENT.client_id, code_verifier: verifier }),
      { headers: FORM },
    );
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.data.access_token)).toMatchObject({ acr: ACR_MULTI_FACTOR, amr: ['pwd', 'otp', 'mfa'] });
    // nothing was refused on the way (a CSP violation is a console error); the wrong code answered 400
    expect(blocked.filter((text) => !/status of 400/.test(text))).toEqual([]);
    await context.close();
  });
});
