import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD, rawClient } from '../helpers.ts';
import { operatorOtp, provisionOperator } from '../operators/operator.ts';
import { launchChromium } from '../browser.ts';

/** What a page may take to show an answer: sign-in and adding a user run scrypt, slow on a loaded 2-core machine. */
const UI_WAIT = { timeout: 30_000 };
const SCREENSHOT = resolve(import.meta.dirname, '../../test-results/console.png');

let suite: Suite;
let browser: Browser;
let operator: { email: string };
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  operator = await provisionOperator(suite);
  browser = await launchChromium('the console test');
});
afterAll(async () => {
  await browser?.close();
  await suite?.close();
});

async function openConsole(): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  // Every confirmation (suspend, rotate the primary) is accepted, as an operator clicking OK would.
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(`${suite.urls.entitlement}/console/`);
  return page;
}

/** An element's text, led by the console's error line when one shows, so a failed wait says what the console said. */
async function textOf(page: Page, selector: string): Promise<string> {
  const error = page.locator('#error');
  const prefix = (await error.isVisible()) ? `[console error: ${await error.textContent()}] ` : '';
  return prefix + ((await page.locator(selector).textContent()) ?? '');
}

async function signIn(page: Page, email: string, password: string) {
  const form = page.locator('#sign-in-form');
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(password);
  await form.getByLabel('One-time code').fill(await operatorOtp(email));
  await form.getByRole('button', { name: 'Sign in' }).click();
}

describe('operator console (/console/ on the entitlement service, real Chromium)', () => {
  it('is served with a strict Content-Security-Policy and no framing; the sign-in endpoint takes JSON only', async () => {
    const response = await rawClient(suite, 'entitlement').get('/console/');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['content-security-policy']).toMatch(/^default-src 'self'; script-src 'self'; .*frame-ancestors 'none'/);
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.data).not.toMatch(/<script>|on(click|load|submit)=/);
    const script = await rawClient(suite, 'entitlement').get('/console/console.js');
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    const formPost = await rawClient(suite, 'entitlement').post('/console/session', `email=${encodeURIComponent(operator.email)}&password=x`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(formPost.status).toBe(415);
  });

  it('signs in, creates a tenant, adds a user, grants a feed, suspends and resumes; the admin API agrees', async () => {
    const page = await openConsole();
    await signIn(page, operator.email, PASSWORD);
    await expect.poll(() => textOf(page, '#who-email'), UI_WAIT).toBe(operator.email);
    // The tokens live in the page's memory only.
    // (A string expression: this file is compiled without the DOM library.)
    expect(await page.evaluate('localStorage.length + sessionStorage.length + document.cookie.length')).toBe(0);

    const tenant = `console-${randomUUID().slice(0, 8)}`;
    const create = page.locator('#create-tenant-form');
    await create.getByLabel('Id').fill(tenant);
    await create.getByLabel('Name').fill('Console Corp');
    await create.getByLabel('Feeds').fill('edr-events');
    await create.getByRole('button', { name: 'Create tenant' }).click();
    await expect.poll(() => textOf(page, '#tenant-id'), UI_WAIT).toBe(tenant);
    await expect.poll(() => textOf(page, '#tenant-table'), UI_WAIT).toContain(tenant);

    const email = `analyst@${tenant}.example`;
    const addUser = page.locator('#add-user-form');
    await addUser.getByLabel('Email').fill(email);
    await addUser.getByLabel('Password').fill(PASSWORD);
    await addUser.getByLabel('Role').selectOption('full-control');
    await addUser.getByRole('button', { name: 'Add user' }).click();
    await expect.poll(() => textOf(page, '#user-table tbody'), UI_WAIT).toContain(email);
    expect(await page.locator('#user-table tbody').textContent()).toContain('full-control');

    const grant = page.locator('#grant-feed-form');
    await grant.getByLabel('Feed').fill('dns-logs');
    await grant.getByRole('button', { name: 'Grant feed' }).click();
    await expect.poll(() => textOf(page, '#feed-list'), UI_WAIT).toContain('dns-logs');
    expect(await page.locator('#feed-list').textContent()).toContain('edr-events');

    // The API's error_description reaches the operator: PAC has no SAS keys for a tenant nobody has logged in to.
    await page.getByRole('button', { name: 'Rotate secondary key' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), UI_WAIT).toBe(`no SAS keys for tenant ${tenant}`);

    await page.getByRole('button', { name: 'Suspend tenant' }).click();
    await expect.poll(() => textOf(page, '#tenant-status'), UI_WAIT).toBe('suspended');
    expect((await suite.operator.getTenant(tenant)).status).toBe('suspended');
    await page.getByRole('button', { name: 'Resume tenant' }).click();
    await expect.poll(() => textOf(page, '#tenant-status'), UI_WAIT).toBe('active');

    // The tenant's release downloads, which the console reads from the releases service with the operator's token.
    await expect.poll(() => textOf(page, '#downloads'), UI_WAIT).toBe('No downloads for this tenant yet.');
    // The tenant's audit events, which the console reads from the audit service with the operator's token.
    await expect.poll(() => textOf(page, '#audit'), UI_WAIT).toMatch(/Action.*admin\.tenant_resumed/s);

    expect(await suite.operator.getTenant(tenant)).toMatchObject({ id: tenant, name: 'Console Corp', status: 'active', feeds: ['edr-events', 'dns-logs'] });
    const users = (await suite.operator.listUsers(tenant)).users;
    expect(users.map((u) => [u.email, u.roles])).toEqual([[email, ['full-control']]]);
    // The password the console set works: a feed login of the new user at PAS.
    expect((await suite.pas.password(email, PASSWORD)).scope.split(' ').sort()).toEqual(['feed:dns-logs', 'feed:edr-events']);

    await page.locator('#user-table').scrollIntoViewIfNeeded();
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`console screenshot: ${SCREENSHOT}`);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => page.locator('#sign-in').isVisible(), UI_WAIT).toBe(true);
    await page.context().close();
  }, 60_000);

  it('shows the error_description of a refused sign-in and stays signed out', async () => {
    const page = await openConsole();
    await signIn(page, operator.email, 'not the password at all');
    await expect.poll(() => page.getByRole('alert').textContent(), UI_WAIT).toBe('the username or password is incorrect');
    expect(await page.locator('#workspace').isHidden()).toBe(true);
    await page.context().close();
  }, 30_000);
});
