export { createApp, type TopicApp, type TopicDeps, type TopicOptions } from './app.ts';
export { pacSasKeys } from './auth/pac-keys.ts';
export { entitlementSubscriptions, type SubscriptionSource } from './delivery/inventory.ts';
export type { SasKeySource } from './auth/tenant-keys.ts';
export { TopicEnv } from './config.ts';
