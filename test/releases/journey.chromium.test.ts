import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { EICAR, startClamdServer, type ClamdServer } from '@keyway/testkit/servers';
import { launchChromium } from '../browser.ts';
import { PASSWORD, provisionReleaseTenant } from '../helpers.ts';

// Issue 13, "Tests and figures": the distribution center as people use it, in Debian's Chromium
// against the real suite (PAS's login, the entitlement service's tiers, the releases service with a
// real clamd and its EICAR signature). A publisher uploads and publishes from the landing page, and
// sees EICAR refused; a customer opens a bookmarked file link without a session, signs in at PAS,
// lands back on the link and downloads; a partner uploads to their location; when the customer's
// tier loses the product, the next click is a 403 page.

const PRODUCT = 'edr-agent';
const VERSION = '1.4.0';
const FILE = 'agent-setup.bin';
const CONTENT = randomBytes(300 * 1024 + 17);
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');
const SCREENSHOT = 'test-results/releases.png';

let suite: Suite;
let clamd: ClamdServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** console errors (a CSP violation is one), per page, besides the refusals a test asks for */
const consoleErrors: string[] = [];

beforeAll(async () => {
  clamd = await startClamdServer();
  suite = await startSuite({ redisUrl: REDIS_URL, releases: { clamdAddress: clamd.address, clamdStreamMaxLength: '64M' } });
  browser = await launchChromium('the releases journey');
}, 120_000);
afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await suite?.close();
  await clamd?.stop();
});

/** A person's own browser profile (cookies, downloads). */
async function newPage(): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  return page;
}

const site = (path: string) => `${suite.urls.releases}${path}`;

/** On PAS's login page (where a navigation without a session lands): the person signs in. */
async function signIn(page: Page, email: string): Promise<void> {
  await page.waitForURL((url) => url.href.startsWith(`${suite.urls.pas}/`));
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
}

/** Uploads a file through the landing page's form for `product` and answers what the page says once the scan is done. */
async function uploadFromPage(page: Page, product: string, file: { name: string; buffer: Buffer }, version?: string): Promise<string> {
  const form = page.locator(`form[data-upload][data-product="${product}"]`);
  if (version !== undefined) await form.locator('input[name=version]').fill(version);
  await form.locator('input[type=file]').setInputFiles({ name: file.name, mimeType: 'application/octet-stream', buffer: file.buffer });
  await form.locator('button[type=submit]').click();
  await expect.poll(() => form.getAttribute('data-done'), { timeout: 30_000 }).not.toBeNull();
  return (await form.locator('.status').textContent()) ?? '';
}

let publisherPage: Page;
let customer: { page: Page; tier: string };

describe('the releases site in Chromium (issue 13)', { timeout: 90_000 }, () => {
  it('a publisher signs in, uploads a file to a version, sees it clean and publishes it', async () => {
    const publisher = await provisionReleaseTenant(suite, { roles: ['publisher'], products: [PRODUCT] });
    const page = await newPage();
    publisherPage = page;
    await page.goto(site('/'));
    await signIn(page, publisher.email);
    await page.waitForURL(site('/'));
    expect(await page.locator('h1').textContent()).toBe('Your releases');

    const said = await uploadFromPage(page, PRODUCT, { name: FILE, buffer: CONTENT }, VERSION);
    expect(said).toBe(`Clean: ${FILE} passed the virus scan.`);
    await page.reload();
    const row = page.locator('tr', { hasText: FILE });
    expect(await row.locator('code.sha').textContent()).toBe(SHA256);
    expect(await row.locator('.state').textContent()).toBe('clean (scanned)');
    // a draft is not downloadable yet: no link until it is published
    expect(await page.locator(`a[href="/products/${PRODUCT}/${VERSION}/${FILE}"]`).count()).toBe(0);

    await page.click(`button[data-publish]:has-text("Publish ${PRODUCT} ${VERSION}")`);
    await expect.poll(() => page.locator(`a[href="/products/${PRODUCT}/${VERSION}/${FILE}"]`).count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator('button[data-publish]').count()).toBe(0);
  });

  it('a publisher uploads EICAR and sees it refused with the signature; it is never downloadable', async () => {
    const page = publisherPage;
    const said = await uploadFromPage(page, PRODUCT, { name: 'eicar.com', buffer: EICAR }, '1.5.0');
    expect(said).toBe(`Refused: eicar.com is infected: ${clamd.eicarSignature} (quarantined). It will never be downloadable.`);
    await page.reload();
    const row = page.locator('tr', { hasText: 'eicar.com' });
    expect(await row.locator('.state').textContent()).toBe(`refused: infected: ${clamd.eicarSignature} (quarantined); it will never be downloadable`);
    expect(await row.locator('a').count()).toBe(0);
    // no Publish for a version with a refused file, and the API refuses it too (409); its link is refused (403)
    expect(await page.locator('button[data-publish]').count()).toBe(0);
    const publish = await page.request.post(site(`/v1/products/${PRODUCT}/versions/1.5.0/publish`), { headers: { origin: suite.urls.releases } });
    expect({ status: publish.status(), error: (await publish.json()).error }).toEqual({ status: 409, error: 'conflict' });
    const opened = await page.request.get(site(`/products/${PRODUCT}/1.5.0/eicar.com`));
    expect(opened.status()).toBe(403);
    // the session does not act for another origin (Fetch Metadata / Origin)
    const forged = await page.request.post(site(`/v1/products/${PRODUCT}/versions/1.5.0/publish`), { headers: { origin: 'https://elsewhere.example' } });
    expect(forged.status()).toBe(403);
  });

  it('a customer opens a bookmarked file link without a session: PAS login, back on the link, the download’s SHA-256 matches', async () => {
    const person = await provisionReleaseTenant(suite, { tierProducts: [{ product: PRODUCT, versions: '>=1.0.0' }, { product: 'dns-probe' }] });
    const page = await newPage();
    customer = { page, tier: person.tier };
    const link = site(`/products/${PRODUCT}/${VERSION}/${FILE}`);
    // the bookmark: a navigation that ends in a download rather than a page
    await page.goto(link).catch(() => undefined);
    const downloading = page.waitForEvent('download');
    await signIn(page, person.email);
    const download = await downloading;
    expect(download.url()).toBe(link);
    expect(download.suggestedFilename()).toBe(FILE);
    const saved = await download.path();
    expect(createHash('sha256').update(readFileSync(saved)).digest('hex')).toBe(SHA256);

    // the landing page lists the file with its size, SHA-256 and link; nothing to upload for a downloader
    await page.goto(site('/'));
    const row = page.locator('tr', { hasText: FILE });
    expect(await row.locator('code.sha').textContent()).toBe(SHA256);
    expect(await row.locator('td.size').getAttribute('title')).toBe(`${CONTENT.length} bytes`);
    expect(await page.locator('form[data-upload]').count()).toBe(0);
    expect(await page.locator('tr', { hasText: 'eicar.com' }).count()).toBe(0);
  });

  it('a partner uploads a file to their location from the page and sees it clean', async () => {
    const partner = await provisionReleaseTenant(suite, { roles: ['uploader'], products: ['sensor'] });
    const page = await newPage();
    await page.goto(site('/'));
    await signIn(page, partner.email);
    await page.waitForURL(site('/'));
    const said = await uploadFromPage(page, 'sensor', { name: 'partner-plugin.zip', buffer: randomBytes(40_000) });
    expect(said).toBe('Clean: partner-plugin.zip passed the virus scan.');
    await page.reload();
    expect(await page.locator('.location tr', { hasText: 'partner-plugin.zip' }).locator('.state').textContent()).toBe('clean (scanned)');
  });

  it('shows the publisher’s landing page (screenshot) with nothing blocked by its Content-Security-Policy', async () => {
    await publisherPage.goto(site('/'));
    mkdirSync('test-results', { recursive: true });
    await publisherPage.screenshot({ path: SCREENSHOT, fullPage: true });
    // the site's script and stylesheet load under script-src/style-src 'self'; only asked-for refusals are logged
    expect(consoleErrors.filter((text) => !/status of (403|409)/.test(text))).toEqual([]);
    expect(await publisherPage.evaluate('getComputedStyle(document.querySelector("section.product")).borderTopStyle')).toBe('solid');
  });

  it('after the customer’s tier loses the product (admin API), the next click on the link is a 403 page', async () => {
    const { page, tier } = customer;
    await suite.operator.putTier(tier, { name: 'Without the agent', feeds: [], products: [{ product: 'dns-probe' }] });
    const answer = await page.goto(site(`/products/${PRODUCT}/${VERSION}/${FILE}`));
    expect(answer?.status()).toBe(403);
    expect(await page.locator('h1').textContent()).toBe('Access denied');
    expect(await page.locator('.refusal').textContent()).toContain(PRODUCT);
    expect(await page.locator('code').last().textContent()).toBe('access_denied');

    // signing out ends the session: the next page goes through the login again
    await page.goto(site('/'));
    await page.click('header button[type=submit]');
    await page.waitForURL((url) => url.href.startsWith(`${suite.urls.pas}/`));
    expect(await page.locator('#email').count()).toBe(1);
  });
});
