import { z } from 'zod';
import { authenticatedBy, jsonResponse, noBody, openApiDocument, operatorOnly } from '../openapi.ts';
import {
  DownloadReport,
  DownloadReportQuery,
  FileName,
  LocationDetail,
  ProductDetail,
  ProductList,
  VersionDetail,
} from '../releases.ts';
import { ProductId, TenantId, VersionName } from '../common.ts';
import { pathsOf, route } from '../route.ts';
import { webSessionRoutes } from '../web-session.ts';

const ProductPath = z.object({ product: ProductId });
const VersionPath = ProductPath.extend({ version: VersionName });
const FilePath = VersionPath.extend({ file: FileName });
const LocationPath = ProductPath.extend({ tenant: TenantId });

/** A person's or a pipeline's access token from PAS (scope `releases`, aud = this service), or a person's browser session. */
const user = authenticatedBy(['bearer', 'session'], [401, 403, 503]);

/** The site's own files its pages load (CSP script-src and style-src 'self': nothing inline). */
const ReleasesAsset = z.enum(['releases.js', 'releases.css']);

/** The releases service's operations, declared once (server binding, client, OpenAPI). */
export const releasesRoutes = {
  listProducts: user(route({ method: 'get', path: '/v1/products', summary: 'the products this person holds any right on, each with the versions they may see', responses: { 200: jsonResponse(ProductList, 'the products') } })),
  getProduct: user(route({ method: 'get', path: '/v1/products/{product}', summary: 'the versions of a product this person may see (downloaders: published versions inside their range; publishers: all)', params: ProductPath, responses: { 200: jsonResponse(ProductDetail, 'the product') }, errors: [400, 404] })),
  getVersion: user(route({ method: 'get', path: '/v1/products/{product}/versions/{version}', summary: 'a version and its files (state, size, sha256)', params: VersionPath, responses: { 200: jsonResponse(VersionDetail, 'the version') }, errors: [400, 404] })),
  publish: user(route({ method: 'post', path: '/v1/products/{product}/versions/{version}/publish', summary: 'publish a version (publisher): every file must be clean, and there must be one', params: VersionPath, responses: { 200: jsonResponse(VersionDetail, 'published') }, errors: [400, 404, 409] })),
  withdraw: user(route({ method: 'post', path: '/v1/products/{product}/versions/{version}/withdraw', summary: 'withdraw a published version (publisher): its links answer 403 access_denied (withdrawn) from then on', params: VersionPath, responses: { 200: jsonResponse(VersionDetail, 'withdrawn') }, errors: [400, 404, 409] })),
  getLocation: user(route({ method: 'get', path: '/v1/products/{product}/locations/{tenant}', summary: "a tenant's upload location of a product: its own uploaders, or the product's publishers", params: LocationPath, responses: { 200: jsonResponse(LocationDetail, 'the files') }, errors: [400, 404] })),
  // tus 1.0 (tus.io/protocols/resumable-upload): the protocol's headers carry what a body would elsewhere
  uploadOptions: route({ method: 'options', path: '/v1/uploads', summary: 'tus 1.0 discovery: Tus-Version, Tus-Extension (creation, termination), Tus-Max-Size', responses: { 204: noBody('the capabilities') } }),
  createUpload: user(route({ method: 'post', path: '/v1/uploads', summary: 'tus creation: Upload-Length, Upload-Metadata (product, filename, sha256 hex, and version for a publisher\'s version; none: the caller\'s tenant\'s upload location)', description: 'Location names the upload. Refused with 413 above RELEASES_MAX_FILE_BYTES or the scanner\'s limit, 409 into a version that is not a draft.', responses: { 201: noBody('created: Location') }, errors: [400, 409, 413] })),
  uploadOffset: user(route({ method: 'head', path: '/v1/uploads/{id}', summary: 'tus: the offset to resume from (Upload-Offset); the creator only', responses: { 200: noBody('Upload-Offset, Upload-Length') }, errors: [404] })),
  uploadChunk: user(route({ method: 'patch', path: '/v1/uploads/{id}', summary: 'tus: bytes from Upload-Offset (application/offset+octet-stream); the last ones are hashed against the stated SHA-256 and staged for the scanner', responses: { 204: noBody('taken: Upload-Offset') }, errors: [400, 404, 409, 460] })),
  terminateUpload: user(route({ method: 'delete', path: '/v1/uploads/{id}', summary: 'tus termination: drop an unfinished upload', responses: { 204: noBody('dropped') }, errors: [404] })),
  downloadReport: operatorOnly(route({ method: 'get', path: '/v1/reports/downloads', summary: "a tenant's downloads (who, which file, bytes, range, when), oldest first, from the releases audit stream", query: DownloadReportQuery, responses: { 200: jsonResponse(DownloadReport, 'the downloads') }, errors: [400] })),
  download: user(route({ method: 'get', path: '/products/{product}/{version}/{file}', summary: 'the file (persistent link): Range, If-Range, strong ETag (the SHA-256), If-None-Match', params: FilePath, responses: { 200: { description: 'the file', type: 'application/octet-stream' }, 206: { description: 'the range asked for', type: 'application/octet-stream' }, 304: noBody('not modified') }, errors: [400, 404, 416] })),
  landing: user(route({ method: 'get', path: '/', summary: 'what this person’s tier gives them (HTML)', responses: { 200: { description: 'the page', type: 'text/html' } } })),
  asset: route({ method: 'get', path: '/assets/{name}', summary: 'the pages’ script (uploads through tus, SHA-256 in the browser, publish) and stylesheet', params: z.object({ name: ReleasesAsset }), responses: { 200: { description: 'the file', type: 'text/javascript' } }, errors: [400] }),
  productPage: user(route({ method: 'get', path: '/products/{product}', summary: 'the product’s landing page: versions and files with links (HTML)', params: ProductPath, responses: { 200: { description: 'the page', type: 'text/html' } }, errors: [400, 404] })),
};

export const releasesPaths = pathsOf({ ...releasesRoutes, ...webSessionRoutes });

export const releasesApi = openApiDocument(
  {
    title: 'Keyway releases service',
    description: 'The software distribution center: products, versions and files; resumable uploads (tus 1.0 at /v1/uploads), scanning with clamd, publishing, and downloads with Range and a strong ETag.',
  },
  releasesPaths,
);
