import type { Migration } from "./index.ts";

export const noSha256Digests: Migration = {
  version: 30,
  name: "no-sha256-digests",
  sql: `
-- A password given through users add or PUT /v1/users was stored as an MD5
-- HA1 and a SHA-256 one (RFC 7616), but no challenge of Orchard's offers
-- SHA-256 (a response with it is refused before any digest is read): the
-- SHA-256 HA1 was a secret kept for nothing. New passwords store MD5 alone;
-- these go. An MD5 HA1 is kept for every user that had both.
DELETE FROM directory_digests WHERE algorithm = 'SHA-256';
`,
};
