export type SasErrorCode = 'ERR_SAS_MALFORMED' | 'ERR_SAS_EXPIRED' | 'ERR_SAS_SIGNATURE' | 'ERR_SAS_RESOURCE' | 'ERR_SAS_RIGHTS';

export class SasError extends Error {
  override name = 'SasError';
  constructor(
    readonly code: SasErrorCode,
    message: string,
  ) {
    super(message);
  }
}
