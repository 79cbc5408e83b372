export * from './pki.ts';
export * from './suite.ts';
export * from './env.ts';
export * from './database.ts';
export { deleteQueues } from './rabbit-cleanup.ts';
export * from './sftp.ts';
