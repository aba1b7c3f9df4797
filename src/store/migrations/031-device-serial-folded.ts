import type { Migration } from "./index.ts";

export const deviceSerialFolded: Migration = {
  version: 31,
  name: "device-serial-folded",
  sql: `
-- A credential certificate names a device's serial number only if no other
-- enrolled device reported it too (store/ddm-credentials.ts deviceFacts), and
-- that comparison ignores letter case: RADIUS and VPN policies often match
-- names so, and a device that re-sent Authenticate with another's serial in
-- lower case got a certificate for it (review). This index keeps that
-- lookup one seek.
CREATE INDEX devices_serial_number_upper ON devices (UPPER(serial_number));
`,
};
