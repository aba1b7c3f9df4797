import type { Migration } from "./index.ts";

export const inventoryTimeZone: Migration = {
  version: 21,
  name: "inventory-time-zone",
  sql: `
-- The device's IANA time zone (DeviceInformation's TimeZone: iOS, iPadOS,
-- tvOS, visionOS; Macs do not report it): OS update deadlines are judged on
-- its clock (updates/targets.ts deadlineAt). NULL: not known.
ALTER TABLE inventory ADD COLUMN time_zone TEXT;
`,
};
