/** An event was refused before it was written: malformed, or carrying something that looks like a secret. */
export class AuditEventError extends Error {
  override readonly name = 'AuditEventError';
  readonly code = 'ERR_AUDIT_EVENT';
}

/** What is stored does not hold together (a missing or unreadable event, head or anchor). */
export class AuditIntegrityError extends Error {
  override readonly name = 'AuditIntegrityError';
  readonly code = 'ERR_AUDIT_INTEGRITY';
}
