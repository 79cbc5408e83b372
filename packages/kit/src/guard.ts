import type { z } from 'zod';
import { InvalidRequest } from './errors.ts';

/** zod at the edge: anything that does not parse is the caller's fault, named precisely. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) {
    const first = result.error.issues[0];
    const where = first && first.path.length > 0 ? `${what}.${first.path.join('.')}` : what;
    throw new InvalidRequest(`${where}: ${first?.message ?? 'invalid'}`);
  }
  return result.data;
}

/** Responses go through their schema so undeclared fields are stripped before they leave. */
export function shapeResponse<S extends z.ZodType>(schema: S, value: z.input<S>): z.output<S> {
  return schema.parse(value);
}
