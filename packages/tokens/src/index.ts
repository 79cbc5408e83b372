export * from './errors.ts';
export * from './keyring.ts';
export * from './tokens.ts';
export type { Signer } from './signer.ts';
export { lowS } from './compact.ts';
export * from './client-assertion.ts';
export type { JWTVerifyGetKey } from 'jose';
export * from './remote-keys.ts';
export * from './bearer.ts';
