// Device identity: who is calling (TLS peer cert, forwarded cert header, or the
// Mdm-Signature header) and whether our CA issued that certificate. The crypto
// formats beside it (der, ber, cms, csr, pkcs12, pem: docs/architecture.md,
// "Crypto formats") are imported by their own paths.
export { IdentityError, type IdentityErrorReason } from "./errors.ts";
export {
  verifyMdmSignature,
  verifyMdmSignatureDetailed,
  mdmSignatureSigner,
  MAX_SIGNATURE_HEADER_LENGTH,
  type MdmSignature,
} from "./signature.ts";
export { certFromHeader, MAX_CERT_HEADER_LENGTH } from "./header.ts";
export { DeviceTrust } from "./trust.ts";
export { certFingerprint } from "./fingerprint.ts";
