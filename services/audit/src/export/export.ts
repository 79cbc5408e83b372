import { readSince, type AuditDb, type AuditEvent } from '@keyway/audit';
import type { EntitlementClient, TopicClient } from '@keyway/clients';
import { AUDIT_FEED, AUDIT_STREAMS, TenantId, type Batch } from '@keyway/contracts';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';
import { tenantView } from './tenant-view.ts';

/** Events per read of a stream, and so at most per batch: well under the topic service's batch size limit. */
const PAGE = 100;

export interface AuditExportDeps {
  /** the trail every service appends to, read as role keyway_audit (every stream) */
  auditDb: AuditDb;
  /** this service's records (system of record): how far each stream was forwarded, which tenants are held back */
  store: Store;
  /** whether a tenant has the audit feed (the entitlement service's internal API, mTLS) */
  entitlement: Pick<EntitlementClient, 'feedEntitlement'>;
  /** the topic service's internal publish (mTLS): the checks and quotas of every publish */
  topic: Pick<TopicClient, 'publishInternal'>;
  logger: Logger;
}

export interface AuditExportOptions {
  /** how often every stream is read for new events */
  intervalMs: number;
  /** where events without a tenant go (signing-key rotations, logins of unknown users): the vendor's tenant */
  operatorTenant: string;
}

/**
 * The trail as a feed of its own (design.md, "Audit"): each stream is read with readSince after its
 * checkpoint, its events are grouped by tenant, and each group is published as one Batch (records =
 * the events as the tenant may see them (tenant-view.ts), each with its seq and the stored hashes) to
 * the tenant's topic `audit` through the topic service's internal publish, which checks and counts it as any publish
 * (batch validation, size limit, the tenant's rate and depth quotas) and answers 201 only once the
 * broker confirmed it. A security team then pulls it like any feed: an operator grants the tenant the
 * `audit` feed, and its importer asks PAC for a listen key to `…/topics/audit`.
 *
 * Who receives what is the entitlement service's answer (only tenants granted `audit` get batches;
 * events of other tenants are skipped, and they stay queryable), asked once a round per tenant.
 *
 * At least once, and no tenant holds back another: a batch the topic service refuses (its tenant over
 * its rate or depth quota, a 503) puts a hold on that tenant in that stream, at the seq before the
 * batch. The stream's checkpoint moves on for everyone else; each round first catches held tenants up
 * from their hold (their events only, in seq order) and lifts the hold once it reaches the checkpoint.
 * A crash republishes, never skips; a batch id names its stream, tenant and seq range, so a repeat is
 * dropped by the importer's checkpoint, and each event's id and seq let a SIEM drop the rest. Several
 * instances may forward the same page (duplicates, never gaps): checkpoints move only forward and a
 * hold is lifted only if nobody moved it meanwhile (compare-and-set).
 */
export function auditExport(deps: AuditExportDeps, options: AuditExportOptions) {
  const { logger } = deps;
  const checkpointKey = (stream: string) => `audit-export:${stream}`;
  const holdKey = (stream: string, tenant: string) => `audit-export-hold:${stream}:${tenant}`;
  // the held tenants of a stream, written with their holds in one commit, so a round reads one key rather than scanning
  const heldIndex = (stream: string) => `audit-export-held:${stream}`;

  /** The tenant an event is exported to, if that tenant is entitled to the audit feed. */
  async function destination(event: AuditEvent, entitled: Map<string, boolean>): Promise<string | undefined> {
    const tenant = event.tenant ?? options.operatorTenant;
    // A tenant field names a tenant only when it is one (a denial can name a tenant that never existed).
    if (!TenantId.safeParse(tenant).success) return undefined;
    let allowed = entitled.get(tenant);
    if (allowed === undefined) {
      allowed = (await deps.entitlement.feedEntitlement(tenant, AUDIT_FEED)).entitled;
      entitled.set(tenant, allowed);
    }
    return allowed ? tenant : undefined;
  }

  async function publish(stream: string, tenant: string, events: AuditEvent[]): Promise<void> {
    const first = events[0] as AuditEvent;
    const last = events.at(-1) as AuditEvent;
    const batch: Batch = {
      id: `audit:${stream}:${tenant}:${first.seq}-${last.seq}`,
      tenant,
      topic: AUDIT_FEED,
      seq: last.seq,
      createdAt: new Date().toISOString(),
      contentType: 'application/json',
      // what the tenant may see of each event (tenant-view.ts); the vendor's own tenant sees all of it
      records: events.map((event) => tenantView(event, tenant, options.operatorTenant)),
    };
    // rejects unless 201: the page is then forwarded again from its checkpoint at the next round
    await deps.topic.publishInternal(batch);
  }

  /** One page of the stream after `after`, its events grouped by the entitled tenant they go to. */
  async function readGroups(stream: string, after: number, entitled: Map<string, boolean>) {
    const page = await readSince(deps.auditDb, stream, after, PAGE);
    if (page.missed > 0) logger.warn('audit.export_missed', { stream, missed: page.missed, reason: 'trimmed by retention before it was forwarded' });
    const groups = new Map<string, AuditEvent[]>();
    for (const event of page.events) {
      const tenant = await destination(event, entitled);
      if (tenant !== undefined) groups.set(tenant, [...(groups.get(tenant) ?? []), event]);
    }
    return { last: page.events.at(-1)?.seq, headSeq: page.headSeq, groups };
  }

  /** Forwards one page of a stream to every tenant not held back; true when more events are waiting. */
  async function forwardPage(stream: string, held: Set<string>, entitled: Map<string, boolean>): Promise<boolean> {
    const raw = await deps.store.get(checkpointKey(stream));
    const { last, headSeq, groups } = await readGroups(stream, raw === null ? 0 : Number(raw), entitled);
    if (last === undefined) return false;
    for (const [tenant, events] of groups) {
      // a held tenant gets these events from its hold, in order, once it catches up
      if (held.has(tenant)) continue;
      try {
        await publish(stream, tenant, events);
      } catch (err) {
        const from = String((events[0] as AuditEvent).seq - 1);
        const key = holdKey(stream, tenant);
        await deps.store.commitIf({ key, expected: null }, [
          { op: 'set', key, value: from },
          { op: 'zadd', key: heldIndex(stream), members: [tenant] },
        ]);
        held.add(tenant);
        logger.warn('audit.export_held', { stream, tenant, from, err });
      }
    }
    await deps.store.compareAndSet(checkpointKey(stream), raw, String(last));
    return last < headSeq;
  }

  /** Catches a held tenant up from its hold to the stream's checkpoint; throws (stays held) when the topic service still refuses. */
  async function catchUp(stream: string, tenant: string, entitled: Map<string, boolean>): Promise<void> {
    const key = holdKey(stream, tenant);
    for (;;) {
      const hold = await deps.store.get(key);
      const checkpoint = Number((await deps.store.get(checkpointKey(stream))) ?? 0);
      if (hold === null) return;
      if (Number(hold) >= checkpoint) {
        // caught up: lifted unless another instance moved the hold meanwhile
        await deps.store.commitIf({ key, expected: hold }, [
          { op: 'del', key },
          { op: 'zrem', key: heldIndex(stream), members: [tenant] },
        ]);
        return;
      }
      const { last, groups } = await readGroups(stream, Number(hold), entitled);
      const events = (groups.get(tenant) ?? []).filter((event) => event.seq <= checkpoint);
      if (events.length > 0) await publish(stream, tenant, events);
      await deps.store.compareAndSet(key, hold, String(Math.min(last ?? checkpoint, checkpoint)));
    }
  }

  async function round(): Promise<void> {
    // entitlements are read once a round: a feed granted now is exported from the next round on
    const entitled = new Map<string, boolean>();
    for (const stream of AUDIT_STREAMS) {
      try {
        const held = new Set<string>();
        for (const tenant of await deps.store.zrangeByLex(heldIndex(stream))) {
          await catchUp(stream, tenant, entitled).catch((err: unknown) => logger.warn('audit.export_held', { stream, tenant, err }));
          if ((await deps.store.get(holdKey(stream, tenant))) !== null) held.add(tenant);
        }
        while (await forwardPage(stream, held, entitled));
      } catch (err) {
        // the next round starts again from the checkpoint (a 429, a 503, an unreachable service); a hole in a
        // stream stops its export here (verify reports it)
        logger.warn('audit.export_failed', { stream, err });
      }
    }
  }

  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = round().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        tick();
      }
    });
  };
  const timer = setInterval(tick, options.intervalMs);
  timer.unref();
  tick();

  return {
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
