import { delivery, deliveryTable } from './delivery.ts';
import { idlePolls, idlePollsTable } from './idle-polls.ts';
import { machine, table } from './measure.ts';
import { releases, releasesTable } from './releases.ts';
import { sasRatio, sasVerify } from './sas-verify.ts';
import { sftpDownload, sftpDownloadTable } from './sftp-download.ts';
import { tokenIssuance, tokenRatios } from './token-issuance.ts';

/** `pnpm bench`: every benchmark, one after the other, as Markdown tables for the README. */
process.stdout.write(`Machine: ${machine()}\n\n`);
const tokens = await tokenIssuance();
process.stdout.write(table('Token issuance (suite on loopback HTTPS, PostgreSQL, Redis; 8 in flight)', tokens));
process.stdout.write(`\n${tokenRatios(tokens)}`);
process.stdout.write('\n');
const sas = await sasVerify();
process.stdout.write(table('SAS verification (one thread)', sas));
process.stdout.write(`\n${sasRatio(sas)}`);
process.stdout.write('\n');
process.stdout.write(deliveryTable(await delivery()));
process.stdout.write('\n');
process.stdout.write(idlePollsTable(await idlePolls()));
process.stdout.write('\n');
process.stdout.write(releasesTable(await releases()));
process.stdout.write('\n');
process.stdout.write(sftpDownloadTable(await sftpDownload()));
