import type { Migration } from "./index.ts";

export const userGuids: Migration = {
  version: 9,
  name: "user-guids",
  sql: `
-- GUIDs are compared in upper case (src/core/user-guid.ts): entries stored
-- before, in whatever case an operator typed, are brought to that form.
UPDATE directory_users SET guid = UPPER(guid) WHERE guid IS NOT NULL;
`,
};
