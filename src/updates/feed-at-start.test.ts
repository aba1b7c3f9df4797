import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { DdmAdmin } from "../core/ddm-admin.ts";
import type { Pusher } from "../core/push.ts";
import { openStore } from "../store/index.ts";
import { SoftwareUpdates } from "./service.ts";

const FEED = fileURLToPath(new URL("../../test/fixtures/software-updates/pmv.json", import.meta.url));
const HOUR = 3_600_000;
const quiet = { info() {}, warn() {} };

// A process started with another feed than the one it last read, or with none read yet, reads it at its first
// tick: waiting an interval after the last (failed) attempt left devices without a target for an hour (walkthrough).
test("the first tick reads the feed when none was read yet, or the configured one is another", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-feed-"));
  const store = await openStore(undefined, dir);
  try {
    const updates = (url: string) =>
      new SoftwareUpdates({
        store,
        admin: new DdmAdmin(store),
        pusher: {} as Pusher,
        log: quiet,
        options: { url, refreshIntervalMs: HOUR },
      });
    const t0 = Date.now();
    // The first start's feed cannot be read (here a missing file; in the walkthrough, Apple's, offline): the
    // policy's own refresh is attempted and fails.
    await updates(`file:${path.join(dir, "missing.json")}`).putPolicy(
      "every-mac",
      { platform: "macOS", mode: "latest", deadline_days: 7 },
      t0,
    );
    assert.deepEqual([(await store.softwareUpdates.feed()).attemptedAt, (await store.softwareUpdates.feed()).fetchedAt], [t0, null]);
    // Restarted with a readable feed a minute later: read at its first tick, not an hour after the failed attempt.
    await updates(`file:${FEED}`).tick(t0 + 60_000);
    assert.equal((await store.softwareUpdates.feed()).fetchedAt, t0 + 60_000);
    // Started again with that same feed, within the interval: its copy is this feed's, so nothing is read again.
    await updates(`file:${FEED}`).tick(t0 + 120_000);
    assert.equal((await store.softwareUpdates.feed()).attemptedAt, t0 + 60_000);
    // Started with a feed that fails, then with the good one again: read at once, so the failure's error does not
    // stand for an interval beside a copy that reads well (walkthrough).
    await updates(`file:${path.join(dir, "missing.json")}`).tick(t0 + 180_000);
    assert.notEqual((await store.softwareUpdates.feed()).error, null);
    await updates(`file:${FEED}`).tick(t0 + 240_000);
    assert.deepEqual([(await store.softwareUpdates.feed()).attemptedAt, (await store.softwareUpdates.feed()).error], [t0 + 240_000, null]);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
