import type { Migration } from "./index.ts";

export const adeFetchId: Migration = {
  version: 25,
  name: "ade-fetch-id",
  sql: `
-- The full fetch of an ABM server's device list under way (a random id, set
-- by its first page; NULL when none is), and on each device the id of the
-- last full fetch that listed it. Apple's fetch answer lists the devices
-- assigned now and says nothing of the others: when a full fetch ends, every
-- device of the server not listed in it is marked removed, as a 'deleted' op
-- of a sync marks it (store/ade.ts applyPage). A fetch begun before this
-- migration has no id, and marks nothing when it ends.
ALTER TABLE ade_servers ADD COLUMN fetch_id TEXT;
ALTER TABLE ade_devices ADD COLUMN fetch_id TEXT;
`,
};
