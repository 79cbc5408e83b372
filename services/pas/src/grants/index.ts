import type { TokenRequest } from '@keyway/contracts';
import type { Grant } from './context.ts';
import { password } from './password.ts';

/** The token endpoint dispatches from here and is never edited to add a grant. */
export const grants: { [G in TokenRequest['grant_type']]?: Grant<G> } = {
  password,
};
