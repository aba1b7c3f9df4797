import type { Migration } from "./index.ts";

export const lockout: Migration = {
  version: 6,
  name: "lockout",
  sql: `
-- SHA-256 of the digest response that used the nonce: the same response sent
-- again is a retry of an attempt already judged, not a new failure.
ALTER TABLE used_nonces ADD COLUMN response_hash TEXT;

-- When the user last got an AuthToken on this Mac (kept across logins): past
-- the per-Mac and per-user failure ceilings, only Macs the user logged in on
-- before may still try for that user.
ALTER TABLE user_sessions ADD COLUMN authenticated_at BIGINT;
`,
};
