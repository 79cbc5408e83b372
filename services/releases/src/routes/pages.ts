import { readFileSync } from 'node:fs';
import { audited, mergeFields, requestFields, type AuditLog } from '@keyway/audit';
import { releasesRoutes as r, type ReleaseFile, type ReleaseRights, type ReleaseVersion } from '@keyway/contracts';
import { AccessDenied, bindRoute, escapeHtml, htmlPage, OAuthError, outageAnswer, sendHtml } from '@keyway/kit';
import { type ErrorRequestHandler, type Request, type RequestHandler, type Response, Router } from 'express';
import { rightsOn, visibleVersions } from '../auth/access.ts';
import { type ReleaseAuthorizer, currentRights } from '../auth/authorizer.ts';
import { type Principal, requirePrincipal } from '../auth/principal.ts';
import type { Catalog } from '../catalog/catalog.ts';

/** A path segment of a link: names are checked at the edge already, encoded all the same. */
const segment = (text: string) => escapeHtml(encodeURIComponent(text));

const SCRIPT = '/assets/releases.js';
const STYLE = '/assets/releases.css';
const page = (title: string, body: string): string => htmlPage(title, body, 'Keyway releases', { styles: [STYLE], scripts: [SCRIPT] });

/** The site's own script and stylesheet only (nothing inline), its fetches to itself; never cached (authorization at every open). */
const sendPage = (res: Response, status: number, html: string, formAction: readonly string[]): void =>
  sendHtml(res, status, html, formAction, { script: ["'self'"], style: ["'self'"], connect: ["'self'"] });

/** A browser asks for a page; a program (or a client naming no Accept) gets JSON. */
const prefersHtml = (req: Request): boolean => req.accepts(['application/json', 'text/html']) === 'text/html';

const MiB = 1024 * 1024;
const sizeText = (bytes: number) => (bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`);

/** A file's state in words a person reads: what the scan found, and what it means for the file. */
function stateText(file: Pick<ReleaseFile, 'state' | 'reason'>): string {
  switch (file.state) {
    case 'clean':
      return 'clean (scanned)';
    case 'infected':
      // the reason names the signature the scanner found
      return `refused: ${file.reason ?? 'infected'}; it will never be downloadable`;
    case 'too_large':
      return 'refused: too large for the virus scanner; it will never be downloadable';
    case 'scan_pending':
      return 'waiting for the virus scanner';
    default:
      return 'being scanned';
  }
}

const fileRow = (file: ReleaseFile, link: string | undefined) => `<tr class="file file-${escapeHtml(file.state)}">
<td>${link ? `<a href="${link}" download>${escapeHtml(file.name)}</a>` : escapeHtml(file.name)}</td>
<td class="size" title="${file.size} bytes">${escapeHtml(sizeText(file.size))}</td>
<td><code class="sha">${escapeHtml(file.sha256)}</code></td>
<td class="state">${escapeHtml(stateText(file))}</td>
</tr>`;

const fileTable = (rows: string[]) =>
  rows.length > 0
    ? `<table>
<thead><tr><th>File</th><th>Size</th><th>SHA-256</th><th>State</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
    : '<p>No files yet.</p>';

export interface PageDeps {
  catalog: Catalog;
  authorizer: ReleaseAuthorizer;
  audit: AuditLog;
  /** PAS's origin when the site has the browser login (the sign-out form's redirect to / leads there) */
  pasOrigin?: string | undefined;
  /** loginFirst: a browser without a session signs in first */
  signIn: RequestHandler;
}

/**
 * The landing pages: `/` (what this person's tier gives them: products, versions, files with sizes,
 * SHA-256 and links; an upload form where they may upload; Publish for a publisher's draft whose
 * files are clean) and `/products/{product}` (one product). Plain HTML5, escaped, with the site's one
 * script (uploads through tus, publish) and stylesheet.
 */
export function pageRoutes(deps: PageDeps): Router {
  const { catalog, authorizer } = deps;
  const router = Router();
  const formAction = ["'self'", ...(deps.pasOrigin ? [deps.pasOrigin] : [])];

  /** A version with its files: links for the ones that download; Publish for a publisher's draft that is ready. */
  async function versionBlock(rights: ReleaseRights, version: ReleaseVersion): Promise<string> {
    const { product } = version;
    const files = await catalog.files({ kind: 'version', product, version: version.version });
    const rows = files.map((file) =>
      fileRow(file, file.state === 'clean' && version.state === 'published' ? `/products/${segment(product)}/${segment(version.version)}/${segment(file.name)}` : undefined),
    );
    const publishable = version.state === 'draft' && files.length > 0 && files.every((file) => file.state === 'clean') && rightsOn(rights, product).includes('publish');
    const publish = publishable
      ? `<p><button type="button" class="publish" data-publish="/v1/products/${segment(product)}/versions/${segment(version.version)}/publish">Publish ${escapeHtml(product)} ${escapeHtml(version.version)}</button> <span class="status" role="status"></span></p>`
      : '';
    return `<section class="version" id="v-${segment(product)}-${escapeHtml(version.version)}">
<h3>${escapeHtml(version.version)}${version.state === 'published' ? '' : ` <span class="badge">${escapeHtml(version.state)}</span>`}</h3>
${fileTable(rows)}
${publish}
</section>`;
  }

  /** The upload form the script drives: a publisher's goes into a version (a draft), an uploader's into the tenant's location. */
  const uploadForm = (
    principal: Principal,
    product: string,
    intoVersion: boolean,
  ) => `<form class="upload" data-upload data-product="${escapeHtml(product)}" data-tenant="${escapeHtml(principal.tenant)}">
<fieldset>
<legend>${intoVersion ? `Upload a file to a version of ${escapeHtml(product)}` : `Upload a file to your location for ${escapeHtml(product)}`}</legend>
${intoVersion ? '<label>Version <input name="version" required placeholder="1.4.0" pattern="[0-9A-Za-z.+\\-]{1,64}" autocomplete="off"></label>' : ''}
<label>File <input type="file" name="file" required></label>
<button type="submit">Upload</button>
<progress max="100" value="0" hidden></progress>
<p class="status" role="status" aria-live="polite"></p>
</fieldset>
</form>`;

  async function productSection(principal: Principal, rights: ReleaseRights, product: string, heading: 'h1' | 'h2'): Promise<string> {
    const held = rightsOn(rights, product);
    const versions = visibleVersions(rights, product, await catalog.versions(product));
    const blocks = await Promise.all(versions.map((version) => versionBlock(rights, version)));
    const parts = [
      `<${heading}>${heading === 'h2' ? `<a href="/products/${segment(product)}">${escapeHtml(product)}</a>` : escapeHtml(product)}</${heading}>`,
      `<p class="rights">Your rights: ${escapeHtml(held.join(', '))}</p>`,
      blocks.length > 0 ? blocks.join('\n') : held.includes('download') || held.includes('publish') ? '<p>No versions for you yet.</p>' : '',
    ];
    if (held.includes('publish')) parts.push(uploadForm(principal, product, true));
    if (held.includes('upload') && !held.includes('publish')) {
      const files = await catalog.files({ kind: 'location', tenant: principal.tenant, product });
      parts.push(`<section class="location"><h3>Your upload location</h3>\n${fileTable(files.map((file) => fileRow(file, undefined)))}\n</section>`, uploadForm(principal, product, false));
    }
    return `<section class="product">\n${parts.filter(Boolean).join('\n')}\n</section>`;
  }

  /** Who is signed in, and (with a session) the sign-out form. */
  const header = (req: Request, principal: Principal) => `<header>
<p class="site"><a href="/">Keyway releases</a></p>
<p class="who">Signed in as <code>${escapeHtml(principal.sub)}</code> of <code>${escapeHtml(principal.tenant)}</code></p>
${req.principalVia === 'session' ? '<form method="post" action="/logout"><button type="submit">Sign out</button></form>' : ''}
</header>`;

  bindRoute(router, r.landing, deps.signIn, async (req, res) => {
    const principal = requirePrincipal(req);
    const { rights } = await currentRights(authorizer, principal);
    const products = Object.keys(rights)
      .filter((product) => rightsOn(rights, product).length > 0)
      .sort();
    const sections = await Promise.all(products.map((product) => productSection(principal, rights, product, 'h2')));
    const body = `${header(req, principal)}\n<h1>Your releases</h1>\n${sections.length > 0 ? sections.join('\n') : '<p>Your contract gives you no products.</p>'}`;
    sendPage(res, 200, page('Your releases', body), formAction);
  });

  bindRoute(router, r.productPage, deps.signIn, async (req, res, input) => {
    const principal = requirePrincipal(req);
    const { product } = input.params();
    const fields = mergeFields(requestFields(req), { subject: principal.sub, tenant: principal.tenant, tokenId: principal.tokenId, detail: { product } });
    await audited({ audit: deps.audit }, { fields, refusal: false }, async (scope) => {
      const { rights, denied } = await currentRights(authorizer, principal);
      if (denied !== undefined || rightsOn(rights, product).length === 0)
        throw scope.refuse(new AccessDenied(`you hold no right on ${product}`, denied ?? 'right_missing'), 'authorization.denied', { reason: denied ?? 'right_missing' });
      const body = `${header(req, principal)}\n<p><a href="/">All your releases</a></p>\n${await productSection(principal, rights, product, 'h1')}`;
      sendPage(res, 200, page(product, body), formAction);
    });
  });
  return router;
}

/** The pages' script and stylesheet, read once: same-origin files, so CSP needs no inline source. */
export function assetRoutes(): Router {
  const files = {
    'releases.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('../assets/releases.js', import.meta.url), 'utf8') },
    'releases.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('../assets/releases.css', import.meta.url), 'utf8') },
  };
  const router = Router();
  bindRoute(router, r.asset, (_req, res, input) => {
    const file = files[input.params().name];
    // revalidated at each page load: a deploy's new script is picked up at once
    res.status(200).set({ 'Content-Type': file.type, 'Cache-Control': 'no-cache' }).send(file.body);
  });
  return router;
}

/**
 * A step of the landing pages and the file link: a browser without a session goes through PAS's
 * login and back to the link (requireSession); a bearer caller, or one that wants JSON, gets the
 * API's 401. Without the browser login (bearer only), it lets everything through.
 */
export function loginFirst(requireSession: RequestHandler | undefined): RequestHandler {
  return (req, res, next) => {
    if (!requireSession || req.principal || req.principalRefused || req.get('authorization') !== undefined || !prefersHtml(req)) return next();
    return requireSession(req, res, next);
  };
}

const TITLES: Record<number, string> = { 401: 'Sign-in needed', 403: 'Access denied', 404: 'Not found' };

/**
 * A refusal answers a browser's navigation (a click on a link) with a page saying why, in words, with
 * the error code; programs keep the JSON body (the kit's error handler).
 */
export const browserRefusals: ErrorRequestHandler = (err, req, res, next) => {
  const refusal = outageAnswer(err) ?? err;
  if (!(refusal instanceof OAuthError) || res.headersSent || (req.method !== 'GET' && req.method !== 'HEAD') || !prefersHtml(req)) return next(err);
  req.log?.info('request refused', { method: req.method, path: req.path, status: refusal.status, error: refusal.code, detail: refusal.detail });
  const title = TITLES[refusal.status] ?? (refusal.status >= 500 ? 'Try again later' : 'Request refused');
  const hint = refusal.status === 403 ? '<p>Your contract or your roles do not give you this (any more). If you think they should, ask your account manager.</p>' : '';
  res.set(refusal.headers);
  sendPage(
    res,
    refusal.status,
    page(
      title,
      `<h1>${escapeHtml(title)}</h1>\n<p class="refusal">${escapeHtml(refusal.description)}</p>\n${hint}<p><code>${escapeHtml(refusal.code)}</code></p>\n<p><a href="/">Your releases</a></p>`,
    ),
    [],
  );
};
