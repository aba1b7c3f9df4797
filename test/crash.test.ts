// Crash safety: simulated devices and an operator run against `orchard serve`
// in a child process, which is killed with SIGKILL at random moments and
// restarted on the same data. Afterwards: every command the API acknowledged
// is still queued or has exactly one stored result, every result the server
// acknowledged (200) is stored byte for byte, no device lost its push token,
// and the database is sound (SQLite integrity_check; PostgreSQL amcheck).
import assert from "node:assert/strict";
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { createCa, escapedPemHeader, generateKeyPair, issueDeviceIdentity, type DeviceIdentity } from "../src/identity/testing/pki.ts";
import { parsePlistDict, serializePlist, type PlistDict } from "../src/plist/index.ts";
import { Transport, type RequestOptions, type Response, type Sender } from "../src/sim/transport.ts";
import { commandPlist, sleep } from "./support/mdm.ts";
import { createTestDatabase, postgresReachable, type Backend } from "./support/postgres.ts";
import { spawnOrchard, type OrchardProcess } from "./support/process.ts";

const KILLS = Number(process.env.CRASH_KILLS ?? 5);
const DEVICES = 12;
const KEY = "crash-test-key-0123456789abcdef";
const AUTH = "Basic " + Buffer.from(`x:${KEY}`).toString("base64");

/** Requests go to whichever server process is up; while none is, they fail at once. */
class Switch implements Sender {
  current: Transport | undefined;
  send(o: RequestOptions): Promise<Response> {
    return this.current ? this.current.send(o) : Promise.reject(new Error("server down"));
  }
}

interface Ledger {
  /** CommandUUID -> targets, for every enqueue the API answered 200. */
  enqueued: Map<string, string[]>;
  /** "udid|uuid" -> the last report for it answered 200: its status and exact bytes. */
  reported: Map<string, { status: string; body: Buffer }>;
  /** udid -> push tokens sent in order, and how many of them were answered 200. */
  tokens: Map<string, { sent: string[]; acked: number }>;
  counts: { enqueueAcks: number; reportAcks: number; tokenAcks: number; failures: number };
}

class CrashDevice {
  readonly udid = randomUUID().toUpperCase();
  private readonly cert: string;
  constructor(
    private readonly sender: Sender,
    identity: DeviceIdentity,
    private readonly ledger: Ledger,
  ) {
    this.cert = escapedPemHeader(identity.certPem);
  }

  private put(p: string, type: string, dict: PlistDict): Promise<{ res: Response; body: Buffer }> {
    const body = Buffer.from(serializePlist(dict));
    return this.sender
      .send({ method: "PUT", path: p, headers: { "content-type": type, "x-client-cert": this.cert }, body })
      .then((res) => ({ res, body }));
  }

  async authenticate(): Promise<void> {
    const { res } = await this.put("/checkin", "application/x-apple-aspen-mdm-checkin", {
      MessageType: "Authenticate",
      UDID: this.udid,
      Topic: "com.apple.mgmt.External.crash",
      SerialNumber: this.udid.slice(0, 12),
    });
    assert.equal(res.status, 200, res.body.toString());
  }

  async tokenUpdate(): Promise<void> {
    const token = randomBytes(32);
    const t = this.ledger.tokens.get(this.udid) ?? { sent: [], acked: 0 };
    this.ledger.tokens.set(this.udid, t);
    t.sent.push(token.toString("hex"));
    const { res } = await this.put("/checkin", "application/x-apple-aspen-mdm-checkin", {
      MessageType: "TokenUpdate",
      UDID: this.udid,
      Topic: "com.apple.mgmt.External.crash",
      Token: token,
      PushMagic: "MAGIC",
    });
    if (res.status !== 200) throw new Error(`TokenUpdate answered ${res.status}: ${res.body}`);
    t.acked = t.sent.length;
    this.ledger.counts.tokenAcks++;
  }

  /** Polls, runs what it is given and reports it, like a device; a failed request starts over with Idle. */
  async run(stop: () => boolean): Promise<void> {
    while (!stop()) {
      try {
        if (randomInt(20) === 0) await this.tokenUpdate();
        let { res } = await this.put("/mdm", "application/x-apple-aspen-mdm", { Status: "Idle", UDID: this.udid });
        if (res.status !== 200) throw new Error(`Idle answered ${res.status}: ${res.body}`);
        while (res.status === 200 && res.body.length > 0) {
          const uuid = parsePlistDict(res.body).CommandUUID as string;
          const status = ["Acknowledged", "Acknowledged", "Acknowledged", "Error", "NotNow"][randomInt(5)]!;
          // The same bytes every time this result is sent, so a resend cannot differ from what was stored.
          const dict: PlistDict = { Status: status, UDID: this.udid, CommandUUID: uuid };
          if (status === "Acknowledged") dict.QueryResponses = { DeviceName: `crash-${this.udid}`, Result: uuid };
          if (status === "Error") dict.ErrorChain = [{ ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain" }];
          const sent = await this.put("/mdm", "application/x-apple-aspen-mdm", dict);
          res = sent.res;
          if (res.status !== 200) throw new Error(`report answered ${res.status}: ${res.body}`);
          this.ledger.reported.set(`${this.udid}|${uuid}`, { status, body: sent.body });
          this.ledger.counts.reportAcks++;
          if (status === "NotNow") break;
        }
        await sleep(20 + randomInt(80));
      } catch (err) {
        if (String(err).includes("answered")) throw err;
        this.ledger.counts.failures++;
        await sleep(30 + randomInt(50));
      }
    }
  }
}

/** Queues commands for random devices through the API, recording every 200. */
async function operator(baseUrl: () => string | undefined, devices: CrashDevice[], ledger: Ledger, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const url = baseUrl();
    const targets = [...new Set(Array.from({ length: 1 + randomInt(3) }, () => devices[randomInt(devices.length)]!.udid))];
    const uuid = `CRASH-${randomUUID()}`;
    if (url) {
      try {
        const res = await fetch(`${url}/v1/enqueue/${targets.join(",")}?nopush=1`, {
          method: "PUT",
          headers: { authorization: AUTH },
          body: new Uint8Array(commandPlist("DeviceInformation", uuid, { Queries: ["DeviceName"] })),
        });
        if (res.status === 200) {
          ledger.enqueued.set(uuid, targets);
          ledger.counts.enqueueAcks++;
        } else await res.arrayBuffer();
      } catch {
        ledger.counts.failures++;
      }
    }
    await sleep(15 + randomInt(30));
  }
}

interface Row {
  enrollment_id: string;
  command_uuid: string;
  status: string;
  active: number;
  result: Buffer | null;
}

/** The ledger against the store: what was acknowledged is there. Returns the problems found. */
function audit(
  ledger: Ledger,
  rows: Row[],
  commands: Set<string>,
  enrollments: Map<string, { push_token: string; enabled: number }>,
): string[] {
  const problems: string[] = [];
  const byKey = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.enrollment_id}|${r.command_uuid}`;
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  for (const [uuid, targets] of ledger.enqueued) {
    if (!commands.has(uuid)) problems.push(`acknowledged command ${uuid} is gone`);
    for (const t of targets) {
      const found = byKey.get(`${t}|${uuid}`) ?? [];
      if (found.length !== 1) {
        problems.push(`${uuid} for ${t}: ${found.length} queue rows`);
        continue;
      }
      const r = found[0]!;
      const queued = Number(r.active) === 1 && (r.status === "Queued" || r.status === "NotNow");
      const answered = Number(r.active) === 0 && ["Acknowledged", "Error", "CommandFormatError"].includes(r.status) && r.result !== null;
      if (!queued && !answered) problems.push(`${uuid} for ${t}: neither queued nor answered (${r.status}, active ${r.active})`);
    }
  }
  for (const [key, rep] of ledger.reported) {
    const r = byKey.get(key)?.[0];
    if (!r) {
      problems.push(`acknowledged ${rep.status} for ${key} is lost`);
      continue;
    }
    if (rep.status === "NotNow") {
      if (r.status === "Queued") problems.push(`acknowledged NotNow for ${key} is lost`);
    } else if (r.status !== rep.status || Number(r.active) !== 0 || !r.result || !Buffer.from(r.result).equals(rep.body)) {
      problems.push(
        `acknowledged ${rep.status} for ${key} is stored as ${r.status} (active ${r.active}, ${r.result ? "other bytes" : "no result"})`,
      );
    }
  }
  for (const [udid, t] of ledger.tokens) {
    const e = enrollments.get(udid);
    if (!e) {
      problems.push(`device ${udid} is gone`);
      continue;
    }
    // The stored token is the last acknowledged one, or one sent after it (stored, then killed before the answer).
    const at = t.sent.indexOf(e.push_token);
    if (at < 0 || at < t.acked - 1) problems.push(`device ${udid} lost its push token (stored #${at}, acknowledged #${t.acked - 1})`);
    if (Number(e.enabled) !== 1) problems.push(`device ${udid} is disabled`);
  }
  return problems;
}

const postgres = await postgresReachable();

// The two backends run side by side: most of the time is spent restarting `orchard serve`.
describe("crash safety", { concurrency: 2 }, () => {
  for (const backend of ["sqlite", "postgres"] as const) {
    const skip = backend === "postgres" && !postgres ? "PostgreSQL not reachable (set ORCHARD_TEST_POSTGRES)" : false;
    test(
      `[${backend}] SIGKILL ${KILLS} times under load, restart on the same data: nothing acknowledged is lost`,
      { timeout: 120_000, skip },
      () => crashRun(backend),
    );
  }
});

async function crashRun(backend: Backend): Promise<void> {
  {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-crash-"));
    const db = backend === "postgres" ? await createTestDatabase() : undefined;
    const args = [
      "--data-dir",
      dataDir,
      "--api-key",
      KEY,
      "--cert-header",
      "x-client-cert",
      "--log-level",
      "info",
      ...(db ? ["--storage", db.url] : []),
    ];
    const ledger: Ledger = {
      enqueued: new Map(),
      reported: new Map(),
      tokens: new Map(),
      counts: { enqueueAcks: 0, reportAcks: 0, tokenAcks: 0, failures: 0 },
    };
    const sw = new Switch();
    let proc: OrchardProcess | undefined;
    let stopped = false;
    const loops: Promise<void>[] = [];
    const integrity: string[] = [];

    const startMs: number[] = [];
    const start = async () => {
      const t = Date.now();
      proc = await spawnOrchard(args);
      startMs.push(Date.now() - t);
      sw.current = new Transport(proc.url, undefined, 32);
    };
    const kill = async () => {
      const p = proc!;
      sw.current?.close();
      sw.current = undefined;
      proc = undefined;
      // Still running until now: an unhandled rejection or a crash would have ended it.
      assert.equal(p.child.exitCode, null, `orchard exited on its own:\n${p.output().slice(-3000)}`);
      await p.stop("SIGKILL");
      assert.ok(
        !/"level":(50|60)/.test(p.output()),
        `error-level log lines:\n${p
          .output()
          .split("\n")
          .filter((l) => /"level":(50|60)/.test(l))
          .slice(0, 3)
          .join("\n")}`,
      );
    };
    const checkIntegrity = async () => {
      if (backend === "sqlite") {
        const file = new BetterSqlite3(path.join(dataDir, "orchard.db"));
        try {
          integrity.push(String(file.pragma("integrity_check", { simple: true })));
          const fk = file.pragma("foreign_key_check") as unknown[];
          if (fk.length > 0) integrity.push(`foreign keys: ${fk.length} violations`);
        } finally {
          file.close();
        }
      } else {
        const c = new pg.Client(db!.url);
        await c.connect();
        try {
          await c.query("CREATE EXTENSION IF NOT EXISTS amcheck");
          // bt_index_parent_check raises an error on any inconsistency between an index and its table.
          const { rows } = await c.query(
            `SELECT c.relname, bt_index_parent_check(c.oid, true)::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam WHERE n.nspname = 'public' AND a.amname = 'btree'`,
          );
          integrity.push(rows.length > 0 ? "ok" : "amcheck found no index");
        } finally {
          await c.end();
        }
      }
    };
    const readStore = async () => {
      if (backend === "sqlite") {
        const file = new BetterSqlite3(path.join(dataDir, "orchard.db"), { readonly: true });
        try {
          return {
            rows: file.prepare("SELECT enrollment_id, command_uuid, status, active, result FROM command_queue").all() as Row[],
            commands: new Set(
              (file.prepare("SELECT command_uuid FROM commands").all() as Array<{ command_uuid: string }>).map((r) => r.command_uuid),
            ),
            enrollments: new Map(
              (
                file.prepare("SELECT id, push_token, enabled FROM enrollments").all() as Array<{
                  id: string;
                  push_token: string;
                  enabled: number;
                }>
              ).map((r) => [r.id, r]),
            ),
          };
        } finally {
          file.close();
        }
      }
      const c = new pg.Client(db!.url);
      await c.connect();
      try {
        return {
          rows: (await c.query("SELECT enrollment_id, command_uuid, status, active, result FROM command_queue")).rows as Row[],
          commands: new Set((await c.query("SELECT command_uuid FROM commands")).rows.map((r) => r.command_uuid as string)),
          enrollments: new Map((await c.query("SELECT id, push_token, enabled FROM enrollments")).rows.map((r) => [r.id as string, r])),
        };
      } finally {
        await c.end();
      }
    };

    try {
      const key = await generateKeyPair();
      const ca = await createCa({ commonName: "Crash Test CA", keyPair: key });
      const devices: CrashDevice[] = [];
      for (let i = 0; i < DEVICES; i++)
        devices.push(new CrashDevice(sw, await issueDeviceIdentity(ca, { commonName: `crash-${i}`, keyPair: key }), ledger));
      await start();
      for (const d of devices) {
        await d.authenticate();
        await d.tokenUpdate();
      }
      for (const d of devices) loops.push(d.run(() => stopped));
      loops.push(
        operator(
          () => (sw.current ? proc?.url : undefined),
          devices,
          ledger,
          () => stopped,
        ),
      );

      // Each kill comes after traffic was acknowledged since the last start (a slow, loaded machine takes longer to
      // get there; a fixed sleep left too little between kills for the traffic check below), then at a random moment.
      const trafficSince = async (from: { enqueueAcks: number; reportAcks: number }) => {
        const until = Date.now() + 60_000;
        while (Date.now() < until && (ledger.counts.enqueueAcks - from.enqueueAcks < 5 || ledger.counts.reportAcks - from.reportAcks < 5))
          await sleep(50);
      };
      for (let k = 0; k < KILLS; k++) {
        await trafficSince({ ...ledger.counts });
        await sleep(randomInt(1500));
        await kill();
        await checkIntegrity();
        // Between a kill and the restart, every request fails: devices and the operator keep trying.
        await sleep(randomInt(300));
        await start();
      }
      await sleep(1500);
      stopped = true;
      await Promise.all(loops);
      await sleep(300);
      const { rows, commands, enrollments } = await readStore();
      const problems = audit(ledger, rows, commands, enrollments);
      await proc!.stop("SIGTERM");
      proc = undefined;
      await checkIntegrity();
      const answered = rows.filter((r) => Number(r.active) === 0).length;
      process.stdout.write(
        `# crash [${backend}]: ${KILLS} kills; ${ledger.counts.enqueueAcks} commands acknowledged (${[...ledger.enqueued.values()].reduce((n, t) => n + t.length, 0)} queue entries, ${answered} answered); ` +
          `${ledger.counts.reportAcks} reports and ${ledger.counts.tokenAcks} token updates acknowledged; ${ledger.counts.failures} requests failed during kills; ` +
          `integrity ${[...new Set(integrity)].join(", ")}; problems ${problems.length}; restarts took ${startMs.join(", ")} ms\n`,
      );
      assert.deepEqual(problems.slice(0, 10), []);
      assert.deepEqual([...new Set(integrity)], ["ok"]);
      assert.ok(ledger.counts.enqueueAcks > 20 && ledger.counts.reportAcks > 20, "enough traffic between the kills");
    } finally {
      stopped = true;
      await Promise.allSettled(loops);
      sw.current?.close();
      if (proc) await proc.stop("SIGKILL");
      await db?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
}
