import type { CommandModule } from '../context.ts';
import * as audit from './audit.ts';
import * as db from './db.ts';
import * as feed from './feed.ts';
import * as importer from './importer.ts';
import * as keys from './keys.ts';
import * as login from './login.ts';
import * as mfa from './mfa.ts';
import * as redis from './redis.ts';
import * as ssh from './ssh.ts';
import * as release from './release.ts';
import * as subscription from './subscription.ts';
import * as tenant from './tenant.ts';
import * as tier from './tier.ts';
import * as user from './user.ts';

/**
 * Every command group of `keyway`, in the order `keyway --help` lists them. A new group is a file in
 * this folder exporting `register(program, context)` (see ../context.ts), added here in one line.
 */
export const commands: CommandModule[] = [login, mfa, tenant, user, feed, subscription, tier, keys, release, ssh, importer, audit, db, redis];
