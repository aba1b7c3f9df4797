import type { Migration } from "./index.ts";

/** What a device enrolled before the inventory brings to it: its Authenticate facts (devices columns of the same names). */
const AUTHENTICATE_COLUMNS = [
  "serial_number",
  "platform",
  "product_name",
  "model",
  "model_name",
  "device_name",
  "os_version",
  "build_version",
  "imei",
  "meid",
];
/** Each of them learned from Authenticate, at the device's authenticated_at, as the learned JSON. */
const learnedFromAuthenticate = `'{' || ${AUTHENTICATE_COLUMNS.map((c) => `'"${c}":{"source":"authenticate","at":' || authenticated_at || '}'`).join(" || ',' || ")} || '}'`;

export const inventory: Migration = {
  version: 17,
  name: "inventory",
  sql: `
-- The inventory (store/inventory.ts): one row per device, each field's
-- latest value from whatever message brought it (Authenticate, a
-- DeviceInformation or SecurityInfo result, a DDM status report). learned
-- holds, per field, that message's kind and time as JSON
-- ({"os_version":{"source":"ddm-status","at":1765000000000}}). A row is
-- written only when a value changes. os_version_key is os_version's first
-- four numbers zero-padded (15.2 -> 00015.00002.00000.00000), so that
-- "below 15.2" is an index range.
CREATE TABLE inventory (
  device_id TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
  serial_number TEXT,
  platform TEXT,
  product_name TEXT,
  model TEXT,
  model_name TEXT,
  model_family TEXT,
  model_number TEXT,
  marketing_name TEXT,
  device_name TEXT,
  os_version TEXT,
  os_version_key TEXT,
  build_version TEXT,
  os_marketing_name TEXT,
  supplemental_build_version TEXT,
  supplemental_extra_version TEXT,
  imei TEXT,
  meid TEXT,
  is_supervised INTEGER,
  device_capacity DOUBLE PRECISION,
  available_device_capacity DOUBLE PRECISION,
  wifi_mac TEXT,
  bluetooth_mac TEXT,
  filevault_enabled INTEGER,
  passcode_present INTEGER,
  passcode_compliant INTEGER,
  system_integrity_protection INTEGER,
  firewall_enabled INTEGER,
  enrolled_via_dep INTEGER,
  user_approved_enrollment INTEGER,
  update_install_state TEXT,
  update_pending_version TEXT,
  update_pending_build TEXT,
  update_target_local_date_time TEXT,
  update_failure_count INTEGER,
  update_failure_reason TEXT,
  update_failure_at TEXT,
  update_install_reason TEXT,
  update_device_id TEXT,
  update_beta_enrollment TEXT,
  client_capabilities TEXT,
  learned TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
-- The list's filters; each with device_id so that a page in id order reads the index alone.
CREATE INDEX inventory_platform ON inventory (platform, device_id);
CREATE INDEX inventory_product_name ON inventory (product_name, device_id);
CREATE INDEX inventory_model_name ON inventory (model_name, device_id);
CREATE INDEX inventory_os_version ON inventory (os_version_key, device_id);
CREATE INDEX inventory_serial_number ON inventory (serial_number);
CREATE INDEX inventory_update_install_state ON inventory (update_install_state, device_id);

-- The user filter finds devices by their user channels' names (written at
-- TokenUpdate; device channels, NULL there, are left out of the index).
CREATE INDEX enrollments_user_short_name ON enrollments (user_short_name) WHERE user_short_name IS NOT NULL;
CREATE INDEX enrollments_user_id ON enrollments (user_id) WHERE user_id IS NOT NULL;

-- Platforms whose device channels get the built-in status subscription set
-- (core/inventory-subscription.ts): now, and as each device enrolls.
CREATE TABLE inventory_subscriptions (
  platform TEXT PRIMARY KEY,
  set_name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

-- Devices enrolled before the inventory start with what their Authenticate
-- said (os_version_key is filled when the store opens: InventoryStore.fillVersionKeys).
INSERT INTO inventory (device_id, ${AUTHENTICATE_COLUMNS.join(", ")}, learned, updated_at)
SELECT id, ${AUTHENTICATE_COLUMNS.join(", ")},
  ${learnedFromAuthenticate}, authenticated_at FROM devices;
`,
};
