// The store contract of Declarative Device Management (store/ddm.ts,
// store/ddm-status.ts), run on both backends by test/store-contract.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { StatusReport } from "../../src/protocol/ddm.ts";
import { declarationsToken, EMPTY_SET_TOKEN, serverToken, setToken } from "../../src/protocol/ddm-tokens.ts";
import { ASSIGN_CHUNK, type NewDeclaration } from "../../src/store/ddm.ts";
import { MAX_CHANNEL_STATUS_VALUES } from "../../src/store/ddm-status.ts";
import type { Store } from "../../src/store/index.ts";

export function ddmStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`Store contract, DDM: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    const T0 = 1_700_000_000_000;
    const fresh = (what: string) => `${what}-${randomUUID()}`;
    const quiet = { now: T0, syncDueAt: null };
    const config = (identifier: string, payload: unknown = { Echo: "x" }): NewDeclaration => ({
      Type: "com.apple.configuration.management.test",
      Identifier: identifier,
      Payload: payload,
      kind: "configuration",
    });
    const storedSetToken = async (set: string) =>
      (await store.db.get<{ token: string }>("SELECT token FROM ddm_sets WHERE name = ?", [set]))?.token;

    test("a ServerToken is the content's: key order is not content, a change is, touch is", async () => {
      const id = fresh("com.example.d");
      const first = await store.ddm.putDeclaration(config(id, { A: 1, B: [1, { C: 2, D: 3 }] }), quiet);
      assert.equal(first.outcome, "created");
      assert.equal(first.serverToken, serverToken(config(id, { B: [1, { D: 3, C: 2 }], A: 1 }), 0));
      assert.deepEqual(await store.ddm.putDeclaration(config(id, { B: [1, { D: 3, C: 2 }], A: 1 }), quiet), {
        outcome: "unchanged",
        serverToken: first.serverToken,
      });
      const changed = await store.ddm.putDeclaration(config(id, { A: 2, B: [1, { C: 2, D: 3 }] }), quiet);
      assert.equal(changed.outcome, "changed");
      assert.notEqual(changed.serverToken, first.serverToken);
      assert.equal(await store.ddm.touch(id, quiet), true);
      const touched = (await store.ddm.declaration(id))!;
      assert.notEqual(touched.serverToken, changed.serverToken);
      assert.equal(touched.touched, 1);
      assert.equal(await store.ddm.touch(fresh("none"), quiet), false);
    });

    test("a set's token follows its declarations; a channel's DeclarationsToken follows its sets", async () => {
      const set = fresh("set");
      const channel = fresh("ENR");
      const a = fresh("com.example.a");
      const b = fresh("com.example.b");
      assert.deepEqual(await store.ddm.channelTokens(channel), { token: declarationsToken([]), changedAt: 0 });
      const ta = (await store.ddm.putDeclaration(config(a), quiet)).serverToken;
      const tb = (await store.ddm.putDeclaration(config(b), quiet)).serverToken;
      assert.equal(await store.ddm.addToSet(set, a, quiet), true);
      assert.equal(await store.ddm.addToSet(set, a, quiet), false);
      assert.equal(await store.ddm.addToSet(set, fresh("none"), quiet), "no_declaration");
      assert.equal(await storedSetToken(set), setToken([{ identifier: a, serverToken: ta }]));
      assert.equal(await store.ddm.assign(channel, set, { now: T0 + 5, syncDueAt: null }), true);
      const one = await store.ddm.channelTokens(channel);
      assert.deepEqual(one, {
        token: declarationsToken([{ name: set, token: setToken([{ identifier: a, serverToken: ta }]) }]),
        changedAt: T0 + 5,
      });
      await store.ddm.addToSet(set, b, { now: T0 + 10, syncDueAt: null });
      const two = await store.ddm.channelTokens(channel);
      assert.notEqual(two.token, one.token);
      assert.equal(two.changedAt, T0 + 10);
      assert.deepEqual(
        (await store.ddm.declarationItems(channel)).map((i) => i.identifier),
        [a, b].sort(),
      );
      // A changed declaration changes its set's token, hence the channel's.
      const tb2 = (await store.ddm.putDeclaration(config(b, { Echo: "y" }), quiet)).serverToken;
      assert.notEqual(tb2, tb);
      assert.equal(
        await storedSetToken(set),
        setToken([
          { identifier: a, serverToken: ta },
          { identifier: b, serverToken: tb2 },
        ]),
      );
      assert.notEqual((await store.ddm.channelTokens(channel)).token, two.token);
      assert.equal((await store.ddm.channelDeclaration(channel, "configuration", b))?.serverToken, tb2);
      assert.equal(await store.ddm.channelDeclaration(channel, "activation", b), undefined);
      assert.equal(await store.ddm.channelDeclaration(fresh("OTHER"), "configuration", b), undefined);
      assert.equal(await store.ddm.deleteDeclaration(b), "in_use");
      assert.equal(await store.ddm.removeFromSet(set, b, quiet), true);
      assert.equal(await store.ddm.deleteDeclaration(b), "deleted");
      assert.equal(await store.ddm.deleteDeclaration(b), "absent");
      await store.ddm.removeFromSet(set, a, quiet);
      assert.equal(await storedSetToken(set), EMPTY_SET_TOKEN);
      assert.equal(await store.ddm.unassign(channel, undefined, quiet), true);
      assert.equal((await store.ddm.channelTokens(channel)).token, declarationsToken([]));
    });

    test("concurrent changes to one set's declarations leave the set's token right", async () => {
      const set = fresh("set");
      const ids = Array.from({ length: 8 }, (_, i) => fresh(`com.example.c${i}`));
      for (const id of ids) {
        await store.ddm.putDeclaration(config(id), quiet);
        await store.ddm.addToSet(set, id, quiet);
      }
      await Promise.all(ids.map((id, i) => store.ddm.putDeclaration(config(id, { Echo: `v${i}` }), quiet)));
      const items = await Promise.all(
        ids.map(async (id) => ({ identifier: id, serverToken: (await store.ddm.declaration(id))!.serverToken })),
      );
      assert.equal(await storedSetToken(set), setToken(items));
    });

    test("changes make the channels they reach due once; each due channel is claimed by one caller", async () => {
      const set = fresh("set");
      const id = fresh("com.example.s");
      const channels = [fresh("E1"), fresh("E2"), fresh("E3")];
      await store.ddm.putDeclaration(config(id), quiet);
      await store.ddm.addToSet(set, id, quiet);
      for (const c of channels) await store.ddm.assign(c, set, quiet);
      const due = { now: T0, syncDueAt: T0 + 1000 };
      await store.ddm.putDeclaration(config(id, { Echo: "2" }), due);
      await store.ddm.touch(id, { now: T0, syncDueAt: T0 + 5000 });
      assert.deepEqual(await store.ddm.claimDue(T0 + 999, 100), []);
      // Two claimers at once never get the same channel (on PostgreSQL the
      // later one may get none of the rows the earlier took and stop short:
      // those left stay due for the next sweep).
      const [x, y] = await Promise.all([store.ddm.claimDue(T0 + 1000, 2), store.ddm.claimDue(T0 + 1000, 2)]);
      const rest = await store.ddm.claimDue(T0 + 1000, 100);
      assert.deepEqual([...x!, ...y!, ...rest].sort(), [...channels].sort());
      assert.deepEqual(await store.ddm.claimDue(T0 + 10_000, 100), []);
      assert.equal(await store.ddm.scheduleSync({ declarations: [id], ids: [channels[0]!] }, T0), 3);
      assert.deepEqual((await store.ddm.claimDue(T0, 100)).sort(), [...channels].sort());
    });

    test("assignMany: chunked, each changed channel due once, repeats and absent ones unchanged", async () => {
      const set = fresh("set");
      const id = fresh("com.example.bulk");
      await store.ddm.putDeclaration(config(id), quiet);
      await store.ddm.addToSet(set, id, quiet);
      // More than two chunks; one channel already holds the set.
      const channels = Array.from({ length: 2 * ASSIGN_CHUNK + 7 }, (_, i) => `${fresh("BULK")}-${i}`);
      assert.equal(await store.ddm.assign(channels[0]!, set, quiet), true);
      const dueBefore = await store.ddm.dueCount();
      const due = { now: T0 + 1, syncDueAt: T0 + 1000 };
      assert.equal(await store.ddm.assignMany(set, channels, true, due), channels.length - 1);
      assert.equal(await store.ddm.dueCount(), dueBefore + channels.length - 1, "one due row per channel that changed");
      assert.deepEqual(await store.ddm.enrollmentSets(channels[ASSIGN_CHUNK + 3]!), [set]);
      assert.equal(await store.ddm.assignMany(set, channels, true, due), 0, "nothing changes twice");
      assert.equal(await store.ddm.dueCount(), dueBefore + channels.length - 1, "and nothing more is due");
      // Taking it from some (and from channels that never had it): only those that had it change.
      const some = [...channels.slice(0, ASSIGN_CHUNK + 1), fresh("NEVER")];
      assert.equal(await store.ddm.assignMany(set, some, false, quiet), ASSIGN_CHUNK + 1);
      assert.deepEqual(await store.ddm.enrollmentSets(channels[0]!), []);
      assert.deepEqual(await store.ddm.enrollmentSets(channels[ASSIGN_CHUNK + 1]!), [set]);
      assert.equal(await store.ddm.assignMany(set, [], true, due), 0);
      const claimed = new Set(await store.ddm.claimDue(T0 + 1000, 10 * ASSIGN_CHUNK));
      assert.ok(channels.slice(1).every((c) => claimed.has(c)));
      assert.ok(!claimed.has(channels[0]!), "assigned without a sync due (quiet)");
    });

    // Races of two transactions: one holds its change open while the other
    // runs. Correct either way the scheduler orders them; without the locks,
    // PostgreSQL let the second one read around the open change.
    const hold = () => new Promise((r) => setTimeout(r, 300));

    test("race: a set's new member while the declaration changes: the set's token has the new ServerToken", async () => {
      const id = fresh("com.example.race");
      const set = fresh("race-set");
      await store.ddm.putDeclaration(config(id, { Echo: "old" }), quiet);
      let adding: Promise<unknown> | undefined;
      const changed = await store.transaction(async (tx) => {
        const put = await tx.ddm.putDeclaration(config(id, { Echo: "new" }), quiet);
        adding = store.ddm.addToSet(set, id, quiet);
        await hold();
        return put.serverToken;
      });
      await adding;
      assert.equal(await storedSetToken(set), setToken([{ identifier: id, serverToken: changed }]));
    });

    test("race: a sweep claiming a channel while a change makes it due again: it waits, then reads the new tokens", async () => {
      const id = fresh("com.example.race-due");
      const set = fresh("race-due-set");
      const channel = fresh("RACE");
      await store.ddm.putDeclaration(config(id, { Echo: "old" }), quiet);
      await store.ddm.addToSet(set, id, quiet);
      await store.ddm.assign(channel, set, { now: T0, syncDueAt: T0 }); // due already
      let sweep: Promise<{ claimed: string[]; token: string }> | undefined;
      await store.transaction(async (tx) => {
        await tx.ddm.putDeclaration(config(id, { Echo: "new" }), { now: T0, syncDueAt: T0 });
        sweep = (async () => {
          const claimed = await store.ddm.claimDue(T0 + 10, 100_000);
          return { claimed, token: (await store.ddm.channelTokens(channel)).token };
        })();
        await hold();
      });
      const { claimed, token } = await sweep!;
      const final = (await store.ddm.channelTokens(channel)).token;
      if (claimed.includes(channel)) assert.equal(token, final, "the sweep that took the channel read its new tokens");
      else assert.ok((await store.ddm.claimDue(T0 + 10, 100_000)).includes(channel), "else the channel is still due");
    });

    const status = (o: Partial<StatusReport>): StatusReport => ({ fullReport: false, declarations: [], values: [], errors: [], ...o });
    /** Declarations stored and given to the channel, in a set of its own. */
    const given = async (channel: string, ...identifiers: string[]) => {
      const set = fresh("status-set");
      for (const x of identifiers) {
        await store.ddm.putDeclaration(config(x), quiet);
        await store.ddm.addToSet(set, x, quiet);
      }
      await store.ddm.assign(channel, set, quiet);
    };

    test("status: merged, replaced by a full report; changes returned; errors pruned; a few reports kept", async () => {
      const channel = fresh("ENR");
      const [a, b] = [fresh("com.example.sa"), fresh("com.example.sb")];
      await given(channel, a, b);
      const d = (identifier: string, valid: string) => ({
        identifier,
        kind: "configuration" as const,
        active: true,
        valid,
        serverToken: "t1",
        reasons: valid === "invalid" ? [{ code: "Error.X" }] : null,
      });
      const first = await store.ddmStatus.record(
        channel,
        status({ declarations: [d(a, "valid"), d(b, "invalid")], values: [{ path: "device.x", value: 1 }] }),
        "{}",
        "s1",
        T0,
      );
      assert.deepEqual(
        first.changes.map((c) => [c.now.identifier, c.before]),
        [
          [a, null],
          [b, null],
        ],
      );
      const second = await store.ddmStatus.record(
        channel,
        status({ declarations: [d(a, "valid"), d(b, "valid")], values: [{ path: "device.y", value: "v" }] }),
        "{}",
        "s2",
        T0 + 1,
      );
      assert.deepEqual(
        second.changes.map((c) => [c.now.identifier, c.before]),
        [[b, { active: true, valid: "invalid" }]],
      );
      assert.deepEqual(
        (await store.ddmStatus.values(channel)).map((v) => [v.path, v.value, v.statusId]),
        [
          ["device.x", 1, "s1"],
          ["device.y", "v", "s2"],
        ],
      );
      await store.ddmStatus.record(channel, status({ fullReport: true, declarations: [d(a, "valid")], values: [] }), "{}", "s3", T0 + 2);
      assert.deepEqual(
        (await store.ddmStatus.declarations([channel])).map((s) => s.identifier),
        [a],
      );
      assert.deepEqual(await store.ddmStatus.values(channel), []);
      // A full report that names what is stored keeps it, with its own status id and time; the rest goes.
      await store.ddmStatus.record(
        channel,
        status({
          declarations: [d(b, "valid")],
          values: [
            { path: "device.x", value: 1 },
            { path: "device.y", value: 2 },
          ],
        }),
        "{}",
        "s3b",
        T0 + 2,
      );
      const same = await store.ddmStatus.record(
        channel,
        status({ fullReport: true, declarations: [d(a, "valid")], values: [{ path: "device.x", value: 1 }] }),
        "{}",
        "s3c",
        T0 + 3,
      );
      assert.deepEqual(same.changes, []);
      assert.deepEqual(
        (await store.ddmStatus.declarations([channel])).map((s) => [s.identifier, s.statusId, s.updatedAt]),
        [[a, "s3c", T0 + 3]],
      );
      assert.deepEqual(
        (await store.ddmStatus.values(channel)).map((v) => [v.path, v.value, v.statusId, v.updatedAt]),
        [["device.x", 1, "s3c", T0 + 3]],
      );
      const errors = await store.ddmStatus.errors(channel, 10);
      assert.deepEqual(
        errors.map((e) => [e.path, e.statusId]),
        [["management.declarations.configurations", "s1"]],
      );
      assert.ok((await store.ddmStatus.pruneErrors(T0 + 1)) >= 1);
      assert.deepEqual(await store.ddmStatus.errors(channel, 10), []);
      for (let i = 0; i < 7; i++) await store.ddmStatus.record(channel, status({}), `{"n":${i}}`, `r${i}`, T0 + 10 + i);
      assert.equal((await store.ddmStatus.report(channel, { index: 0 }))?.report, '{"n":6}');
      assert.equal((await store.ddmStatus.report(channel, { statusId: "r3" }))?.index, 3);
      assert.equal(await store.ddmStatus.report(channel, { index: 5 }), undefined);
      assert.equal(await store.ddmStatus.report(channel, { statusId: "r1" }), undefined);
    });

    test("status: a report writes only the rows it changes; each row reads as last seen in the newest report that named it", async () => {
      const channel = fresh("ENR");
      const [a, b] = [fresh("com.example.wa"), fresh("com.example.wb")];
      await given(channel, a, b);
      const d = (identifier: string, serverToken = "t1") => ({
        identifier,
        kind: "configuration" as const,
        active: true,
        valid: "valid",
        serverToken,
        reasons: null,
      });
      const full = (id: string, at: number, x = 1, tokenOfB = "t1") =>
        store.ddmStatus.record(
          channel,
          status({
            fullReport: true,
            declarations: [d(a), d(b, tokenOfB)],
            values: [
              { path: "device.x", value: x },
              { path: "device.y", value: "y" },
            ],
          }),
          "{}",
          id,
          at,
        );
      /** The rows as stored: the status id each was last written with. */
      const written = async () => [
        ...(
          await store.db.all<{ k: string; status_id: string }>(
            "SELECT identifier AS k, status_id FROM ddm_status_declarations WHERE enrollment_id = ? ORDER BY identifier",
            [channel],
          )
        ).map((r) => [r.k, r.status_id]),
        ...(
          await store.db.all<{ k: string; status_id: string }>(
            "SELECT path AS k, status_id FROM ddm_status_values WHERE enrollment_id = ? ORDER BY path",
            [channel],
          )
        ).map((r) => [r.k, r.status_id]),
      ];
      /** What the API gives: each row's status id and time. */
      const seen = async () => [
        ...(await store.ddmStatus.declarations([channel])).map((s) => [s.identifier, s.statusId, s.updatedAt]),
        ...(await store.ddmStatus.values(channel)).map((v) => [v.path, v.statusId, v.updatedAt]),
      ];
      await full("f1", T0);
      // The same again: nothing is written but the report itself, and every row reads as seen in f2.
      await full("f2", T0 + 1);
      assert.deepEqual(await written(), [
        [a, "f1"],
        [b, "f1"],
        ["device.x", "f1"],
        ["device.y", "f1"],
      ]);
      assert.deepEqual(await seen(), [
        [a, "f2", T0 + 1],
        [b, "f2", T0 + 1],
        ["device.x", "f2", T0 + 1],
        ["device.y", "f2", T0 + 1],
      ]);
      // A report that is not full names b and device.x: those read as seen in it, the others in f2.
      await store.ddmStatus.record(channel, status({ declarations: [d(b)], values: [{ path: "device.x", value: 1 }] }), "{}", "p3", T0 + 2);
      assert.deepEqual(await seen(), [
        [a, "f2", T0 + 1],
        [b, "p3", T0 + 2],
        ["device.x", "p3", T0 + 2],
        ["device.y", "f2", T0 + 1],
      ]);
      // A full report changing b's token and device.x writes those two rows; all read as seen in f4.
      await full("f4", T0 + 3, 2, "t2");
      assert.deepEqual(await written(), [
        [a, "f1"],
        [b, "f4"],
        ["device.x", "f4"],
        ["device.y", "f1"],
      ]);
      assert.deepEqual(await seen(), [
        [a, "f4", T0 + 3],
        [b, "f4", T0 + 3],
        ["device.x", "f4", T0 + 3],
        ["device.y", "f4", T0 + 3],
      ]);
      assert.equal((await store.ddmStatus.declarations([channel])).find((s) => s.identifier === b)?.serverToken, "t2");
      assert.deepEqual(
        (await store.ddmStatus.values(channel)).map((v) => [v.path, v.value]),
        [
          ["device.x", 2],
          ["device.y", "y"],
        ],
      );
    });
    test("status: only the channel's declarations are kept; a channel holds at most MAX_CHANNEL_STATUS_VALUES values", async () => {
      const channel = fresh("CAP");
      const known = fresh("com.example.known");
      await given(channel, known);
      const d = (identifier: string) => ({
        identifier,
        kind: "configuration" as const,
        active: false,
        valid: "invalid",
        serverToken: "t",
        reasons: null,
      });
      // Another channel's declaration: stored, but not this channel's to report on.
      const others = fresh("com.example.others");
      await given(fresh("OTHER"), others);
      const unknownIds = [others, ...Array.from({ length: 600 }, (_, i) => fresh(`made-up-${i}`))];
      // The device files its own under another kind: kept under the declaration's.
      const misfiled = { ...d(known), kind: "asset" as const };
      const first = await store.ddmStatus.record(channel, status({ declarations: [misfiled, ...unknownIds.map(d)] }), "{}", "s1", T0);
      assert.deepEqual(
        first.changes.map((c) => [c.now.identifier, c.now.kind]),
        [[known, "configuration"]],
      );
      assert.equal(first.unknownDeclarations, 601);
      assert.deepEqual(
        (await store.ddmStatus.declarations([channel])).map((s) => [s.identifier, s.kind]),
        [[known, "configuration"]],
      );
      assert.equal((await store.ddmStatus.errors(channel, 1000)).length, 1, "an error row for the known invalid one only");

      const values = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({ path: `p.${String(from + i).padStart(5, "0")}`, value: i }));
      const max = MAX_CHANNEL_STATUS_VALUES;
      assert.equal((await store.ddmStatus.record(channel, status({ values: values(0, max - 10) }), "{}", "s2", T0)).refusedValues, 0);
      // 10 new paths fit, 15 more do not; a stored path is still updated.
      const over = await store.ddmStatus.record(
        channel,
        status({ values: [{ path: "p.00000", value: "updated" }, ...values(max - 10, 25)] }),
        "{}",
        "s3",
        T0,
      );
      assert.equal(over.refusedValues, 15);
      const stored = await store.ddmStatus.values(channel);
      assert.equal(stored.length, max);
      assert.equal(stored[0]!.value, "updated");
      assert.equal(stored.at(-1)!.path, `p.${String(max - 1).padStart(5, "0")}`);
      assert.equal((await store.ddmStatus.record(channel, status({ values: values(max + 100, 1) }), "{}", "s4", T0)).refusedValues, 1);
      // A full report replaces them all: it always fits.
      const full = await store.ddmStatus.record(channel, status({ fullReport: true, values: values(max + 200, max) }), "{}", "s5", T0);
      assert.equal(full.refusedValues, 0);
      assert.equal((await store.ddmStatus.values(channel)).length, max);
    });

    test("compliance: per declaration of a set, its channels reporting the current token valid, not, or nothing", async () => {
      const set = fresh("set");
      const id = fresh("com.example.k");
      const token = (await store.ddm.putDeclaration(config(id), quiet)).serverToken;
      await store.ddm.addToSet(set, id, quiet);
      const [good, bad, stale, silent] = [fresh("G"), fresh("B"), fresh("S"), fresh("N")];
      for (const c of [good, bad, stale, silent]) await store.ddm.assign(c!, set, quiet);
      const report = (serverToken: string, valid: string) =>
        status({ declarations: [{ identifier: id, kind: "configuration", active: true, valid, serverToken, reasons: null }] });
      await store.ddmStatus.record(good!, report(token, "valid"), "{}", "x", T0);
      await store.ddmStatus.record(bad!, report(token, "invalid"), "{}", "x", T0);
      await store.ddmStatus.record(stale!, report("old", "valid"), "{}", "x", T0);
      assert.deepEqual(await store.ddmStatus.compliance(set), {
        enrollments: 4,
        declarations: [{ identifier: id, serverToken: token, compliant: 1, failing: 1, pending: 2 }],
      });
    });
  });
}
