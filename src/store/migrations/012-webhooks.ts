import type { Migration } from "./index.ts";

export const webhooks: Migration = {
  version: 12,
  name: "webhooks",
  sql: `
-- The webhook outbox (store/webhooks.ts): each event is written in the
-- transaction of the change it reports, with the exact body every delivery
-- sends (same event_id), and deleted once a receiver answered 2xx. due_at is
-- when the row may be claimed next: its creation, a claim's lease end (a
-- process that dies mid-delivery gives it up then), or its next retry.
-- leased is 1 while a process delivers it.
CREATE TABLE webhook_outbox (
  id {{serial}},
  event_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  enrollment_id TEXT,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  due_at BIGINT NOT NULL,
  leased INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_status INTEGER,
  last_error TEXT,
  last_attempt_at BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (due_at, id);

-- Totals and the last failure, for GET /v1/webhook (one row).
CREATE TABLE webhook_stats (
  name TEXT PRIMARY KEY,
  delivered BIGINT NOT NULL DEFAULT 0,
  failed BIGINT NOT NULL DEFAULT 0,
  dropped BIGINT NOT NULL DEFAULT 0,
  last_delivered_at BIGINT,
  last_failure_at BIGINT,
  last_failure_status INTEGER,
  last_failure_error TEXT,
  last_failure_event_id TEXT,
  last_failure_topic TEXT
);
INSERT INTO webhook_stats (name) VALUES ('webhook');
`,
};
