import type { TokenRequest } from '@keyway/contracts';
import { authorization_code } from './authorization_code.ts';
import type { Grant } from './context.ts';
import { client_credentials } from './client_credentials.ts';
import { password } from './password.ts';
import { refresh_token } from './refresh_token.ts';

/** The token endpoint dispatches from here and is never edited to add a grant. */
export const grants: { [G in TokenRequest['grant_type']]?: Grant<G> } = {
  password,
  refresh_token,
  client_credentials,
  authorization_code,
};
