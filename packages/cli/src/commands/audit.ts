import type { Command } from 'commander';
import { loadCheckpointPublicKey, retentionMs, verifyAll, verifyChain } from '@keyway/audit';
import { AUDIT_STREAMS, AuditAction, AuditOutcome, AuditQuery, AuditStream, AuditVerifyQuery, TenantId, type AuditEvent, type AuditVerifyResult } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { withDatabase } from '../database.ts';
import { CliError, EXIT, usageError } from '../exit-codes.ts';
import { parseArg } from '../input.ts';
import { table } from '../output.ts';
import { everyPage, pageTable } from '../paging.ts';

const UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since 2h`, `--since 7d`, or an ISO 8601 time with its offset (the API's `from` / `to`). */
function timeOption(value: string | undefined, name: string, now: number): string | undefined {
  if (value === undefined) return undefined;
  const relative = /^(\d{1,6})([smhd])$/.exec(value);
  if (relative) return new Date(now - Number(relative[1]) * UNITS_MS[relative[2] as keyof typeof UNITS_MS]).toISOString();
  if (Number.isNaN(Date.parse(value)) || !/[zZ]|[+-]\d\d:\d\d$/.test(value)) throw usageError(`${name}: an ISO 8601 time with its offset (2026-01-31T08:00:00Z) or an age (30m, 2h, 7d)`);
  return value;
}

const columns: Parameters<typeof table<AuditEvent>>[1] = [
  ['time', (e) => e.time],
  ['stream', (e) => `${e.service}#${e.seq}`],
  ['action', (e) => e.action],
  ['outcome', (e) => e.outcome],
  ['tenant', (e) => e.tenant],
  ['subject', (e) => e.subject ?? e.clientId],
  ['token id', (e) => e.tokenId],
  ['reason', (e) => e.reason],
];

const describe = (r: AuditVerifyResult): string =>
  r.ok
    ? `${r.stream}: intact (${r.checked} events checked, seq ${r.anchorSeq + 1}..${r.headSeq}, signed up to seq ${r.signedSeq})`
    : `${r.stream}: BROKEN at seq ${r.brokenAt.seq}${r.brokenAt.id ? ` (event ${r.brokenAt.id})` : ''}: ${r.reason}: ${r.detail}`;

/**
 * Verify without trusting the audit service: read the trail straight from PostgreSQL (a role that may
 * read every stream: keyway_audit, or a read-only role a security team holds) and check the
 * checkpoints against a public key file the team keeps itself. An audit service (or whoever runs it)
 * that lies about the trail cannot lie about this.
 */
async function verifyDirectly(url: string, publicKeyFile: string, stream: string | undefined, minRetentionDays: number | undefined): Promise<AuditVerifyResult[]> {
  const publicKey = await loadCheckpointPublicKey(publicKeyFile).catch((err: unknown) => {
    throw usageError(`--public-key: ${err instanceof Error ? err.message : String(err)}`);
  });
  const options = { publicKey, minRetentionMs: retentionMs(minRetentionDays) };
  return withDatabase(url, '--database-url', async (db) => (stream === undefined ? (await verifyAll(db, { ...options, expected: AUDIT_STREAMS })).streams : [await verifyChain(db, stream, options)]));
}

export function register(program: Command, context: CliContext): void {
  const audit = program.command('audit').description('the audit trail: query events, verify the hash chains (exit 7 when broken)');

  audit
    .command('events')
    .description('audit events of every service, newest first; filters combine')
    .option('--tenant <tenant>', 'events about this tenant')
    .option('--subject <subject>', 'events of this subject (user id, or the operator)')
    .option('--action <action>', 'noun.verb, e.g. token.issued, sas_key.minted, authorization.denied')
    .option('--outcome <outcome>', 'success | denied | failure')
    .option('--stream <stream>', 'one service’s stream: pas | pac | entitlement')
    .option('--since <time>', 'from this time on (ISO 8601, or an age: 30m, 2h, 7d)')
    .option('--until <time>', 'before this time (ISO 8601, or an age)')
    .option('--oldest', 'oldest first')
    .option('--limit <n>', 'events per page (1-500, default 100)')
    .option('--cursor <cursor>', 'the page after the one that answered this nextCursor')
    .option('--all', 'every page, following the cursors (progress on stderr)')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const text = (name: string) => options[name] as string | undefined;
      const now = Date.now();
      const query: AuditQuery = {
        tenant: text('tenant') === undefined ? undefined : parseArg(TenantId, text('tenant'), '--tenant'),
        subject: text('subject'),
        action: text('action') === undefined ? undefined : parseArg(AuditAction, text('action'), '--action'),
        outcome: text('outcome') === undefined ? undefined : parseArg(AuditOutcome, text('outcome'), '--outcome'),
        stream: text('stream') === undefined ? undefined : parseArg(AuditStream, text('stream'), '--stream'),
        from: timeOption(text('since'), '--since', now),
        to: timeOption(text('until'), '--until', now),
        order: options.oldest ? 'oldest' : 'newest',
        limit: text('limit') === undefined ? undefined : parseArg(AuditQuery.shape.limit, text('limit'), '--limit'),
        cursor: text('cursor'),
      };
      const client = await context.audit();
      if (!options.all) {
        const page = await client.events(query);
        context.print(page, () => pageTable({ rows: page.events, next: page.nextCursor }, columns));
        return;
      }
      const events = await everyPage(
        query.cursor,
        async (cursor) => {
          const page = await client.events({ ...query, cursor });
          return { rows: page.events, next: page.nextCursor };
        },
        (fetched) => context.progress(`fetched ${fetched} events…`),
      );
      context.print({ events, nextCursor: null }, () => table(events, columns));
    });

  audit
    .command('verify')
    .description(`recompute the hash chains (one stream, or all) and print the first broken link; exit ${EXIT.auditBroken} when one is broken`)
    .option('--stream <stream>', 'only this stream: pas | pac | entitlement | idp')
    .option('--database-url <url>', 'read the trail from PostgreSQL directly (a role that reads every stream) instead of asking the audit service')
    .option('--public-key <file>', "with --database-url: the audit service's checkpoint public key (PEM), as the security team keeps it")
    .option('--min-retention-days <days>', 'the retention you expect: a signed trim of events younger than this is a break (default 0: not checked)')
    .action(async (options: { stream?: string; databaseUrl?: string; publicKey?: string; minRetentionDays?: string }) => {
      const stream = options.stream === undefined ? undefined : parseArg(AuditStream, options.stream, '--stream');
      const minRetentionDays = options.minRetentionDays === undefined ? undefined : parseArg(AuditVerifyQuery.shape.min_retention_days, options.minRetentionDays, '--min-retention-days');
      let results: AuditVerifyResult[];
      if (options.databaseUrl !== undefined) {
        if (options.publicKey === undefined) throw usageError('--database-url needs --public-key: the checkpoints are checked against a key you hold, not one read from the database');
        results = await verifyDirectly(options.databaseUrl, options.publicKey, stream, minRetentionDays);
      } else {
        const client = await context.audit();
        results = stream === undefined ? (await client.verifyAll(minRetentionDays)).streams : [await client.verify(stream, minRetentionDays)];
      }
      const ok = results.every((r) => r.ok);
      context.print(options.stream === undefined ? { ok, streams: results } : results[0], () => results.map(describe).join('\n'));
      const broken = results.filter((r) => !r.ok).map((r) => r.stream);
      if (!ok) throw new CliError(`the audit trail is broken (${broken.join(', ')}): events were changed, removed or reordered after they were written`, EXIT.auditBroken);
    });
}
