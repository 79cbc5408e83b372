import { z } from 'zod';
import { FeedName, SubscriptionName, TenantId, TierId } from '@keyway/contracts';

/** Path parameters of the admin API, checked at the edge like bodies. */
export const TenantPath = z.object({ tenant: TenantId });
export const UserPath = TenantPath.extend({ user: z.string().min(1).max(128) });
export const FeedPath = TenantPath.extend({ feed: FeedName });
export const SubscriptionPath = FeedPath.extend({ name: SubscriptionName });
export const TierPath = z.object({ tier: TierId });
