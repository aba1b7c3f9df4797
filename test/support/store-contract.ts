// The contract every Store backend passes. SQLite runs it in
// test/store-contract.test.ts; the PostgreSQL backend will call storeContract
// with its own open(). Tests share one store per backend and use fresh ids, so
// a backend may hand out one database for the whole suite.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { resolveChannel, type Channel } from "../../src/protocol/enrollment.ts";
import type { Store } from "../../src/store/index.ts";
import type { NewEvent } from "../../src/store/event-types.ts";
import { MAX_HELD_CERTS } from "../../src/store/rebinds.ts";
import { UNENROLLED_SESSION_KEPT_MS } from "../../src/store/user-sessions.ts";

export function storeContract(name: string, open: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    const T0 = 1_700_000_000_000;
    const newId = () => `DEV-${randomUUID().toUpperCase()}`;

    async function authenticate(deviceId: string, o: { fingerprint?: string; now?: number; serial?: string } = {}) {
      await store.enrollments.authenticate({
        deviceId,
        topic: "com.apple.mgmt.test",
        certFingerprint: o.fingerprint ?? `fp-${deviceId}`,
        message: Buffer.from(`<auth ${deviceId}/>`),
        now: o.now ?? T0,
        facts: { serialNumber: o.serial ?? `SN-${deviceId}`, model: "Mac14,2", osVersion: "14.6", productName: "Mac14,2" },
      });
    }

    function tokenUpdate(
      channel: Channel,
      o: { now?: number; unlock?: Buffer; magic?: string; shortName?: string; longName?: string } = {},
    ) {
      return store.enrollments.tokenUpdate({
        channel,
        topic: "com.apple.mgmt.test",
        pushToken: "aabbcc",
        pushMagic: o.magic ?? "magic",
        unlockToken: o.unlock,
        awaitingConfiguration: false,
        userShortName: o.shortName,
        userLongName: o.longName,
        message: Buffer.from("<tokenupdate/>"),
        now: o.now ?? T0,
      });
    }

    async function enrolledDevice(): Promise<string> {
      const id = newId();
      await authenticate(id);
      await tokenUpdate(device(id));
      return id;
    }

    const device = (udid: string) => resolveChannel({ UDID: udid });
    const user = (udid: string, userId: string) => resolveChannel({ UDID: udid, UserID: userId });

    function cmd(requestType = "DeviceInformation", uuid = randomUUID().toUpperCase()) {
      return { commandUuid: uuid, requestType, command: Buffer.from(`<cmd ${uuid}/>`) };
    }

    describe("settings", () => {
      test("getOrCreate makes the value once and returns it ever after", async () => {
        const name = `secret-${randomUUID()}`;
        let made = 0;
        const first = await store.settings.getOrCreate(name, () => (made++, Buffer.from("first")));
        const second = await store.settings.getOrCreate(name, () => (made++, Buffer.from("second")));
        assert.ok(first.equals(Buffer.from("first")));
        assert.ok(second.equals(Buffer.from("first")));
        assert.ok(made >= 1);
      });
    });

    describe("enrollments", () => {
      test("Authenticate binds the certificate; the channel exists from its first TokenUpdate", async () => {
        const id = newId();
        assert.equal((await store.enrollments.bindingOf(id))?.fingerprint, undefined);
        await authenticate(id, { fingerprint: `fp-a-${id}` });
        assert.equal((await store.enrollments.bindingOf(id))?.fingerprint, `fp-a-${id}`);
        assert.equal(await store.enrollments.deviceByCertFingerprint(`fp-a-${id}`), id);
        assert.equal(await store.enrollments.deviceByCertFingerprint(`fp-none-${id}`), undefined);
        assert.equal(await store.enrollments.get(id), undefined);
        assert.deepEqual(await store.enrollments.existing([id]), new Set());

        assert.equal(await tokenUpdate(device(id), { now: T0 + 10 }), 1);
        const e = await store.enrollments.get(id);
        assert.deepEqual(e, {
          id,
          deviceId: id,
          type: "Device",
          userId: null,
          userShortName: null,
          userLongName: null,
          enabled: true,
          topic: "com.apple.mgmt.test",
          pushToken: "aabbcc",
          pushMagic: "magic",
          tokenUpdateCount: 1,
          awaitingConfiguration: false,
          serialNumber: `SN-${id}`,
          model: "Mac14,2",
          modelName: null,
          productName: "Mac14,2",
          platform: "macOS",
          deviceName: null,
          osVersion: "14.6",
          buildVersion: null,
          createdAt: T0 + 10,
          updatedAt: T0 + 10,
          lastSeenAt: T0 + 10,
        });
        assert.equal(await tokenUpdate(device(id), { now: T0 + 20, magic: "magic-2" }), 2);
        const e2 = await store.enrollments.get(id);
        assert.equal(e2!.pushMagic, "magic-2");
        assert.equal(e2!.tokenUpdateCount, 2);
        assert.equal(e2!.createdAt, T0 + 10);
        assert.equal(e2!.updatedAt, T0 + 20);
        assert.deepEqual(await store.enrollments.existing([id, `${id}:nobody`]), new Set([id]));
      });

      test("Authenticate again re-binds, keeps the channel rows, disables them", async () => {
        const id = await enrolledDevice();
        await tokenUpdate(user(id, "U1"), { shortName: "u1", longName: "User One" });
        await authenticate(id, { fingerprint: `fp-new-${id}`, now: T0 + 100, serial: "SN-NEW" });
        assert.equal((await store.enrollments.bindingOf(id))?.fingerprint, `fp-new-${id}`);
        assert.equal(await store.enrollments.deviceByCertFingerprint(`fp-${id}`), undefined);
        const d = await store.enrollments.get(id);
        const u = await store.enrollments.get(`${id}:U1`);
        assert.equal(d!.enabled, false);
        assert.equal(d!.serialNumber, "SN-NEW");
        assert.equal(u!.enabled, false);
        assert.equal(u!.userShortName, "u1");
        assert.equal(await tokenUpdate(device(id)), 1, "a re-enrollment restarts the TokenUpdate tally");
        assert.equal((await store.enrollments.get(id))!.enabled, true);
        assert.equal((await store.enrollments.get(`${id}:U1`))!.enabled, false);
      });

      test("Authenticate guarded by `replaces` binds only while the device is bound to it; a refused one writes nothing", async () => {
        const id = await enrolledDevice();
        const guarded = async (fingerprint: string, replaces: string | null, now: number) =>
          (await store.enrollments.authenticate({
            deviceId: id,
            topic: "t",
            certFingerprint: fingerprint,
            replaces,
            message: Buffer.from("a"),
            now,
            facts: { serialNumber: "SN-GUARD" },
          })) !== undefined;
        await store.rebinds.hold(id, `fp-held-${id}`, T0 + 50, 1000);
        assert.equal(await guarded(`fp-other-${id}`, `fp-stale-${id}`, T0 + 100), false);
        assert.equal(await guarded(`fp-other-${id}`, null, T0 + 100), false, "null: only a new device, or the same certificate");
        assert.equal((await store.enrollments.bindingOf(id))?.fingerprint, `fp-${id}`);
        assert.equal((await store.enrollments.get(id))!.enabled, true, "nothing written");
        assert.equal((await store.enrollments.get(id))!.serialNumber, `SN-${id}`);
        assert.equal((await store.rebinds.get(id))!.certFingerprint, `fp-held-${id}`);
        assert.equal(await guarded(`fp-next-${id}`, `fp-${id}`, T0 + 200), true);
        assert.equal((await store.enrollments.bindingOf(id))?.fingerprint, `fp-next-${id}`);
        assert.equal(await store.rebinds.get(id), undefined, "a binding settles what was held");
        assert.equal(await guarded(`fp-next-${id}`, null, T0 + 300), true, "the same certificate again");
      });

      test("re-binding holds: a held certificate does not replace an approved one; the push is claimed once per interval", async () => {
        const id = await enrolledDevice();
        const b = await store.rebinds.binding(id);
        assert.equal(b!.certFingerprint, `fp-${id}`);
        assert.equal(b!.enrolled, true);
        assert.equal((await store.rebinds.hold(id, "fp-a", T0 + 1, 1000)).hold.attempts, 1);
        assert.equal((await store.rebinds.hold(id, "fp-a", T0 + 2, 1000)).hold.attempts, 2);
        assert.equal(await store.rebinds.claimPush(id, T0 + 2, 1000), true);
        assert.equal(await store.rebinds.claimPush(id, T0 + 3, 1000), false);
        assert.equal(await store.rebinds.claimPush(id, T0 + 1002, 1000), true);
        assert.equal((await store.rebinds.get(id))!.pushedAt, null, "claimed is not pushed");
        await store.rebinds.pushed(id, T0 + 1002);
        await store.rebinds.pushed(id, T0 + 900);
        assert.equal((await store.rebinds.get(id))!.pushedAt, T0 + 1002, "an older push does not move it back");
        const approved = await store.rebinds.approve(id, "fp-a", T0 + 5);
        assert.equal(approved.certFingerprint, "fp-a");
        assert.equal(approved.approvedAt, T0 + 5);
        const after = await store.rebinds.hold(id, "fp-b", T0 + 6, 1000);
        assert.equal(after.hold.certFingerprint, "fp-a");
        assert.equal(after.hold.approvedAt, T0 + 5);
        assert.equal(after.hold.attempts, 3, "attempts of every certificate count");
        assert.equal((await store.rebinds.approve(id, "fp-c", T0 + 7)).certFingerprint, "fp-c");
        await authenticate(id, { now: T0 + 8 });
        assert.equal(await store.rebinds.get(id), undefined);
        assert.deepEqual(await store.rebinds.heldCertificates(id), [], "a binding clears the held certificates");
        assert.equal(
          (await store.rebinds.binding(id))!.enrolled,
          true,
          "re-authenticating (channels disabled until TokenUpdate) is still enrolled",
        );
        await store.enrollments.checkOut(id, T0 + 9);
        assert.equal((await store.rebinds.binding(id))!.enrolled, false, "checked out");
        await authenticate(id, { now: T0 + 10 });
        assert.equal((await store.rebinds.binding(id))!.enrolled, true, "Authenticate ends the checkout");
        const fresh = newId();
        await authenticate(fresh);
        assert.equal((await store.rebinds.binding(fresh))!.enrolled, false, "never finished enrolling");
      });

      test("held attempts: every distinct certificate counted; one note per interval per device, whichever certificate", async () => {
        const id = await enrolledDevice();
        const first = await store.rebinds.hold(id, "fp-x", T0 + 10, 1000);
        assert.deepEqual(first.note, { attempts: 1 }, "the first attempt is noted");
        // Alternating certificates within the interval: quiet, and the push stays claimed.
        assert.equal(await store.rebinds.claimPush(id, T0 + 10, 1000), true);
        for (let i = 0; i < 6; i++) {
          const h = await store.rebinds.hold(id, i % 2 ? "fp-x" : "fp-y", T0 + 20 + i, 1000);
          assert.equal(h.note, undefined);
          assert.equal(h.hold.certFingerprint, i % 2 ? "fp-x" : "fp-y", "the latest held one");
          assert.equal(await store.rebinds.claimPush(id, T0 + 20 + i, 1000), false);
        }
        const later = await store.rebinds.hold(id, "fp-y", T0 + 1010, 1000);
        assert.deepEqual(later.note, { attempts: 7 }, "the next note speaks for the quiet attempts too");
        assert.equal(later.hold.attempts, 8);
        assert.equal(later.hold.notedAt, T0 + 1010);
        assert.equal((await store.rebinds.hold(id, "fp-x", T0 + 1011, 1000)).note, undefined);
        const certs = await store.rebinds.heldCertificates(id);
        assert.deepEqual(
          certs.map((c) => [c.certFingerprint, c.attempts, c.firstHeldAt, c.lastHeldAt]),
          [
            ["fp-x", 5, T0 + 10, T0 + 1011],
            ["fp-y", 4, T0 + 20, T0 + 1010],
          ],
        );
        // Distinct certificates are remembered up to a bound; more are still counted in the hold.
        for (let i = 0; i < MAX_HELD_CERTS + 5; i++) await store.rebinds.hold(id, `fp-many-${i}`, T0 + 2000 + i, 1000);
        assert.equal((await store.rebinds.heldCertificates(id)).length, MAX_HELD_CERTS);
        assert.equal((await store.rebinds.get(id))!.attempts, 9 + MAX_HELD_CERTS + 5);
      });

      test("UnlockToken is kept unless replaced", async () => {
        const id = await enrolledDevice();
        assert.equal(await store.enrollments.unlockToken(id), undefined);
        await tokenUpdate(device(id), { unlock: Buffer.from([1, 2, 3]) });
        await tokenUpdate(device(id));
        assert.deepEqual(await store.enrollments.unlockToken(id), Buffer.from([1, 2, 3]));
        await tokenUpdate(device(id), { unlock: Buffer.from([4, 5, 6, 7]) });
        assert.deepEqual(await store.enrollments.unlockToken(id), Buffer.from([4, 5, 6, 7]));
      });

      test("user channels: id, type, names kept when a later TokenUpdate omits them", async () => {
        const id = await enrolledDevice();
        assert.equal(await tokenUpdate(user(id, "GUID-1"), { shortName: "jane", longName: "Jane Doe" }), 1);
        await tokenUpdate(user(id, "GUID-1"));
        const u = await store.enrollments.get(`${id}:GUID-1`);
        assert.equal(u!.type, "User");
        assert.equal(u!.deviceId, id);
        assert.equal(u!.userId, "GUID-1");
        assert.equal(u!.userShortName, "jane");
        assert.equal(u!.userLongName, "Jane Doe");
        assert.equal(u!.tokenUpdateCount, 2);
        assert.equal(u!.serialNumber, `SN-${id}`);
      });

      test("a User Enrollment user channel is never taken over by another device's TokenUpdate", async () => {
        const victim = await enrolledDevice();
        const attacker = await enrolledDevice();
        const userId = `EU-${randomUUID()}`;
        const ue = (enrollmentId: string) => resolveChannel({ EnrollmentID: enrollmentId, EnrollmentUserID: userId });
        assert.equal(await tokenUpdate(ue(victim), { magic: "victim" }), 1);
        assert.equal(await store.enrollments.deviceOfChannel(userId), victim);
        assert.equal(await tokenUpdate(ue(attacker), { magic: "attacker", now: T0 + 1 }), undefined, "no row written");
        const u = await store.enrollments.get(userId);
        assert.equal(u!.deviceId, victim);
        assert.equal(u!.pushMagic, "victim");
        assert.equal(u!.tokenUpdateCount, 1);
        assert.equal(u!.updatedAt, T0);
        assert.equal(await tokenUpdate(ue(victim), { magic: "victim-2" }), 2, "its own device still updates it");
        assert.equal(await store.enrollments.deviceOfChannel("NO-SUCH-CHANNEL"), undefined);
      });

      test("CheckOut disables the device and its user channels only", async () => {
        const id = await enrolledDevice();
        const other = await enrolledDevice();
        await tokenUpdate(user(id, "U1"));
        assert.equal(await store.enrollments.checkOut(id, T0 + 5), 2);
        assert.equal((await store.enrollments.get(id))!.enabled, false);
        assert.equal((await store.enrollments.get(`${id}:U1`))!.enabled, false);
        assert.equal((await store.enrollments.get(`${id}:U1`))!.updatedAt, T0 + 5);
        assert.equal((await store.enrollments.get(other))!.enabled, true);
      });

      test("bootstrap token: set, replace, clear; Authenticate clears it", async () => {
        const id = await enrolledDevice();
        assert.equal(await store.enrollments.bootstrapToken(id), undefined);
        await store.enrollments.setBootstrapToken(id, Buffer.from([0, 255, 1]));
        assert.deepEqual(await store.enrollments.bootstrapToken(id), Buffer.from([0, 255, 1]));
        await store.enrollments.setBootstrapToken(id, Buffer.from("two"));
        assert.deepEqual(await store.enrollments.bootstrapToken(id), Buffer.from("two"));
        await store.enrollments.setBootstrapToken(id, null);
        assert.equal(await store.enrollments.bootstrapToken(id), undefined);
        await store.enrollments.setBootstrapToken(id, Buffer.from("three"));
        await authenticate(id);
        assert.equal(await store.enrollments.bootstrapToken(id), undefined);
        assert.equal(await store.enrollments.bootstrapToken(newId()), undefined);
      });

      test("list: filters and cursor pagination in id order", async () => {
        const id = await enrolledDevice();
        const serial = `SERIAL-${randomUUID()}`;
        await authenticate(id, { serial });
        await tokenUpdate(device(id));
        for (const u of ["A", "B", "C", "D"]) await tokenUpdate(user(id, u));
        const all = await store.enrollments.list({ deviceId: id, limit: 100 });
        assert.deepEqual(
          all.map((e) => e.id),
          [id, `${id}:A`, `${id}:B`, `${id}:C`, `${id}:D`],
        );

        const page1 = await store.enrollments.list({ deviceId: id, limit: 2 });
        const page2 = await store.enrollments.list({ deviceId: id, limit: 2, after: page1.at(-1)!.id });
        const page3 = await store.enrollments.list({ deviceId: id, limit: 2, after: page2.at(-1)!.id });
        assert.deepEqual(
          [...page1, ...page2, ...page3].map((e) => e.id),
          all.map((e) => e.id),
        );
        assert.equal(page3.length, 1);

        assert.deepEqual(
          (await store.enrollments.list({ deviceId: id, type: "User", limit: 100 })).map((e) => e.id),
          [`${id}:A`, `${id}:B`, `${id}:C`, `${id}:D`],
        );
        assert.deepEqual(
          (await store.enrollments.list({ serialNumber: serial, type: "Device", limit: 100 })).map((e) => e.id),
          [id],
        );
        await store.enrollments.checkOut(id, T0);
        await tokenUpdate(user(id, "B"));
        assert.deepEqual(
          (await store.enrollments.list({ deviceId: id, enabled: true, limit: 100 })).map((e) => e.id),
          [`${id}:B`],
        );
        assert.equal((await store.enrollments.list({ deviceId: id, enabled: false, limit: 100 })).length, 4);
      });

      test("markSeen only moves lastSeenAt forward", async () => {
        const id = await enrolledDevice();
        await store.enrollments.markSeen(new Map([[id, T0 + 1000]]));
        assert.equal((await store.enrollments.get(id))!.lastSeenAt, T0 + 1000);
        await store.enrollments.markSeen(
          new Map([
            [id, T0 + 500],
            [`${id}:unknown`, T0 + 2000],
          ]),
        );
        assert.equal((await store.enrollments.get(id))!.lastSeenAt, T0 + 1000);
        await store.enrollments.markSeen(new Map());
        await store.enrollments.markSeen(new Map([[id, T0 + 3000]]));
        assert.equal((await store.enrollments.get(id))!.lastSeenAt, T0 + 3000);
      });

      test("markSeen writes a batch larger than one statement, each id its own time", async () => {
        // 1,233 ids: statements of 500, 500, 100, 100, 25, 5, 1, 1, 1. Known ids at the edges of each (in the
        // Map's order, as SQLite writes them; PostgreSQL sorts the ids first), the rest unknown.
        const at = [0, 499, 500, 999, 1000, 1099, 1100, 1199, 1200, 1224, 1225, 1229, 1230, 1232];
        const ids = new Map<number, string>();
        for (const i of at) ids.set(i, await enrolledDevice());
        const batch = new Map<string, number>();
        for (let i = 0; i < 1_233; i++) batch.set(ids.get(i) ?? `unknown-${i}`, T0 + 10_000 + i);
        await store.enrollments.markSeen(batch);
        for (const [i, id] of ids) assert.equal((await store.enrollments.get(id))!.lastSeenAt, T0 + 10_000 + i, `the id at ${i}`);
      });
    });

    describe("commands", () => {
      test("a re-enrollment discards the queued commands: Discarded in their results, returned to the caller, never sent", async () => {
        const id = await enrolledDevice();
        const a = cmd("DeviceInformation");
        const done = cmd("ProfileList");
        await store.commands.enqueue(done, [id], T0 + 1);
        await store.commands.report(id, done.commandUuid, "Acknowledged", Buffer.from("<ack/>"), T0 + 2);
        await store.commands.enqueue(a, [id], T0 + 3);
        const r = await store.enrollments.authenticate({
          deviceId: id,
          topic: "t",
          certFingerprint: `fp-${id}`,
          message: Buffer.from("a"),
          now: T0 + 4,
          facts: {},
        });
        assert.deepEqual(r, { discarded: [{ enrollmentId: id, commandUuid: a.commandUuid }] });
        assert.deepEqual(await store.commands.results(a.commandUuid), [
          { enrollmentId: id, status: "Discarded", active: false, notNowCount: 0, result: null, updatedAt: T0 + 4 },
        ]);
        assert.equal((await store.commands.results(done.commandUuid))[0]!.status, "Acknowledged", "answered commands keep their result");
        assert.equal(await store.commands.next(id, false), undefined);
        assert.deepEqual(await store.commands.queue(id), []);
      });

      test("enqueue, next in FIFO order, report, results, queue", async () => {
        const id = await enrolledDevice();
        const a = cmd("DeviceInformation");
        const b = cmd("ProfileList");
        await store.commands.enqueue(a, [id], T0 + 1);
        await store.commands.enqueue(b, [id], T0 + 2);
        assert.deepEqual(await store.commands.next(id, false), { commandUuid: a.commandUuid, command: a.command });
        assert.deepEqual(await store.commands.command(a.commandUuid), { ...a, createdAt: T0 + 1 });
        assert.deepEqual(
          (await store.commands.queue(id)).map((q) => [q.commandUuid, q.requestType, q.status, q.notNowCount, q.createdAt]),
          [
            [a.commandUuid, "DeviceInformation", "Queued", 0, T0 + 1],
            [b.commandUuid, "ProfileList", "Queued", 0, T0 + 2],
          ],
        );

        const result = Buffer.from("<ack/>");
        assert.equal(await store.commands.report(id, a.commandUuid, "Acknowledged", result, T0 + 3), "recorded");
        assert.deepEqual(await store.commands.next(id, false), { commandUuid: b.commandUuid, command: b.command });
        assert.deepEqual(await store.commands.results(a.commandUuid), [
          { enrollmentId: id, status: "Acknowledged", active: false, notNowCount: 0, result, updatedAt: T0 + 3 },
        ]);
        assert.equal(await store.commands.report(id, a.commandUuid, "Error", Buffer.from("<late/>"), T0 + 4), "duplicate");
        assert.deepEqual((await store.commands.results(a.commandUuid))[0]!.result, result);
        assert.equal(await store.commands.report(id, "NO-SUCH-UUID", "Acknowledged", result, T0 + 4), "unknown");
        assert.equal(await store.commands.report(`${id}:other`, b.commandUuid, "Acknowledged", result, T0 + 4), "unknown");

        assert.equal(await store.commands.report(id, b.commandUuid, "Error", Buffer.from("<err/>"), T0 + 5), "recorded");
        assert.equal(await store.commands.next(id, false), undefined);
        assert.deepEqual(await store.commands.queue(id), []);
        assert.equal(await store.commands.command("NO-SUCH-UUID"), undefined);
        assert.deepEqual(await store.commands.results("NO-SUCH-UUID"), []);
      });

      test("NotNow: recorded with a tally; next(neverTriedOnly) skips it", async () => {
        const id = await enrolledDevice();
        const a = cmd();
        const b = cmd();
        await store.commands.enqueue(a, [id], T0);
        await store.commands.enqueue(b, [id], T0);
        assert.equal(await store.commands.report(id, a.commandUuid, "NotNow", Buffer.from("<nn/>"), T0 + 1), "recorded");
        assert.equal((await store.commands.next(id, true))!.commandUuid, b.commandUuid);
        assert.equal((await store.commands.next(id, false))!.commandUuid, a.commandUuid);
        assert.equal(await store.commands.report(id, b.commandUuid, "NotNow", Buffer.from("<nn/>"), T0 + 2), "recorded");
        assert.equal(await store.commands.next(id, true), undefined);
        assert.equal(await store.commands.report(id, a.commandUuid, "NotNow", Buffer.from("<nn2/>"), T0 + 3), "recorded");
        const [r] = await store.commands.results(a.commandUuid);
        assert.equal(r!.status, "NotNow");
        assert.equal(r!.active, true);
        assert.equal(r!.notNowCount, 2);
        assert.deepEqual(r!.result, Buffer.from("<nn2/>"));
        assert.equal(await store.commands.report(id, a.commandUuid, "Acknowledged", Buffer.from("<ok/>"), T0 + 4), "recorded");
        const [done] = await store.commands.results(a.commandUuid);
        assert.deepEqual([done!.status, done!.active, done!.notNowCount], ["Acknowledged", false, 2]);
      });

      test("one command for several channels; a duplicate CommandUUID is refused and changes nothing", async () => {
        const d1 = await enrolledDevice();
        const d2 = await enrolledDevice();
        const a = cmd();
        await store.commands.enqueue(a, [d1, d2], T0);
        assert.deepEqual((await store.commands.results(a.commandUuid)).map((r) => r.enrollmentId).sort(), [d1, d2].sort());
        await assert.rejects(
          store.commands.enqueue({ ...a, command: Buffer.from("<other/>") }, [d1], T0),
          (err: any) => err.status === 409,
        );
        assert.deepEqual((await store.commands.command(a.commandUuid))!.command, a.command);
        assert.equal((await store.commands.queue(d1)).length, 1);
      });

      test("enqueue is all or nothing: an unknown channel rolls the whole command back", async () => {
        const d1 = await enrolledDevice();
        const a = cmd();
        await assert.rejects(store.commands.enqueue(a, [d1, `${d1}:no-such-channel`], T0));
        assert.equal(await store.commands.command(a.commandUuid), undefined);
        assert.deepEqual(await store.commands.queue(d1), []);
      });

      test("clear removes waiting commands of the given channels; results stay", async () => {
        const d1 = await enrolledDevice();
        const d2 = await enrolledDevice();
        const a = cmd();
        const b = cmd();
        await store.commands.enqueue(a, [d1, d2], T0);
        await store.commands.enqueue(b, [d1], T0);
        await store.commands.report(d1, a.commandUuid, "Acknowledged", Buffer.from("<ok/>"), T0);
        assert.equal(await store.commands.clear([d1]), 1);
        assert.deepEqual(await store.commands.queue(d1), []);
        assert.equal((await store.commands.queue(d2)).length, 1);
        assert.deepEqual(
          (await store.commands.results(a.commandUuid)).map((r) => [r.enrollmentId, r.status]).sort(),
          [
            [d1, "Acknowledged"],
            [d2, "Queued"],
          ].sort(),
        );
        assert.equal(await store.commands.clear([d1, d2, "nobody"]), 1);
      });

      test("Authenticate clears the active queues of the device and its users, not others'", async () => {
        const id = await enrolledDevice();
        const other = await enrolledDevice();
        await tokenUpdate(user(id, "U1"));
        const done = cmd();
        const a = cmd();
        const b = cmd();
        await store.commands.enqueue(done, [id], T0);
        await store.commands.report(id, done.commandUuid, "Acknowledged", Buffer.from("<ok/>"), T0);
        await store.commands.enqueue(a, [id, other], T0);
        await store.commands.enqueue(b, [`${id}:U1`], T0);
        await authenticate(id, { now: T0 + 9 });
        assert.deepEqual(await store.commands.queue(id), []);
        assert.deepEqual(await store.commands.queue(`${id}:U1`), []);
        assert.deepEqual(
          (await store.commands.queue(other)).map((q) => q.commandUuid),
          [a.commandUuid],
        );
        assert.equal((await store.commands.results(done.commandUuid))[0]!.status, "Acknowledged");
      });
    });

    describe("events", () => {
      test("add and list with filters and a cursor", async () => {
        const id = newId();
        await store.events.add({ type: "contract.one", enrollmentId: id, detail: { n: 1 } } as unknown as NewEvent, T0 + 1);
        await store.events.add({ type: "contract.two", enrollmentId: id } as unknown as NewEvent, T0 + 2);
        await store.events.add(
          { type: "contract.one", enrollmentId: id, detail: { n: 3, nested: { ok: true } } } as unknown as NewEvent,
          T0 + 3,
        );
        const all = await store.events.list({ enrollmentId: id, limit: 10 });
        assert.deepEqual(
          all.map((e) => [e.type, e.at, e.enrollmentId, e.detail]),
          [
            ["contract.one", T0 + 1, id, { n: 1 }],
            ["contract.two", T0 + 2, id, null],
            ["contract.one", T0 + 3, id, { n: 3, nested: { ok: true } }],
          ],
        );
        assert.ok(all[0]!.id < all[1]!.id && all[1]!.id < all[2]!.id);
        assert.deepEqual(
          (await store.events.list({ enrollmentId: id, type: "contract.one", limit: 10 })).map((e) => e.at),
          [T0 + 1, T0 + 3],
        );
        assert.deepEqual(
          (await store.events.list({ enrollmentId: id, since: T0 + 2, limit: 10 })).map((e) => e.at),
          [T0 + 2, T0 + 3],
        );
        const page = await store.events.list({ enrollmentId: id, limit: 1, after: all[0]!.id });
        assert.deepEqual(
          page.map((e) => e.id),
          [all[1]!.id],
        );
      });
    });

    describe("transactions", () => {
      test("a failing transaction leaves nothing behind", async () => {
        const name = `tx-${randomUUID()}`;
        await assert.rejects(
          store.db.transaction(async (tx) => {
            await tx.run("INSERT INTO settings (name, value) VALUES (?, ?)", [name, Buffer.from("x")]);
            throw new Error("boom");
          }),
          /boom/,
        );
        assert.equal(await store.db.get("SELECT name FROM settings WHERE name = ?", [name]), undefined);
        assert.equal(await store.ping(), true);
      });

      test("statements issued while a transaction is open do not join it", async () => {
        const inside = `tx-in-${randomUUID()}`;
        const outside = `tx-out-${randomUUID()}`;
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const tx = store.db
          .transaction(async (t) => {
            await t.run("INSERT INTO settings (name, value) VALUES (?, ?)", [inside, Buffer.from("x")]);
            await gate;
            throw new Error("rolled back");
          })
          .catch(() => "rejected");
        // Issued while the transaction waits on the gate.
        const write = store.db.run("INSERT INTO settings (name, value) VALUES (?, ?)", [outside, Buffer.from("y")]);
        await new Promise((r) => setTimeout(r, 10));
        release();
        assert.equal(await tx, "rejected");
        assert.equal(await write, 1);
        assert.equal(await store.db.get("SELECT name FROM settings WHERE name = ?", [inside]), undefined);
        assert.deepEqual(await store.db.get("SELECT name FROM settings WHERE name = ?", [outside]), { name: outside });
      });
    });

    describe("operators (store/operators.ts)", () => {
      const account = (name: string) => ({ name, role: "auditor" as const, passwordHash: "scrypt$test" });

      test("a name is taken ignoring case; the store's index refuses a case variant however it is written", async () => {
        const name = `Case-${randomUUID().slice(0, 8)}`;
        assert.equal(await store.operators.add(account(name), T0), undefined);
        assert.equal(await store.operators.add(account(name.toLowerCase()), T0), name);
        assert.equal(await store.operators.add(account(name), T0), name);
        // Not only add's check: the unique index on lower(name) (migration 28).
        await assert.rejects(
          store.db.run(
            "INSERT INTO operators (name, role, password_hash, disabled, created_at, updated_at, password_changed_at) VALUES (?, 'auditor', 'x', 0, 0, 0, 0)",
            [name.toUpperCase()],
          ),
          /unique|UNIQUE/,
        );
        assert.equal((await store.operators.get(name.toLowerCase())) === undefined, true, "names are still looked up exactly");
      });

      test("two adds of case variants at once: one account, the other told the name that took it", async () => {
        const name = `Race-${randomUUID().slice(0, 8)}`;
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let written!: () => void;
        const inserted = new Promise<void>((r) => (written = r));
        // The first add's row is written and not yet committed when the second is asked for
        // (on PostgreSQL the second's NOT EXISTS cannot see it; the index makes it wait).
        const first = store.transaction(async (tx) => {
          const taken = await tx.operators.add(account(name), T0);
          written();
          await gate;
          return taken;
        });
        await inserted;
        const second = store.operators.add(account(name.toLowerCase()), T0);
        await new Promise((r) => setTimeout(r, 50));
        release();
        assert.deepEqual(await Promise.all([first, second]), [undefined, name]);
        const rows = await store.db.all<{ name: string }>("SELECT name FROM operators WHERE lower(name) = lower(?)", [name]);
        assert.deepEqual(
          rows.map((r) => r.name),
          [name],
        );
      });
    });

    describe("logins (store/logins.ts)", () => {
      const REALM = "contract.realm";

      async function challenged() {
        const deviceId = await enrolledDevice();
        const userId = randomUUID().toUpperCase();
        const enrollmentId = `${deviceId}:${userId}`;
        const shortName = `u${randomUUID().slice(0, 8)}`;
        await store.directory.put({ shortName, guid: userId, digests: [{ realm: REALM, algorithm: "MD5", ha1: "a".repeat(32) }] }, T0);
        const event = { type: "userauth.challenged", detail: { short_name: shortName } };
        await store.logins.begin({ enrollmentId, deviceId, userId, state: "challenged", shortName }, event, T0);
        return { deviceId, userId, enrollmentId, shortName };
      }

      function issue(c: Awaited<ReturnType<typeof challenged>>, nonceId: string, responseHash = "r1", pairLimit = 3) {
        return store.logins.issueToken({
          enrollmentId: c.enrollmentId,
          deviceId: c.deviceId,
          shortName: c.shortName,
          tokenHash: "f".repeat(64),
          nonce: { id: nonceId, expiresAt: T0 + 60_000, responseHash },
          issued: { type: "userauth.authenticated", detail: { short_name: c.shortName } },
          refused: { type: "userauth.failed", detail: { cause: "no-challenge", short_name: c.shortName } },
          limits: { since: T0, pair: pairLimit, device: 3 * pairLimit, user: 3 * pairLimit },
          now: T0 + 1,
        });
      }

      const eventsOf = async (enrollmentId: string) =>
        (await store.events.list({ enrollmentId, limit: 10 })).map((e) => [e.type, e.detail] as const);

      test("markTokensUsed writes the time of authenticated sessions only", async () => {
        const authenticated = await challenged();
        assert.equal(await issue(authenticated, randomUUID()), "issued");
        const waiting = await challenged();
        await store.userSessions.markTokensUsed(
          new Map([
            [authenticated.enrollmentId, T0 + 5_000],
            [waiting.enrollmentId, T0 + 6_000],
            ["unknown:user", T0 + 7_000],
          ]),
        );
        assert.equal((await store.userSessions.get(authenticated.enrollmentId))?.tokenLastUsedAt, T0 + 5_000);
        assert.equal((await store.userSessions.get(waiting.enrollmentId))?.tokenLastUsedAt, null, "no token: no use");
        await store.userSessions.markTokensUsed(new Map());
        assert.equal((await store.userSessions.get(authenticated.enrollmentId))?.tokenLastUsedAt, T0 + 5_000);
      });

      test("prune deletes a day-old handshake that never became a user channel, and nothing else", async () => {
        const DAY = UNENROLLED_SESSION_KEPT_MS;
        const made = async (state: "challenged" | "declined" | "zero-length", at: number) => {
          const deviceId = await enrolledDevice();
          const userId = randomUUID().toUpperCase();
          const enrollmentId = `${deviceId}:${userId}`;
          await store.userSessions.begin({ enrollmentId, deviceId, userId, state, shortName: undefined }, at);
          return { deviceId, userId, enrollmentId };
        };
        const old = [await made("challenged", T0), await made("declined", T0), await made("zero-length", T0)];
        const recent = await made("challenged", T0 + 2);
        // A user channel (its TokenUpdate came) challenged again: kept, whatever its age.
        const enrolled = await made("challenged", T0);
        await tokenUpdate(user(enrolled.deviceId, enrolled.userId));
        // A token was issued: kept (its channel's TokenUpdate may come later).
        const issued = await challenged();
        assert.equal(await issue(issued, randomUUID()), "issued");
        await store.db.run("UPDATE user_sessions SET updated_at = ? WHERE enrollment_id = ?", [T0, issued.enrollmentId]);

        // Other tests' handshakes of this store may go too: at least these.
        assert.ok((await store.userSessions.prune(T0 + DAY + 1, 60_000)) >= old.length);
        for (const o of old) assert.equal(await store.userSessions.get(o.enrollmentId), undefined, o.enrollmentId);
        for (const kept of [recent, enrolled, issued]) assert.ok(await store.userSessions.get(kept.enrollmentId), kept.enrollmentId);
      });

      test("entryForUser: the entry with the GUID first, else a GUID-less one with the short name, never another GUID's", async () => {
        const tag = randomUUID().slice(0, 8);
        const [guid, other] = [randomUUID().toUpperCase(), randomUUID().toUpperCase()];
        await store.directory.put({ shortName: `byguid-${tag}`, guid }, T0);
        await store.directory.put({ shortName: `plain-${tag}`, guid: null }, T0);
        await store.directory.put({ shortName: `taken-${tag}`, guid: other }, T0);
        const nameOf = async (g: string, shortName: string | undefined) => (await store.directory.entryForUser(g, shortName))?.shortName;
        assert.equal(await nameOf(guid, `plain-${tag}`), `byguid-${tag}`, "the GUID wins over a short name");
        assert.equal(await nameOf(randomUUID().toUpperCase(), `plain-${tag}`), `plain-${tag}`);
        assert.equal(await nameOf(randomUUID().toUpperCase(), `taken-${tag}`), undefined, "an entry with another GUID");
        assert.equal(await nameOf(randomUUID().toUpperCase(), undefined), undefined);
        assert.equal(await nameOf(guid, undefined), `byguid-${tag}`);
      });

      test("directory put: digests for a realm replace all the user's digests in that realm, of every hash; other realms stay", async () => {
        const shortName = `d${randomUUID().slice(0, 8)}`;
        const both = (realm: string, c: string) => [
          { realm, algorithm: "MD5" as const, ha1: c.repeat(32) },
          { realm, algorithm: "SHA-256" as const, ha1: c.repeat(64) },
        ];
        await store.directory.put({ shortName, digests: [...both(REALM, "a"), ...both("other.realm", "b")] }, T0);
        // An htdigest import: MD5 only, for one realm.
        await store.directory.put({ shortName, digests: [{ realm: REALM, algorithm: "MD5", ha1: "c".repeat(32) }] }, T0);
        const held = (await store.directory.get(shortName))!.digests.map((d) => `${d.realm} ${d.algorithm}`);
        assert.deepEqual(held, [`${REALM} MD5`, "other.realm MD5", "other.realm SHA-256"]);
        assert.equal(await store.directory.ha1(shortName, REALM, "MD5"), "c".repeat(32));
        assert.equal(await store.directory.ha1(shortName, REALM, "SHA-256"), undefined, "the old password's SHA-256 digest is gone");
        assert.equal(await store.directory.ha1(shortName, "other.realm", "SHA-256"), "b".repeat(64));
        // No digests given: the user's digests are left as they are.
        await store.directory.put({ shortName, fullName: "D", digests: [] }, T0);
        assert.equal((await store.directory.get(shortName))!.digests.length, 3);
      });

      describe("challenge reads the entry and begins only when its state challenges", () => {
        const CHALLENGE_KNOWN_OR_NONE = new Set(["none", "managed"] as const);
        const SENT = { nonceId: "0".repeat(32), offers: "MD5" };
        async function message(entry?: { shortName: string; guid: string | null; state?: "managed" | "declined" }) {
          const deviceId = await enrolledDevice();
          const userId = randomUUID().toUpperCase();
          if (entry) await store.directory.put({ ...entry, guid: entry.guid === null ? null : userId, digests: [] }, T0);
          return { enrollmentId: `${deviceId}:${userId}`, deviceId, userId, guid: userId, challenge: SENT };
        }

        test("a managed entry by GUID: the challenged session with its short name and the event, together", async () => {
          const name = `u${randomUUID().slice(0, 8)}`;
          const m = await message({ shortName: name, guid: "" });
          assert.equal((await store.logins.challenge({ ...m, shortName: "other-name" }, CHALLENGE_KNOWN_OR_NONE, T0)).challenged, true);
          const session = await store.userSessions.get(m.enrollmentId);
          assert.deepEqual([session?.state, session?.shortName, session?.challengedAt], ["challenged", name, T0]);
          assert.deepEqual(session?.challenge, SENT, "the challenge sent: its nonce and what it offered");
          assert.deepEqual(await eventsOf(m.enrollmentId), [["userauth.challenged", { short_name: name }]]);
        });

        test("a GUID-less entry by short name; a name JSON must escape comes back as it was", async () => {
          const name = `q"\\é ${randomUUID().slice(0, 4)}`;
          const m = await message({ shortName: name, guid: null });
          assert.equal((await store.logins.challenge({ ...m, shortName: name }, CHALLENGE_KNOWN_OR_NONE, T0)).challenged, true);
          assert.equal((await store.userSessions.get(m.enrollmentId))?.shortName, name);
          assert.deepEqual(await eventsOf(m.enrollmentId), [["userauth.challenged", { short_name: name }]]);
        });

        test("no entry: challenged without a short name when 'none' challenges, nothing written when it does not", async () => {
          const m = await message();
          assert.equal((await store.logins.challenge({ ...m, shortName: "nobody" }, new Set(["managed"]), T0)).challenged, false);
          assert.equal(await store.userSessions.get(m.enrollmentId), undefined);
          assert.deepEqual(await eventsOf(m.enrollmentId), []);
          assert.equal((await store.logins.challenge({ ...m, shortName: "nobody" }, CHALLENGE_KNOWN_OR_NONE, T0)).challenged, true);
          assert.equal((await store.userSessions.get(m.enrollmentId))?.shortName, null);
          assert.deepEqual(await eventsOf(m.enrollmentId), [["userauth.challenged", {}]]);
        });

        test("the entry is the GUID's before a GUID-less one with the short name, never another GUID's", async () => {
          const tag = randomUUID().slice(0, 8);
          // Declined by GUID, managed without a GUID under the message's short name: the GUID's entry decides.
          const m = await message({ shortName: `declined-${tag}`, guid: "", state: "declined" });
          await store.directory.put({ shortName: `managed-${tag}`, guid: null }, T0);
          const refused = await store.logins.challenge({ ...m, shortName: `managed-${tag}` }, CHALLENGE_KNOWN_OR_NONE, T0);
          assert.deepEqual([refused.challenged, refused.entry?.shortName, refused.entry?.state], [false, `declined-${tag}`, "declined"]);
          assert.equal(await store.userSessions.get(m.enrollmentId), undefined);
          // An entry with another GUID does not answer for this user's short name: no entry, so "none".
          const other = await message();
          await store.directory.put({ shortName: `other-${tag}`, guid: randomUUID().toUpperCase() }, T0);
          assert.deepEqual(await store.logins.challenge({ ...other, shortName: `other-${tag}` }, new Set(["managed"]), T0), {
            challenged: false,
            entry: undefined,
          });
          assert.equal((await store.logins.challenge({ ...other, shortName: `other-${tag}` }, new Set(["none"]), T0)).challenged, true);
          assert.equal((await store.userSessions.get(other.enrollmentId))?.shortName, null);
        });

        test("a declined entry writes nothing; a token the user had ends at a new challenge", async () => {
          const declined = await message({ shortName: `d${randomUUID().slice(0, 8)}`, guid: "", state: "declined" });
          assert.equal(
            (await store.logins.challenge({ ...declined, shortName: undefined }, CHALLENGE_KNOWN_OR_NONE, T0)).challenged,
            false,
          );
          assert.equal(await store.userSessions.get(declined.enrollmentId), undefined);
          assert.deepEqual(await eventsOf(declined.enrollmentId), []);

          const c = await challenged();
          assert.equal(await issue(c, randomUUID()), "issued");
          const again = {
            enrollmentId: c.enrollmentId,
            deviceId: c.deviceId,
            userId: c.userId,
            guid: c.userId,
            shortName: c.shortName,
            challenge: { nonceId: "1".repeat(32), offers: "MD5,MD5-sess/auth" },
          };
          assert.equal((await store.logins.challenge(again, CHALLENGE_KNOWN_OR_NONE, T0 + 2)).challenged, true);
          const session = await store.userSessions.get(c.enrollmentId);
          assert.deepEqual([session?.state, session?.tokenHash, session?.challengedAt], ["challenged", null, T0 + 2]);
          assert.deepEqual(session?.challenge, again.challenge, "the new challenge's record replaces the old one's");
        });
      });

      test("begin writes the state and its event together", async () => {
        const c = await challenged();
        assert.equal((await store.userSessions.get(c.enrollmentId))?.state, "challenged");
        assert.deepEqual(await eventsOf(c.enrollmentId), [["userauth.challenged", { short_name: c.shortName }]]);
      });

      test("answerFacts reads the failures, the session, the entry and its HA1 in one row", async () => {
        const c = await challenged();
        await store.userSessions.recordFailure(c.deviceId, c.shortName, T0);
        const q = { enrollmentId: c.enrollmentId, deviceId: c.deviceId, shortName: c.shortName, since: T0, realm: REALM };
        const facts = await store.logins.answerFacts({ ...q, algorithm: "MD5" });
        assert.deepEqual(facts, {
          failures: { pair: 1, device: 1, user: 1 },
          sessionState: "challenged",
          challenge: null,
          user: { guid: c.userId, state: "managed" },
          ha1: "a".repeat(32),
        });
        assert.equal((await store.logins.answerFacts({ ...q, algorithm: "SHA-256" })).ha1, undefined, "no digest of that hash");
        const unknown = await store.logins.answerFacts({ ...q, shortName: "nobody-here", algorithm: "MD5" });
        assert.deepEqual([unknown.user, unknown.ha1, unknown.failures.pair], [undefined, undefined, 0]);
      });

      test("a challenge records its nonce and offers; a later state, or a challenge that records none, leaves no record", async () => {
        const c = await challenged();
        assert.equal((await store.userSessions.get(c.enrollmentId))?.challenge, null, "begun without a record: a row as before");
        const sent = { nonceId: "2".repeat(32), offers: "MD5/auth,MD5-sess/auth" };
        await store.logins.begin({ ...c, state: "challenged", challenge: sent }, { type: "userauth.challenged", detail: {} }, T0 + 1);
        assert.deepEqual((await store.userSessions.get(c.enrollmentId))?.challenge, sent);
        const q = { enrollmentId: c.enrollmentId, deviceId: c.deviceId, shortName: c.shortName, since: T0, realm: REALM };
        assert.deepEqual((await store.logins.answerFacts({ ...q, algorithm: "MD5" })).challenge, sent, "the fast path reads it too");
        // An older process's challenge writes neither column: it must not leave this one's record standing.
        await store.db.run(
          `INSERT INTO user_sessions (enrollment_id, device_id, user_id, short_name, state, token_hash, challenged_at,
             token_issued_at, token_last_used_at, updated_at)
           VALUES (?, ?, ?, ?, 'challenged', NULL, ?, NULL, NULL, ?)
           ON CONFLICT (enrollment_id) DO UPDATE SET state = excluded.state, challenged_at = excluded.challenged_at,
             updated_at = excluded.updated_at`,
          [c.enrollmentId, c.deviceId, c.userId, c.shortName, T0 + 2, T0 + 2],
        );
        assert.equal(
          (await store.userSessions.get(c.enrollmentId))?.challenge?.nonceId,
          sent.nonceId,
          "the row still names the newer nonce: a response to the older process's nonce does not match it",
        );
        await store.userSessions.begin({ ...c, state: "zero-length", challenge: sent }, T0 + 3);
        assert.equal((await store.userSessions.get(c.enrollmentId))?.challenge, null, "only a challenged state records one");
      });

      test("issueToken uses the nonce, issues the token and records the event; a used nonce writes nothing", async () => {
        const c = await challenged();
        const nonceId = randomUUID();
        assert.equal(await issue(c, nonceId), "issued");
        const session = await store.userSessions.get(c.enrollmentId);
        assert.deepEqual([session?.state, session?.tokenHash], ["authenticated", "f".repeat(64)]);
        assert.equal(await store.userSessions.useNonce(nonceId, T0 + 60_000, "r1"), "resent", "the nonce's use is recorded");
        // Challenged again: the same nonce is refused before anything is written.
        await store.logins.begin({ ...c, state: "challenged" }, { type: "userauth.challenged", detail: {} }, T0 + 2);
        assert.equal(await issue(c, nonceId, "r2"), "nonce-used");
        assert.equal((await store.userSessions.get(c.enrollmentId))?.state, "challenged");
        assert.deepEqual(
          (await eventsOf(c.enrollmentId)).map(([type]) => type),
          ["userauth.challenged", "userauth.authenticated", "userauth.challenged"],
        );
        assert.equal((await store.userSessions.failuresSince(c.deviceId, c.shortName, T0)).pair, 0);
      });

      test("issueToken for a session no longer challenged uses the nonce and counts a no-challenge failure", async () => {
        const c = await challenged();
        await store.logins.begin({ ...c, state: "zero-length" }, { type: "userauth.zero_length", detail: {} }, T0);
        const nonceId = randomUUID();
        assert.equal(await issue(c, nonceId), "no-challenge");
        assert.equal((await store.userSessions.get(c.enrollmentId))?.state, "zero-length");
        assert.equal(await store.userSessions.useNonce(nonceId, T0 + 60_000, "other"), "replayed");
        assert.equal((await store.userSessions.failuresSince(c.deviceId, c.shortName, T0)).pair, 1);
        assert.deepEqual((await eventsOf(c.enrollmentId)).at(-1), ["userauth.failed", { cause: "no-challenge", short_name: c.shortName }]);
      });

      test("issueToken checks the failure limits again: failures that committed since they were read stop the token, nothing written", async () => {
        const c = await challenged();
        // Wrong guesses sent with the right one commit between the caller's read of the counts and this write.
        for (let i = 0; i < 2; i++) await store.userSessions.recordFailure(c.deviceId, c.shortName, T0);
        const nonceId = randomUUID();
        assert.equal(await issue(c, nonceId, "r1", 2), "limited");
        assert.equal((await store.userSessions.get(c.enrollmentId))?.state, "challenged", "no token");
        assert.equal(await store.userSessions.useNonce(nonceId, T0 + 60_000, "r1"), "fresh", "the nonce was not used");
        assert.equal((await store.userSessions.failuresSince(c.deviceId, c.shortName, T0)).pair, 2, "no failure added");
        // Under the limit, the same call issues the token.
        assert.equal(await issue(c, randomUUID(), "r1", 3), "issued");
      });
    });
  });
}
