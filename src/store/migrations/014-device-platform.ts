import { platformSql } from "../../protocol/platform.ts";
import type { Migration } from "./index.ts";

export const devicePlatform: Migration = {
  version: 14,
  name: "device-platform",
  sql: `
-- The platform (macOS, iOS, ...) read from the Authenticate facts
-- (protocol/platform.ts), written at each Authenticate: a filter and a metric
-- label that needs no pattern match per row. Devices enrolled before it get
-- it from the facts they already sent.
ALTER TABLE devices ADD COLUMN platform TEXT;
UPDATE devices SET platform = ${platformSql("product_name", "model_name")};
CREATE INDEX devices_platform ON devices (platform);
`,
};
