import { delivery, deliveryTable } from './delivery.ts';
import { idlePolls, idlePollsTable } from './idle-polls.ts';
import { machine, table } from './measure.ts';
import { sasVerify } from './sas-verify.ts';
import { tokenIssuance } from './token-issuance.ts';

/** `pnpm bench`: every benchmark, one after the other, as Markdown tables for the README. */
process.stdout.write(`Machine: ${machine()}\n\n`);
process.stdout.write(table('Token issuance (suite on loopback HTTPS, Redis; 8 in flight)', await tokenIssuance()));
process.stdout.write('\n');
process.stdout.write(table('SAS verification (one thread)', await sasVerify()));
process.stdout.write('\n');
process.stdout.write(deliveryTable(await delivery()));
process.stdout.write('\n');
process.stdout.write(idlePollsTable(await idlePolls()));
