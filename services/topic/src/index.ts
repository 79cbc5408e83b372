export { createApp, type TopicApp, type TopicDeps, type TopicOptions } from './app.ts';
export { pacSasSignatures, type SasSignatureSource, type SignatureVerdict } from './auth/sas-signatures.ts';
export { entitlementSubscriptions, type SubscriptionSource } from './delivery/inventory.ts';
export { TopicEnv } from './config.ts';
