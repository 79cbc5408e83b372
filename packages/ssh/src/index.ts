export { certificateAuthorityLine, isCertificateType, parseCertificate, SshCertificateError, signCertificate, verifyCertificate } from './certificate.ts';
export type { CertificateRefusal, CertificateRequest, CertificateType, SshCertificate, VerifyOptions } from './certificate.ts';
export { fingerprint, parsePublicKeyLine, publicKeyFromBlob, publicKeyFromKeyObject, publicKeyLine, SshFormatError, signData, verifySignature } from './keys.ts';
export type { SshKeyType, SshPublicKey } from './keys.ts';
export { openSshPrivateKey } from './private-key.ts';
