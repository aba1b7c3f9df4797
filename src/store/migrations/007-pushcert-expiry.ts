import type { Migration } from "./index.ts";

export const pushCertExpiry: Migration = {
  version: 7,
  name: "pushcert-expiry",
  sql: `
-- When the pushcert.expiring event was recorded for the stored certificate:
-- once per certificate, by whichever process saw it first. A new certificate
-- for the topic (another fingerprint) clears it.
ALTER TABLE push_certs ADD COLUMN expiry_notified_at BIGINT;
`,
};
