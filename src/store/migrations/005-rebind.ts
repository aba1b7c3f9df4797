import type { Migration } from "./index.ts";

export const rebind: Migration = {
  version: 5,
  name: "rebind",
  sql: `
-- A new identity certificate that sent Authenticate for a device bound to
-- another one, held until the policy lets it in (core/cert-binding.ts): the
-- latest one held per device, or the one an operator approved (approved_at),
-- which a later held one does not replace. pushed_at: when the device's
-- current identity was last pushed to prove it is alive.
CREATE TABLE rebind_holds (
  device_id TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
  cert_fingerprint TEXT NOT NULL,
  held_at BIGINT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  pushed_at BIGINT,
  approved_at BIGINT
);

-- When the device last sent CheckOut; cleared by its next Authenticate. A
-- device that checked out re-enrolls with any certificate at once.
ALTER TABLE devices ADD COLUMN checked_out_at BIGINT;
`,
};
