export * from './pki.ts';
export * from './suite.ts';
export * from './env.ts';
export * from './database.ts';
export * from './servers/redis.ts';
export * from './servers/postgres.ts';
export * from './servers/rabbit.ts';
