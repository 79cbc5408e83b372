import { releasesRoutes as r, type DownloadReportQuery } from '@keyway/contracts';
import { createHttp, type ClientOptions } from './http.ts';
import { releaseTransfers } from './release-transfers.ts';
import { routeCaller, type CallOptions } from './route.ts';

type As = Pick<CallOptions, 'accessToken'>;

/**
 * The releases service's JSON API. Calls carry a person's access token (PAS scope `releases`) per
 * call, or the operator certificate (`clientCert`) for the download report. Uploads (tus 1.0 at
 * /v1/uploads) and downloads (GETs of the persistent links) resume (release-transfers.ts).
 */
export function releasesClient(options: ClientOptions) {
  const http = createHttp(options);
  const { call } = routeCaller(http, 'releases');
  return {
    ...releaseTransfers(http),
    /** the products the person holds any right on, each with the versions they may see */
    listProducts: (as: As) => call(r.listProducts, undefined, as),
    getProduct: (product: string, as: As) => call(r.getProduct, { params: { product } }, as),
    /** a version and its files (state, size, sha256) */
    getVersion: (product: string, version: string, as: As) => call(r.getVersion, { params: { product, version } }, as),
    /** 409 conflict unless every file is clean and there is one */
    publish: (product: string, version: string, as: As) => call(r.publish, { params: { product, version } }, as),
    withdraw: (product: string, version: string, as: As) => call(r.withdraw, { params: { product, version } }, as),
    /** a tenant's upload location of a product (its uploaders, or the product's publishers) */
    getLocation: (product: string, tenant: string, as: As) => call(r.getLocation, { params: { product, tenant } }, as),
    /** operator: a tenant's downloads from the releases audit stream */
    downloadReport: (query: DownloadReportQuery, as?: As) => call(r.downloadReport, { query }, as),
  };
}
export type ReleasesClient = ReturnType<typeof releasesClient>;
