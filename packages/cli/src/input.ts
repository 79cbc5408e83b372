import type { z } from 'zod';
import { FeedName, TenantId } from '@keyway/contracts';
import { usageError } from './exit-codes.ts';

/** Parses one argument or option with its contract schema; a refusal is a usage error naming it. */
export function parseArg<S extends z.ZodType>(schema: S, value: unknown, name: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw usageError(`${name}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data;
}

/** For repeatable options: `--feed a --feed b`. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The `<tenant>` argument. */
export const tenantArg = (value: string) => parseArg(TenantId, value, 'tenant');

/** The `<tenant> <feed>` arguments. */
export const feedArgs = (tenant: string, feed: string) => [tenantArg(tenant), parseArg(FeedName, feed, 'feed')] as const;
