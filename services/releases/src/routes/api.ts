import { pipeline } from 'node:stream/promises';
import { audited, mergeFields, queryEvents, requestFields, type AuditDb, type AuditLog } from '@keyway/audit';
import { type ReleaseVersion, type VersionDetail, DownloadReport, LocationDetail, ProductDetail, ProductList, VersionDetail as VersionDetailSchema, releasesRoutes as r } from '@keyway/contracts';
import { AccessDenied, bindRoute, NotFound, requireOperator, shapeResponse, type BearerVerifier } from '@keyway/kit';
import { type Request, type RequestHandler, Router } from 'express';
import { authorizeRelease, requireDownloadable, rightsOn, visibleVersions } from '../auth/access.ts';
import { type ReleaseAuthorizer, currentRights } from '../auth/authorizer.ts';
import { type Principal, requirePrincipal } from '../auth/principal.ts';
import type { Catalog, FileScope } from '../catalog/catalog.ts';
import { moveVersion } from '../catalog/version-state.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { rangeAnswer } from './http-range.ts';

export interface ApiDeps {
  catalog: Catalog;
  blobs: BlobStore;
  authorizer: ReleaseAuthorizer;
  audit: AuditLog;
  auditDb: AuditDb;
  operatorTokens: BearerVerifier;
  /** the file link: a browser without a session signs in first (pages.ts loginFirst) */
  signIn: RequestHandler;
  now?: () => number;
}

/**
 * The JSON API, publish and withdraw, the download report and the persistent file link. Every request
 * that reads or writes a release asks the entitlement service (authorizeRelease / currentRights).
 */
export function releaseRoutes(deps: ApiDeps): Router {
  const { catalog, blobs, authorizer, audit } = deps;
  const now = () => new Date(deps.now?.() ?? Date.now());
  const trail = { audit };
  const router = Router();
  const fieldsOf = (req: Request, principal: Principal) => mergeFields(requestFields(req), { subject: principal.sub, tenant: principal.tenant, tokenId: principal.tokenId });

  const versionDetail = async (version: ReleaseVersion): Promise<VersionDetail> => ({
    ...version,
    files: await catalog.files({ kind: 'version', product: version.product, version: version.version }),
  });

  bindRoute(router, r.listProducts, async (req, res) => {
    const principal = requirePrincipal(req);
    const { rights } = await currentRights(authorizer, principal);
    const products = await Promise.all(
      Object.keys(rights)
        .filter((product) => rightsOn(rights, product).length > 0)
        .sort()
        .map(async (product) => ({ product, rights: rightsOn(rights, product), versions: visibleVersions(rights, product, await catalog.versions(product)) })),
    );
    res.json(shapeResponse(ProductList, { products }));
  });

  bindRoute(router, r.getProduct, async (req, res, input) => {
    const principal = requirePrincipal(req);
    const { product } = input.params();
    await audited(trail, { fields: fieldsOf(req, principal), refusal: false }, async (scope) => {
      const { rights, denied } = await currentRights(authorizer, principal);
      scope.note({ detail: { product } });
      if (denied !== undefined || rightsOn(rights, product).length === 0)
        throw scope.refuse(new AccessDenied(`you hold no right on ${product}`, denied ?? 'right_missing'), 'authorization.denied', { reason: denied ?? 'right_missing' });
      res.json(shapeResponse(ProductDetail, { product, rights: rightsOn(rights, product), versions: visibleVersions(rights, product, await catalog.versions(product)) }));
    });
  });

  bindRoute(router, r.getVersion, async (req, res, input) => {
    const principal = requirePrincipal(req);
    const { product, version } = input.params();
    const { rights } = await currentRights(authorizer, principal);
    const found = await catalog.version(product, version);
    // a version this person may not see is as unknown as one that does not exist
    if (!found || visibleVersions(rights, product, [found]).length === 0) throw new NotFound(`no version ${version} of ${product}`);
    res.json(shapeResponse(VersionDetailSchema, await versionDetail(found)));
  });

  for (const [route, to, action, right] of [
    [r.publish, 'published', 'release.published', 'publish'],
    [r.withdraw, 'withdrawn', 'release.withdrawn', 'withdraw'],
  ] as const) {
    bindRoute(router, route, async (req, res, input) => {
      const principal = requirePrincipal(req);
      const { product, version } = input.params();
      const detail = await audited(trail, { action, fields: fieldsOf(req, principal), refusal: false }, async (scope) => {
        await authorizeRelease(authorizer, scope, principal, product, right);
        const next = await moveVersion(catalog, product, version, to, now());
        return versionDetail(next);
      });
      res.json(shapeResponse(VersionDetailSchema, detail));
    });
  }

  bindRoute(router, r.getLocation, async (req, res, input) => {
    const principal = requirePrincipal(req);
    const { product, tenant } = input.params();
    await audited(trail, { fields: fieldsOf(req, principal), refusal: false }, async (scope) => {
      const { rights } = await currentRights(authorizer, principal);
      const held = rightsOn(rights, product);
      const own = tenant === principal.tenant && held.includes('upload');
      if (!own && !held.includes('publish')) {
        // another tenant's location does not exist for this person
        throw scope.refuse(new NotFound('no such upload location'), 'authorization.denied', { reason: tenant === principal.tenant ? 'right_missing' : 'other_tenant' });
      }
      const scopeOf: FileScope = { kind: 'location', tenant, product };
      res.json(shapeResponse(LocationDetail, { product, tenant, files: await catalog.files(scopeOf) }));
    });
  });

  bindRoute(router, r.downloadReport, requireOperator({ verify: deps.operatorTokens }), async (_req, res, input) => {
    const { tenant, since, limit } = input.query();
    const page = await queryEvents(deps.auditDb, { stream: 'releases', tenant, action: 'release.downloaded', outcome: 'success', from: since, order: 'oldest', limit });
    const downloads = page.events.map((event) => ({
      time: event.time,
      subject: event.subject,
      product: event.detail?.product ?? '',
      version: event.detail?.version ?? '',
      file: event.detail?.file ?? '',
      bytes: Number(event.detail?.bytes ?? 0),
      range: event.detail?.range,
    }));
    res.json(shapeResponse(DownloadReport, { tenant, downloads }));
  });

  bindRoute(router, r.download, deps.signIn, async (req, res, input) => {
    const principal = requirePrincipal(req);
    const { product, version, file: name } = input.params();
    await audited(trail, { fields: fieldsOf(req, principal), refusal: false }, async (scope) => {
      const rights = await authorizeRelease(authorizer, scope, principal, product, 'download');
      const found = await catalog.version(product, version);
      const file = found && (await catalog.file({ kind: 'version', product, version }, name));
      if (!found || !file) throw new NotFound(`no file ${name} in ${product} ${version}`);
      requireDownloadable(scope, principal, rights, found, file);
      const size = (await blobs.stat(file.sha256))?.size;
      if (size === undefined) throw new NotFound(`no file ${name} in ${product} ${version}`);

      const etag = `"${file.sha256}"`;
      res.set({
        ETag: etag,
        'Accept-Ranges': 'bytes',
        // authorization at every open: caches may keep it, but ask again before reusing it
        'Cache-Control': 'private, no-cache',
        'Content-Disposition': `attachment; filename="${name}"`,
        'Content-Type': 'application/octet-stream',
      });
      const answer = rangeAnswer({ ifNoneMatch: req.get('if-none-match'), range: req.get('range'), ifRange: req.get('if-range') }, size, etag);
      if (answer.status === 304) {
        res.status(304).end();
        return;
      }
      if (answer.status === 416) {
        res
          .status(416)
          .set('Content-Range', `bytes */${size}`)
          .json({ error: 'invalid_request', error_description: `the range is outside the file's ${size} bytes` });
        return;
      }
      const range = answer.status === 206 ? answer.range : undefined;
      const bytes = range ? range.end - range.start + 1 : size;
      const sendHeaders = () => {
        res.status(answer.status).set('Content-Length', String(bytes));
        if (range) res.set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
      };
      // HEAD fetches no bytes: nothing to record
      if (req.method === 'HEAD') {
        sendHeaders();
        res.end();
        return;
      }
      // recorded before the first byte leaves (fail closed: a download the trail cannot take does not happen)
      await audit.record({
        ...fieldsOf(req, principal),
        action: 'release.downloaded',
        outcome: 'success',
        detail: { product, version, file: name, sha256: file.sha256, bytes: String(bytes), ...(range ? { range: `bytes=${range.start}-${range.end}` } : {}) },
      });
      sendHeaders();
      // streamed with backpressure; a client that goes away ends the read too
      await pipeline(blobs.open(file.sha256, range), res).catch((err: unknown) => req.log.info('release.download_cut', { file: name, err: String(err) }));
    });
  });

  return router;
}
