/** No verdict because clamd could not be asked: it may answer later, so the file waits (fail closed). */
export type ScannerUnavailableCode = 'ERR_SCANNER_UNREACHABLE' | 'ERR_SCANNER_TIMEOUT' | 'ERR_SCANNER_DISCONNECTED';
/** clamd answered, but with no verdict on these bytes: asking again gives the same answer. */
export type ScanFailedCode = 'ERR_SCAN_SIZE_LIMIT' | 'ERR_SCAN_LIMITS_EXCEEDED' | 'ERR_SCANNER_ERROR' | 'ERR_SCAN_REPLY';

/** Stable codes, like SealError and SasError: a caller tells "retry later" from "never clean" without reading messages. */
export abstract class ScanError extends Error {
  abstract readonly code: ScannerUnavailableCode | ScanFailedCode;
}

export class ScannerUnavailable extends ScanError {
  override name = 'ScannerUnavailable';
  constructor(
    readonly code: ScannerUnavailableCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class ScanFailed extends ScanError {
  override name = 'ScanFailed';
  constructor(
    readonly code: ScanFailedCode,
    message: string,
  ) {
    super(message);
  }
}
