import type { Migration } from "./index.ts";

export const updateZoneAsked: Migration = {
  version: 22,
  name: "update-zone-asked",
  sql: `
-- When Orchard queued a DeviceInformation asking an update policy's device
-- for its TimeZone (updates/zone-ask.ts): its deadline is judged on that
-- zone's clock once known. NULL: not asked for its current target.
ALTER TABLE update_devices ADD COLUMN zone_asked_at BIGINT;
`,
};
