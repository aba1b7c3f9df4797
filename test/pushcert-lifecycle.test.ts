// A push certificate's life after the portal: renewal keeps the topic (a new
// topic while devices are enrolled under another is refused unless forced),
// and expiry is told in time (days left in `pushcert show`, a warn line at
// start, one `pushcert.expiring` event per certificate 30 days before).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { issuePushCertificate } from "../src/identity/testing/push-cert.ts";
import { checkPushCertExpiry, startPushCertExpiryCheck } from "../src/push/expiry.ts";
import { pushPki, seedEnrollments, TEST_TOPIC } from "./support/apns.ts";
import { cliContext } from "./support/cli.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { waitFor } from "./support/mdm.ts";

const pki = await pushPki();
const DAY_MS = 86_400_000;
const OTHER = "com.apple.mgmt.External.created-not-renewed";
const SECRET = ["--secret-key", "test-secret-key-0123456789"];

const keyPair = { privateKey: pki.cert.key, publicKey: pki.cert.publicKey };
const certFor = (topic: string, o: { notAfter?: Date } = {}) => issuePushCertificate(pki.pushCa, { topic, keyPair, ...o });

function captureLog() {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, log: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } };
}

await forEachBackend("push certificate lifecycle", (backend) => {
  let server: TestServer;
  let storage: string;
  let dropDatabase = async () => {};
  let tmp: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-pushcert-life-"));
    if (backend === "postgres") {
      const db = await createTestDatabase();
      storage = db.url;
      dropDatabase = db.drop;
    } else storage = `sqlite:${path.join(tmp, "shared.db")}`;
    server = await startTestServer(["--storage", storage, ...SECRET]);
  });
  after(async () => {
    await server.stop();
    await dropDatabase();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const topics = async () => (await server.api("GET", "/v1/pushcert")).json.push_certs.map((c: any) => [c.topic, c.fingerprint]);
  const events = async (type: string) => (await server.api("GET", `/v1/events?type=${type}`)).json.events;
  const cli = async (args: string[]) => {
    const ctx = cliContext(server.url, { cwd: tmp });
    const code = await runWith(ctx, "pushcert", args);
    return { code, stdout: ctx.stdout, stderr: ctx.stderr };
  };

  describe("renewal keeps the topic", () => {
    test("with no device enrolled, any topic is accepted", async () => {
      const other = await certFor(OTHER);
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(other))).status, 200);
      assert.equal((await server.api("DELETE", `/v1/pushcert/${OTHER}`)).status, 200);
    });

    test("the same topic replaces the certificate (a renewal); a new topic is refused with 409 and the reason; the stored one stays", async () => {
      await seedEnrollments(server.store, 3, { prefix: `RENEW-${backend}` });
      const renewed = await server.api("PUT", "/v1/pushcert", pki.pem(pki.rotated));
      assert.equal(renewed.status, 200, renewed.text);
      assert.deepEqual(await topics(), [[TEST_TOPIC, pki.rotated.fingerprint]]);

      const other = await certFor(OTHER);
      const refused = await server.api("PUT", "/v1/pushcert", pki.pem(other));
      assert.equal(refused.status, 409);
      assert.match(
        refused.json.error,
        new RegExp(
          `^this certificate's topic ${OTHER.replace(/\./g, "\\.")} is new, but devices are enrolled under another topic \\(3 under ${TEST_TOPIC.replace(/\./g, "\\.")}\\).*orphan.*Renew \\(not Create\\).*\\?force=1`,
        ),
      );
      assert.deepEqual(await topics(), [[TEST_TOPIC, pki.rotated.fingerprint]]);
      assert.equal((await events("pushcert.uploaded")).filter((e: any) => e.detail.topic === OTHER && e.detail.forced).length, 0);
      assert.ok(server.logs.some((l) => l.includes("push certificate refused: a new topic while devices are enrolled under another")));
    });

    test("orchard pushcert upload says why, and --force (?force=1) adds the topic beside the other", async () => {
      const other = await certFor(OTHER);
      fs.writeFileSync(path.join(tmp, "other.pem"), pki.pem(other));
      const refused = await cli(["upload", "other.pem"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^orchard: this certificate's topic .* is new, but devices are enrolled under another topic .*--force/);
      const forced = await cli(["upload", "other.pem", "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(
        (await topics()).map((t: string[]) => t[0]),
        [OTHER, TEST_TOPIC].sort(),
      );
      const uploaded = (await events("pushcert.uploaded")).filter((e: any) => e.detail.topic === OTHER);
      assert.equal(uploaded.at(-1).detail.forced, true);
      // Now that the topic has a certificate, a new one for it is a renewal.
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(other))).status, 200);
      assert.equal((await server.api("DELETE", `/v1/pushcert/${OTHER}`)).status, 200);
    });

    test("a certificate that ends before the stored one of its topic is refused (409, both dates) unless --force", async () => {
      const stored = (await server.api("GET", "/v1/pushcert")).json.push_certs.find((c: any) => c.topic === TEST_TOPIC);
      const older = await certFor(TEST_TOPIC, { notAfter: new Date(Date.parse(stored.not_after) - 300 * DAY_MS) });
      const olderEnd = new Date(older.cert.validTo).toISOString();
      const refused = await server.api("PUT", "/v1/pushcert", pki.pem(older));
      assert.equal(refused.status, 409);
      assert.equal(refused.json.code, "conflict");
      assert.equal(
        refused.json.error,
        `this certificate for ${TEST_TOPIC} expires on ${olderEnd}, before the stored one (${stored.not_after}): ` +
          "replacing it would end the topic's pushes sooner (an older file uploaded again?). " +
          "Upload the newer certificate, or, to go back to this one all the same, upload again with ?force=1 (orchard pushcert upload --force)",
      );
      assert.ok(server.logs.some((l) => /"level":40.*push certificate refused: it expires before the stored one of its topic/.test(l)));
      assert.deepEqual(await topics(), [[TEST_TOPIC, stored.fingerprint]], "the newer one stays");

      fs.writeFileSync(path.join(tmp, "older.pem"), pki.pem(older));
      const cliRefused = await cli(["upload", "older.pem"]);
      assert.equal(cliRefused.code, 1);
      assert.match(cliRefused.stderr, /^orchard: this certificate for \S+ expires on \S+, before the stored one .*--force\)\n$/);
      const forced = await cli(["upload", "older.pem", "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(await topics(), [[TEST_TOPIC, older.fingerprint]]);
      assert.equal((await events("pushcert.uploaded")).at(-1).detail.forced, true);
      // A certificate that ends later (a renewal) replaces it unasked.
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(pki.rotated))).status, 200);
      assert.deepEqual(await topics(), [[TEST_TOPIC, pki.rotated.fingerprint]]);
    });

    test("checked-out devices do not hold their topic", async () => {
      await server.store.db.run("UPDATE enrollments SET enabled = 0");
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(await certFor(OTHER)))).status, 200);
      assert.equal((await server.api("DELETE", `/v1/pushcert/${OTHER}`)).status, 200);
      await server.store.db.run("UPDATE enrollments SET enabled = 1");
    });

    test("devices under a topic Orchard has no certificate for (the simulator's) do not hold back a new one", async () => {
      await server.store.db.run("UPDATE enrollments SET enabled = 0");
      const simulated = await seedEnrollments(server.store, 2, {
        prefix: `SIM-${backend}`,
        topic: "com.apple.mgmt.External.orchard-simulator",
      });
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(await certFor(OTHER)))).status, 200);
      assert.equal((await server.api("DELETE", `/v1/pushcert/${OTHER}`)).status, 200);
      await server.store.db.run(
        `DELETE FROM enrollments WHERE id IN (${simulated.map(() => "?").join(", ")})`,
        simulated.map((s) => s.id),
      );
      await server.store.db.run("UPDATE enrollments SET enabled = 1");
    });
  });

  describe("expiry", () => {
    let soon: Awaited<ReturnType<typeof certFor>>;
    test("pushcert show prints the days left and says which to renew", async () => {
      const r = await cli(["show"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `^TOPIC\\s+NOT AFTER\\s+DAYS LEFT\\s+SHA-256\\s+UPDATED\\n${TEST_TOPIC.replace(/\./g, "\\.")}\\s+\\S+ \\S+\\s+36[45]\\s`,
        ),
      );
      assert.doesNotMatch(r.stdout, /renew/);
      soon = await certFor(TEST_TOPIC, { notAfter: new Date(Date.now() + 10 * DAY_MS + 3_600_000) });
      // It ends before the stored one: forced.
      assert.equal((await server.api("PUT", "/v1/pushcert?force=1", pki.pem(soon))).status, 200);
      const s = await cli(["show"]);
      assert.match(s.stdout, new RegExp(`${TEST_TOPIC.replace(/\./g, "\\.")}\\s+\\S+ \\S+\\s+10\\s`));
      assert.match(s.stdout, /\n\S+ expires in 10 days: renew it .*docs\/push-certificate\.md/);
    });

    test("one pushcert.expiring event per certificate 30 days before, whoever checks and how often; a renewed certificate gets its own", async () => {
      const before = (await events("pushcert.expiring")).length;
      const { lines, log } = captureLog();
      await checkPushCertExpiry(server.store, log);
      await checkPushCertExpiry(server.store, log);
      await Promise.all([checkPushCertExpiry(server.store, log), checkPushCertExpiry(server.store, log)]);
      const expiring = await events("pushcert.expiring");
      assert.equal(expiring.length, before + 1);
      const e = expiring.at(-1);
      assert.equal(e.detail.topic, TEST_TOPIC);
      assert.equal(e.detail.days_left, 10);
      assert.equal(e.detail.expired, false);
      assert.ok(lines.filter((l) => l.level === "warn").length <= 1, "warned when recorded, not on every check");

      // At start: warned again, but no second event.
      await checkPushCertExpiry(server.store, log, { atStart: true });
      assert.match(
        lines.at(-1)!.msg!,
        /^push certificate expires in 10 days .*renew it with Renew at https:\/\/identity\.apple\.com\/pushcert/,
      );
      assert.equal((await events("pushcert.expiring")).length, expiring.length);

      // The same certificate uploaded again is not a new one; a renewed one is.
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(soon))).status, 200);
      await checkPushCertExpiry(server.store, log);
      assert.equal((await events("pushcert.expiring")).length, expiring.length);
      const renewedSoon = await issuePushCertificate(pki.pushCa, {
        topic: TEST_TOPIC,
        keyPair: { privateKey: pki.rotated.key, publicKey: pki.rotated.publicKey },
        notAfter: new Date(Date.now() + 20 * DAY_MS + 3_600_000),
      });
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(renewedSoon))).status, 200);
      await checkPushCertExpiry(server.store, log);
      const after = await events("pushcert.expiring");
      assert.equal(after.length, expiring.length + 1);
      assert.equal(after.at(-1).detail.fingerprint, renewedSoon.fingerprint);
      assert.equal(after.at(-1).detail.days_left, 20);
    });

    test("not before 30 days; an expired certificate that was never noted gets the event, marked expired", async () => {
      const { lines, log } = captureLog();
      const later = await issuePushCertificate(pki.pushCa, { topic: TEST_TOPIC, keyPair, notAfter: new Date(Date.now() + 100 * DAY_MS) });
      assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(later))).status, 200);
      const n = (await events("pushcert.expiring")).length;
      const notAfter = Date.parse(later.cert.validTo);
      await checkPushCertExpiry(server.store, log, { now: notAfter - 31 * DAY_MS });
      assert.equal((await events("pushcert.expiring")).length, n, "31 days before: nothing");
      assert.equal(lines.length, 0);
      await checkPushCertExpiry(server.store, log, { now: notAfter + DAY_MS });
      const e = (await events("pushcert.expiring")).at(-1);
      assert.equal((await events("pushcert.expiring")).length, n + 1);
      assert.equal(e.detail.expired, true);
      assert.equal(e.detail.days_left, -1);
      assert.match(
        lines.at(-1)!.msg!,
        /^PUSH CERTIFICATE EXPIRED on .*: devices enrolled under com\.apple\.mgmt\.External\.orchard-sim get no pushes/,
      );
      assert.equal(lines.at(-1)!.level, "warn");
    });

    test("the server warns at start about a certificate within 30 days, every start; the periodic check records the event", async () => {
      const closer = await certFor(TEST_TOPIC, { notAfter: new Date(Date.now() + 5 * DAY_MS + 3_600_000) });
      assert.equal((await server.api("PUT", "/v1/pushcert?force=1", pki.pem(closer))).status, 200);
      for (let start = 0; start < 2; start++) {
        const second = await startTestServer(["--storage", storage, ...SECRET]);
        try {
          await waitFor("the start-up warning", () => second.logs.some((l) => /"level":40.*push certificate expires in 5 days/.test(l)));
        } finally {
          await second.close();
          fs.rmSync(second.dataDir, { recursive: true, force: true });
        }
      }
      const ofSoon = (await events("pushcert.expiring")).filter((e: any) => e.detail.fingerprint === closer.fingerprint);
      assert.equal(ofSoon.length, 1, "one event however many processes start");

      // A certificate that comes close while a process runs: the periodic check notices it.
      const next = await certFor(TEST_TOPIC, { notAfter: new Date(Date.now() + 7 * DAY_MS + 3_600_000) });
      const { log } = captureLog();
      const stop = startPushCertExpiryCheck(server.store, log, 20);
      try {
        assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(next))).status, 200);
        await waitFor("the periodic check's event", async () =>
          (await events("pushcert.expiring")).some((e: any) => e.detail.fingerprint === next.fingerprint),
        );
      } finally {
        await stop();
      }
    });
  });
});
