import type { Migration } from "./index.ts";

export const ddmCredentials: Migration = {
  version: 20,
  name: "ddm-credentials",
  sql: `
-- DDM credential templates (src/store/ddm-credentials.ts): what a
-- com.apple.asset.credential.scep declaration naming
-- orchard:credential/scep/<name> gives each device. spec is the template's
-- JSON as Orchard checked it; revision its SHA-256 (hex), which goes into the
-- device URL so that a changed template changes the declaration's ServerToken.
CREATE TABLE ddm_credentials (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL,
  revision TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- The single-use challenges handed to devices in their credential JSON, as
-- SHA-256 (the challenge is a secret), each bound to the device it was given
-- to and the certificate it may ask for (request: the subject, names and key
-- the template rendered for that device). Apart from scep_challenges: a
-- credential challenge never buys a device identity, nor the reverse.
CREATE TABLE credential_challenges (
  hash TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  credential TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX credential_challenges_expires_at ON credential_challenges (expires_at);

-- Certificates the credential CA issued, for the device and template of the
-- challenge that paid for each.
CREATE TABLE credential_certificates (
  serial_number TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL UNIQUE,
  device_id TEXT NOT NULL,
  credential TEXT NOT NULL,
  subject TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  transaction_id TEXT NOT NULL,
  cert_der {{blob}} NOT NULL
);
CREATE INDEX credential_certificates_device_id ON credential_certificates (device_id);
CREATE INDEX credential_certificates_transaction_id ON credential_certificates (transaction_id);
`,
};
