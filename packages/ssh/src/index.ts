export { certificateAuthorityLine, isCertificateType, parseCertificate, SshCertificateError, signCertificate, verifyCertificate } from './certificate.ts';
export { fingerprint, isKeyType, parsePublicKeyLine, publicKeyFromBlob, publicKeyFromKeyObject, publicKeyLine, SSH_KEY_TYPES, SshFormatError, signData, verifySignature } from './keys.ts';
export { openSshPrivateKey } from './private-key.ts';
export type { SshPublicKey } from './keys.ts';
