import type { Migration } from "./index.ts";

export const scep: Migration = {
  version: 4,
  name: "scep",
  sql: `
-- SCEP challenge passwords: single use, expiring. Only a SHA-256 of the
-- challenge is kept (it is a secret). A challenge is spent by one UPDATE
-- that sets used_at where it is still NULL, so every process sees it spent.
CREATE TABLE scep_challenges (
  hash TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX scep_challenges_expires_at ON scep_challenges (expires_at);

-- Certificates the device CA issued through SCEP. renewed_from is the SHA-256
-- fingerprint of the certificate a RenewalReq replaced: unique, so each
-- certificate is renewed once. device_id is the device a renewal rebound.
CREATE TABLE scep_certificates (
  serial_number TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL UNIQUE,
  subject TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  request_type TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  device_id TEXT,
  renewed_from TEXT UNIQUE,
  cert_der {{blob}} NOT NULL
);
CREATE INDEX scep_certificates_transaction_id ON scep_certificates (transaction_id);
CREATE INDEX scep_certificates_device_id ON scep_certificates (device_id);
`,
};
