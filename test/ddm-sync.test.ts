// The DDM sync sweep (core/ddm-sync.ts) over many batches, on both stores:
// every due channel gets exactly one DeclarativeManagement command with its
// own tokens and exactly one push, a batch's pushes overlapping the next
// batch's queueing, and a failed push does not leave a push running after
// runOnce has answered.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Pusher } from "../src/core/push.ts";
import { DdmSync } from "../src/core/ddm-sync.ts";
import { parsePlistDict } from "../src/plist/index.ts";
import { openStore, type Store } from "../src/store/index.ts";
import { StoreUnavailable } from "../src/store/unavailable.ts";
import { seedEnrollments } from "./support/apns.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";

const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as ConstructorParameters<typeof DdmSync>[2];

/** Records each push call; `gate` holds a call until released, to see what runs meanwhile. */
class RecordingPusher implements Pusher {
  calls: string[][] = [];
  open = 0;
  maxOpen = 0;
  fail = false;
  async push(ids: readonly string[]) {
    this.calls.push([...ids]);
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    await new Promise((r) => setTimeout(r, 20));
    this.open--;
    if (this.fail) throw new Error("push failed");
    return new Map(ids.map((id) => [id, { pushId: `push-${id}` }]));
  }
}

await forEachBackend("the DDM sync sweep in batches", (backend) => {
  let store: Store;
  let dir: string;
  let drop: (() => Promise<void>) | undefined;
  let ids: string[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ddm-sync-"));
    let url = `sqlite:${path.join(dir, "o.db")}`;
    if (backend === "postgres") {
      const db = await createTestDatabase();
      url = db.url;
      drop = db.drop;
    }
    store = await openStore(url, dir);
    ids = (await seedEnrollments(store, 23, { prefix: "SYNC" })).map((r) => r.id);
    const now = Date.now();
    await store.ddm.putDeclaration(
      { Type: "com.apple.configuration.management.test", Identifier: "c", Payload: { Echo: "1" }, kind: "configuration" },
      { now, syncDueAt: null },
    );
    await store.ddm.addToSet("all", "c", { now, syncDueAt: null });
    await store.ddm.putDeclaration(
      { Type: "com.apple.configuration.management.test", Identifier: "d", Payload: { Echo: "2" }, kind: "configuration" },
      { now, syncDueAt: null },
    );
    await store.ddm.addToSet("some", "d", { now, syncDueAt: null });
    for (const [i, id] of ids.entries()) {
      await store.ddm.assign(id, "all", { now, syncDueAt: null });
      if (i % 2 === 0) await store.ddm.assign(id, "some", { now, syncDueAt: null });
    }
  });
  after(async () => {
    await store?.close();
    await drop?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("23 channels in batches of 5: one command and one push each, with the channel's own tokens", async () => {
    const pusher = new RecordingPusher();
    const sync = new DdmSync(store, pusher, log, { batch: 5 });
    const now = Date.now();
    await store.ddm.scheduleSync({ sets: ["all"] }, now);
    assert.equal(await sync.runOnce(now), 23);
    assert.equal(await store.ddm.dueCount(), 0);
    assert.deepEqual(
      pusher.calls.map((c) => c.length),
      [5, 5, 5, 5, 3],
    );
    assert.deepEqual(pusher.calls.flat().sort(), [...ids].sort());
    assert.equal(pusher.maxOpen, 1, "one batch's pushes in flight at a time");
    assert.equal(pusher.open, 0, "every push finished before runOnce answered");
    for (const [i, id] of ids.entries()) {
      const next = await store.commands.next(id, false);
      assert.ok(next, `a command for ${id}`);
      const command = parsePlistDict(next.command).Command as { RequestType: string; Data: Buffer };
      assert.equal(command.RequestType, "DeclarativeManagement");
      const tokens = JSON.parse(command.Data.toString("utf8"));
      assert.equal(tokens.SyncTokens.DeclarationsToken, (await store.ddm.channelTokens(id)).token, `${id}'s own token`);
      if (i > 0) {
        const same = i % 2 === 0 ? ids[0]! : ids[1]!;
        assert.equal(tokens.SyncTokens.DeclarationsToken, (await store.ddm.channelTokens(same)).token, "same sets, same token");
      }
    }
    assert.notEqual((await store.ddm.channelTokens(ids[0]!)).token, (await store.ddm.channelTokens(ids[1]!)).token);
  });

  test("a push that fails rejects runOnce, and no push is still running when it has", async () => {
    const pusher = new RecordingPusher();
    pusher.fail = true;
    const sync = new DdmSync(store, pusher, log, { batch: 5 });
    const now = Date.now();
    await store.ddm.scheduleSync({ sets: ["all"] }, now);
    await assert.rejects(sync.runOnce(now), /push failed/);
    assert.equal(pusher.open, 0);
    // The queueing was committed batch by batch: what was claimed has its command, the rest is still due.
    const left = await store.ddm.dueCount();
    assert.ok(left < 23, `${left} still due`);
    pusher.fail = false;
    assert.equal(await sync.runOnce(now), left);
    assert.equal(await store.ddm.dueCount(), 0);
  });
});

// A store outage failed every sweep, four a second, each a warning with a stack: 68 lines in 17 s (walkthrough).
test("sweeps failing in a store outage say so at most once per interval, with their count and no stack", async () => {
  const lines: Array<{ obj: Record<string, unknown>; msg?: string }> = [];
  const record = (obj: object, msg?: string) => lines.push({ obj: obj as Record<string, unknown>, msg });
  const failing = { ddm: { hasDue: () => Promise.reject(new StoreUnavailable(new Error("connect ECONNREFUSED"))) } } as unknown as Store;
  const sync = new DdmSync(failing, new RecordingPusher(), { info: record, warn: record, error: record, debug() {} }, { intervalMs: 10 });
  sync.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await sync.stop();
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0]!.msg, "DDM sync sweep failed: store unavailable");
  assert.equal(lines[0]!.obj.failures, 1);
  assert.equal(lines[0]!.obj.err, undefined, "no error object, so no stack");
});
