import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { NEXT_COMMAND_SQL, PRUNE_RESULTS_SQL, RESULTS_SQL } from "../src/store/commands.ts";
import { QUEUE_STATS_SQL } from "../src/store/stats.ts";
import { eventListQuery, PRUNE_EVENTS_SQL } from "../src/store/events.ts";
import { CHANNEL_SETS_SQL, DECLARATION_ITEMS_SQL } from "../src/store/ddm.ts";
import { PRUNE_STATUS_ERRORS_SQL } from "../src/store/ddm-status.ts";
import { inventoryListQuery } from "../src/store/inventory.ts";
import { ENABLED_PAGE_SQL } from "../src/store/push.ts";
import { forEachBackend, type Backend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// The hot queries must be served by their indexes. On PostgreSQL sequential
// scans are switched off for the check: on tiny test tables the planner would
// rightly prefer them, which says nothing about a fleet-sized table.
const CASES = [
  { name: "next command for an enrollment", sql: NEXT_COMMAND_SQL, params: ["X"], index: "command_queue_next" },
  { name: "results by command", sql: RESULTS_SQL, params: ["X"], index: "command_queue_command" },
  { name: "events by enrollment", ...eventListQuery({ enrollmentId: "X", limit: 100 }), index: "events_enrollment" },
  {
    name: "events by enrollment, newest first",
    ...eventListQuery({ enrollmentId: "X", after: 10, newestFirst: true, limit: 100 }),
    index: "events_enrollment",
  },
  // A push to all reads the enabled channels a page at a time, by the primary key from the last id on.
  { name: "push to all: a page of channels", sql: ENABLED_PAGE_SQL, params: ["X", 1000], index: "enrollments_pkey|autoindex_enrollments" },
  { name: "retention of results", sql: PRUNE_RESULTS_SQL, params: [0], index: "command_queue_done" },
  { name: "queue depth and oldest (/metrics)", sql: QUEUE_STATS_SQL, params: [], index: "command_queue_next" },
  { name: "retention of events", sql: PRUNE_EVENTS_SQL, params: [0], index: "events_at" },
  // DDM: a channel's sets (tokens, declaration-items) by the primary key, whatever the backend names it.
  {
    name: "DDM tokens: a channel's sets",
    sql: CHANNEL_SETS_SQL,
    params: ["X"],
    index: "ddm_enrollment_sets_pkey|autoindex_ddm_enrollment_sets",
  },
  {
    name: "DDM declaration-items",
    sql: DECLARATION_ITEMS_SQL,
    params: ["X"],
    index: "ddm_enrollment_sets_pkey|autoindex_ddm_enrollment_sets",
  },
  { name: "retention of DDM status errors", sql: PRUNE_STATUS_ERRORS_SQL, params: [0], index: "ddm_status_errors_at" },
  // The inventory's list: each filter by its index; a page without one in device id order by the primary key.
  { name: "inventory page", ...inventoryListQuery({ after: "X", limit: 100 }), index: "inventory_pkey|autoindex_inventory" },
  { name: "inventory by platform", ...inventoryListQuery({ platform: "macOS", after: "X", limit: 100 }), index: "inventory_platform" },
  { name: "inventory by model", ...inventoryListQuery({ model: "Mac14,2", limit: 100 }), index: "inventory_product_name" },
  { name: "inventory by OS version", ...inventoryListQuery({ osVersion: "15.2", limit: 100 }), index: "inventory_os_version" },
  // A range and the page's order: SQLite (without ANALYZE) walks the primary key in order and stops at the page's
  // end, PostgreSQL takes the range index. Both measured at 100,000 devices: docs/inventory.md.
  {
    name: "inventory below an OS version",
    ...inventoryListQuery({ osVersionBelow: "15.2", limit: 100 }),
    index: "inventory_os_version|autoindex_inventory",
  },
  { name: "inventory by serial", ...inventoryListQuery({ serialNumber: "C02X", limit: 100 }), index: "inventory_serial_number" },
  { name: "inventory by user", ...inventoryListQuery({ user: "dana", limit: 100 }), index: "enrollments_user_short_name" },
  {
    name: "inventory by update state",
    ...inventoryListQuery({ updateInstallState: "failed", limit: 100 }),
    index: "inventory_update_install_state",
  },
];

await forEachBackend("query plans", (backend: Backend) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer([], backend);
  });
  after(() => server.stop());

  for (const c of CASES) {
    test(`${c.name} uses ${c.index}`, async () => {
      const params = "params" in c ? c.params : [];
      const plan =
        backend === "sqlite"
          ? (await server.store.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${c.sql}`, params)).map((r) => r.detail).join("\n")
          : await server.store.db.transaction(async (tx) => {
              await tx.exec("SET LOCAL enable_seqscan = off");
              const rows = await tx.all<{ "QUERY PLAN": string }>(`EXPLAIN ${c.sql}`, params);
              return rows.map((r) => r["QUERY PLAN"]).join("\n");
            });
      assert.match(plan, new RegExp(c.index), plan);
    });
  }
});
