export { isSealed, kekIdOf, seal, unseal } from './envelope.ts';
export { SealError } from './errors.ts';
export { ensureDevKek, Keyring } from './keyring.ts';
export { rewrapStore, type RewrapResult } from './rewrap.ts';
