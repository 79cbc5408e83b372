import { audited, mergeFields, requestFields, type AuditLog } from '@keyway/audit';
import { releasesRoutes as r, type ReleaseVersion } from '@keyway/contracts';
import { AccessDenied, bindRoute, escapeHtml, htmlPage, sendHtml } from '@keyway/kit';
import { type Response, Router } from 'express';
import { rightsOn, visibleVersions } from '../auth/access.ts';
import { type ReleaseAuthorizer, currentRights } from '../auth/authorizer.ts';
import { requirePrincipal } from '../auth/principal.ts';
import type { Catalog } from '../catalog/catalog.ts';

/** A path segment of a link: names are checked at the edge already, encoded all the same. */
const segment = (text: string) => escapeHtml(encodeURIComponent(text));

const page = (title: string, body: string): string => htmlPage(title, body, 'Keyway releases');

/** As PAS's login page: nothing may load, no framing, no forms; never cached (authorization at every open). */
const sendPage = (res: Response, html: string): void => sendHtml(res, 200, html);

const versionLine = (version: ReleaseVersion) =>
  `<li><a href="/products/${segment(version.product)}#v-${escapeHtml(version.version)}">${escapeHtml(version.version)}</a>${version.state === 'published' ? '' : ` (${escapeHtml(version.state)})`}</li>`;

/**
 * The landing pages: `/` (what this person's tier gives them) and `/products/{product}` (the
 * versions they may see, each with its files' persistent links). Plain HTML5, escaped; without a
 * principal they answer 401 JSON for now (the browser session will redirect to the login).
 */
export function pageRoutes(deps: { catalog: Catalog; authorizer: ReleaseAuthorizer; audit: AuditLog }): Router {
  const { catalog, authorizer } = deps;
  const router = Router();

  bindRoute(router, r.landing, async (req, res) => {
    const principal = requirePrincipal(req);
    const { rights } = await currentRights(authorizer, principal);
    const products = Object.keys(rights)
      .filter((product) => rightsOn(rights, product).length > 0)
      .sort();
    const sections = await Promise.all(
      products.map(async (product) => {
        const versions = visibleVersions(rights, product, await catalog.versions(product));
        return `<section>
<h2><a href="/products/${segment(product)}">${escapeHtml(product)}</a></h2>
<p>Your rights: ${escapeHtml(rightsOn(rights, product).join(', '))}</p>
${versions.length > 0 ? `<ul>\n${versions.map(versionLine).join('\n')}\n</ul>` : '<p>No versions for you yet.</p>'}
</section>`;
      }),
    );
    sendPage(res, page('Your releases', `<h1>Your releases</h1>\n${sections.length > 0 ? sections.join('\n') : '<p>Your contract gives you no products.</p>'}`));
  });

  bindRoute(router, r.productPage, async (req, res, input) => {
    const principal = requirePrincipal(req);
    const { product } = input.params();
    const fields = mergeFields(requestFields(req), { subject: principal.sub, tenant: principal.tenant, tokenId: principal.tokenId, detail: { product } });
    await audited({ audit: deps.audit }, { fields, refusal: false }, async (scope) => {
      const { rights, denied } = await currentRights(authorizer, principal);
      if (denied !== undefined || rightsOn(rights, product).length === 0)
        throw scope.refuse(new AccessDenied(`you hold no right on ${product}`, denied ?? 'right_missing'), 'authorization.denied', { reason: denied ?? 'right_missing' });
      const versions = visibleVersions(rights, product, await catalog.versions(product));
      const blocks = await Promise.all(
        versions.map(async (version) => {
          const files = await catalog.files({ kind: 'version', product, version: version.version });
          const items = files.map((file) => {
            const link = `/products/${segment(product)}/${segment(version.version)}/${segment(file.name)}`;
            const facts = ` · ${file.size} bytes · SHA-256 <code>${escapeHtml(file.sha256)}</code>`;
            return file.state === 'clean' && version.state === 'published'
              ? `<li><a href="${link}" download>${escapeHtml(file.name)}</a>${facts}</li>`
              : `<li>${escapeHtml(file.name)} (${escapeHtml(file.state)})${facts}</li>`;
          });
          return `<section id="v-${escapeHtml(version.version)}">
<h2>${escapeHtml(product)} ${escapeHtml(version.version)}${version.state === 'published' ? '' : ` (${escapeHtml(version.state)})`}</h2>
${items.length > 0 ? `<ul>\n${items.join('\n')}\n</ul>` : '<p>No files.</p>'}
</section>`;
        }),
      );
      sendPage(res, page(product, `<h1>${escapeHtml(product)}</h1>\n<p><a href="/">All your releases</a></p>\n${blocks.length > 0 ? blocks.join('\n') : '<p>No versions for you yet.</p>'}`));
    });
  });
  return router;
}
