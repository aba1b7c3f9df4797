import type { Migration } from "./index.ts";

export const ddmAssets: Migration = {
  version: 13,
  name: "ddm-assets",
  sql: `
-- Files Orchard serves to enrolled devices for Declarative Device Management
-- (src/store/ddm-assets.ts): the data of com.apple.asset.* declarations whose
-- Reference.DataURL is orchard:asset/<id>, and the .mobileconfig profiles of
-- com.apple.configuration.legacy declarations whose ProfileURL is
-- orchard:profile/<id>. sha256 is the lowercase hex SHA-256 of bytes; size
-- is its length in bytes.
CREATE TABLE ddm_assets (
  id TEXT PRIMARY KEY,
  content_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  bytes {{blob}} NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- signed: 1 for a CMS-signed profile (served as uploaded). The payload
-- identifier and display name are read from the profile's plist when present.
CREATE TABLE ddm_profiles (
  id TEXT PRIMARY KEY,
  size BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  signed INTEGER NOT NULL,
  payload_identifier TEXT,
  payload_display_name TEXT,
  bytes {{blob}} NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
`,
};
