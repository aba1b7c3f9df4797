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
    await store.softwareUpdates.putPolicy(
      {
        name: "p",
        platform: "macos",
        scope: "all",
        scopeSet: null,
        mode: "latest",
        targetOsVersion: null,
        targetBuildVersion: null,
        targetLocalDateTime: null,
        deadlineDays: 7,
        deadlineTime: null,
        detailsUrl: null,
        settings: null,
      },
      [],
      t0,
    );
    // The default feed, unreachable: attempted, nothing read.
    await store.softwareUpdates.feedFailed("https://gdmf.apple.com/v2/pmv", "getaddrinfo ENOTFOUND", t0);
    // Restarted with a file feed a minute later: read at once, not an hour after the failed attempt.
    await updates(`file:${FEED}`).tick(t0 + 60_000);
    const read = await store.softwareUpdates.feed();
    assert.equal(read.fetchedAt, t0 + 60_000);
    // The same process later: within the interval nothing is read again.
    const same = updates(`file:${FEED}`);
    await same.tick(t0 + 120_000); // its first tick: the stored copy is this feed's, so nothing new
    assert.equal((await store.softwareUpdates.feed()).attemptedAt, t0 + 60_000);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
