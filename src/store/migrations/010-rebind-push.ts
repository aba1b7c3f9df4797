import type { Migration } from "./index.ts";

export const rebindPush: Migration = {
  version: 10,
  name: "rebind-push",
  sql: `
-- rebind_holds becomes one row per device for everything held since its last
-- binding (core/cert-binding.ts): cert_fingerprint is the latest held
-- certificate (or the approved one), attempts counts every held attempt of
-- any certificate. The push to the current identity is per device, whatever
-- certificate is held: push_claimed_at rations it (one per interval),
-- pushed_at is when a push was accepted by APNs, the only push that counts
-- for a re-binding after silence. noted_at rations the enrollment.rebind_held
-- events and log lines (one per interval); unnoted counts the attempts since
-- the last one, noted_count the attempts the last one spoke for.
ALTER TABLE rebind_holds ADD COLUMN push_claimed_at BIGINT;
ALTER TABLE rebind_holds ADD COLUMN noted_at BIGINT;
ALTER TABLE rebind_holds ADD COLUMN unnoted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rebind_holds ADD COLUMN noted_count INTEGER NOT NULL DEFAULT 0;
UPDATE rebind_holds SET push_claimed_at = pushed_at;

-- Every distinct certificate held for a device since its last binding, so that
-- an operator sees all of them before approving one by its fingerprint. At
-- most a few dozen per device (RebindStore.hold); the binding clears them.
CREATE TABLE rebind_held_certs (
  device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  cert_fingerprint TEXT NOT NULL,
  first_held_at BIGINT NOT NULL,
  last_held_at BIGINT NOT NULL,
  attempts INTEGER NOT NULL,
  PRIMARY KEY (device_id, cert_fingerprint)
);
INSERT INTO rebind_held_certs (device_id, cert_fingerprint, first_held_at, last_held_at, attempts)
  SELECT device_id, cert_fingerprint, held_at, held_at, attempts FROM rebind_holds WHERE attempts > 0;
`,
};
