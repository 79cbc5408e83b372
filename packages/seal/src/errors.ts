export type SealErrorCode = 'ERR_SEAL_MALFORMED' | 'ERR_SEAL_UNKNOWN_KEK' | 'ERR_SEAL_INTEGRITY' | 'ERR_KEK_FILE';

/** Stable codes, like TokenError and SasError: a caller tells a bad file from a tampered value without reading messages. */
export class SealError extends Error {
  override name = 'SealError';
  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
  }
}
