import { checkpointStreams, listStreams, readRetention, trimStream, type AuditDb, type CheckpointSigner } from '@keyway/audit';
import type { Logger } from '@keyway/kit';

export interface TrailKeeperOptions {
  /** how often each stream's head is signed (when it moved) and the trail trimmed */
  intervalMs: number;
}

/**
 * The audit service's upkeep of the trail, one round every intervalMs: signs the head of every stream
 * that moved (signed checkpoints, packages/audit checkpoint.ts) and trims what is past the retention
 * the database's administrator set (keyway_audit.retention; the trim runs as the retention role), each
 * trim signed with the checkpoint key so verify can tell it from a deletion. One
 * round at a time; a failed round is logged and the next one tries again (checkpoints are idempotent
 * per (stream, seq), trimming per anchor), so several instances may run it at once.
 */
export function trailKeeper(deps: { auditDb: AuditDb; signer: CheckpointSigner; logger: Logger }, options: TrailKeeperOptions) {
  const { auditDb, signer, logger } = deps;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function round(): Promise<void> {
    try {
      const signed = await checkpointStreams(auditDb, signer);
      // logged, so the log pipeline holds the signed heads too: a witness outside the database for
      // whoever deletes checkpoints along with the events they cover
      for (const c of signed) logger.info('audit.checkpoint_signed', { stream: c.stream, seq: c.seq, hash: c.hash, time: c.time, keyId: c.keyId, signature: c.signature });
      const maxAgeMs = await readRetention(auditDb);
      for (const stream of await listStreams(auditDb)) {
        const trimmed = await trimStream(auditDb, signer, stream, { maxAgeMs });
        if (trimmed.blockedAt) logger.error('audit.chain_broken', { stream, ...trimmed.blockedAt });
      }
    } catch (err) {
      logger.warn('audit.keeper_failed', { err });
    }
  }

  const tick = () => {
    if (!stopped && !running) running = round().finally(() => (running = undefined));
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
