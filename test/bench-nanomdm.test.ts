// The bench's NanoMDM baseline without NanoMDM: how recorded requests are
// retargeted to its endpoints, where its schema is looked for, and how a
// process's CPU time and memory are read from /proc. (The binary itself is
// the operator's, given at run time; no test runs it.)
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { API_KEY, forServer, recordFleet, UUID_PLACEHOLDER } from "../bench/fleet.ts";
import { findNanoMdmSchema, isNanoMdmKind, nanomdmPgsqlDsn, nanomdmRequest, nanomdmSchemaCandidates } from "../bench/nanomdm.ts";
import { parseStatTicks, parseStatusBytes, procCpuUsage, procMemory } from "../bench/proc.ts";
import type { RequestOptions } from "../src/sim/transport.ts";

const toNano = nanomdmRequest(API_KEY);
const basic = (user: string) => "Basic " + Buffer.from(`${user}:${API_KEY}`).toString("base64");

test("check-ins go to /checkin and command reports to /mdm, by content type, whatever the recorded path", () => {
  const body = Buffer.from("<plist/>");
  const checkin = toNano({
    method: "PUT",
    path: "/mdm/checkin",
    headers: { "content-type": "application/x-apple-aspen-mdm-checkin", "x-client-cert": "PEM" },
    body,
  });
  assert.equal(checkin.path, "/checkin");
  assert.deepEqual(checkin.headers, { "content-type": "application/x-apple-aspen-mdm-checkin", "x-client-cert": "PEM" });
  assert.equal(checkin.body, body);
  const report = toNano({ method: "PUT", path: "/server", headers: { "Content-Type": "application/x-apple-aspen-mdm" }, body });
  assert.equal(report.path, "/mdm");
});

test("the API keeps its path and gets NanoMDM's Basic credentials in place of Orchard's", () => {
  const o: RequestOptions = {
    method: "PUT",
    path: "/v1/enqueue/ABC?nopush=1",
    headers: { Authorization: basic("x"), "content-type": "application/xml" },
  };
  const r = toNano(o);
  assert.equal(r.path, "/v1/enqueue/ABC?nopush=1");
  assert.deepEqual(r.headers, { "content-type": "application/xml", authorization: basic("nanomdm") });
  assert.equal(o.headers!.Authorization, basic("x"), "the recorded request is left as it was");
});

test("a request NanoMDM has no counterpart of is refused, not sent somewhere wrong", () => {
  assert.throws(() => toNano({ method: "GET", path: "/scep", headers: {} }), /no NanoMDM counterpart for GET \/scep/);
});

test("a bench device's recorded requests, retargeted, keep their bytes but for path and credentials", async () => {
  const fleet = await recordFleet(1);
  const orchard = forServer("http://127.0.0.1:1", fleet.devices[0]!);
  const nano = forServer("http://127.0.0.1:1", fleet.devices[0]!, toNano);
  for (const key of ["authenticate", "tokenUpdate", "idle"] as const) {
    assert.deepEqual(nano[key].options.body, orchard[key].options.body);
    assert.equal(nano[key].options.headers!["x-client-cert"], orchard[key].options.headers!["x-client-cert"]);
  }
  assert.match(nano.authenticate.wire.toString("latin1"), /^PUT \/checkin HTTP\/1\.1\r\n/);
  assert.match(nano.idle.wire.toString("latin1"), /^PUT \/mdm HTTP\/1\.1\r\n/);
  const enqueue = nano.enqueue.wire("11111111-2222-3333-4444-555555555555").toString("latin1");
  assert.match(enqueue, /^PUT \/v1\/enqueue\/BE4C0000-0000-4000-8000-000000000000\?nopush=1 HTTP\/1\.1\r\n/);
  assert.ok(enqueue.includes(`authorization: ${basic("nanomdm")}\r\n`));
  assert.ok(!enqueue.includes(UUID_PLACEHOLDER));
});

test("NanoMDM rows exist for the scenarios it has, and only those", () => {
  for (const k of ["idle", "tokenupdate", "roundtrip", "enroll"]) assert.ok(isNanoMdmKind(k), k);
  for (const k of ["floor", "login", "scale", "push", "webhooks", "ddm"]) assert.ok(!isNanoMdmKind(k), k);
});

test("the pgsql DSN turns TLS off unless the URL says otherwise", () => {
  assert.equal(
    nanomdmPgsqlDsn("postgres://root@127.0.0.1:5432/nanomdm_bench_1"),
    "postgres://root@127.0.0.1:5432/nanomdm_bench_1?sslmode=disable",
  );
  assert.equal(nanomdmPgsqlDsn("postgres://u:p@db:5432/x?sslmode=require"), "postgres://u:p@db:5432/x?sslmode=require");
});

test("the schema is the one given, else beside the binary, else in the checkout the binary was built in", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nanomdm-schema-"));
  try {
    const binary = path.join(dir, "nanomdm");
    assert.deepEqual(nanomdmSchemaCandidates(binary), [
      path.join(dir, "pgsql-schema.sql"),
      path.join(dir, "storage", "pgsql", "schema.sql"),
    ]);
    assert.equal(findNanoMdmSchema(binary), undefined);
    fs.mkdirSync(path.join(dir, "storage", "pgsql"), { recursive: true });
    fs.writeFileSync(path.join(dir, "storage", "pgsql", "schema.sql"), "");
    assert.equal(findNanoMdmSchema(binary), path.join(dir, "storage", "pgsql", "schema.sql"));
    fs.writeFileSync(path.join(dir, "pgsql-schema.sql"), "");
    assert.equal(findNanoMdmSchema(binary), path.join(dir, "pgsql-schema.sql"));
    assert.equal(findNanoMdmSchema(binary, path.join(dir, "missing.sql")), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("/proc/<pid>/stat: utime and stime are counted after the command name, which may hold spaces and parentheses", () => {
  // Fields 3.. after "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const stat = "4242 (nano mdm) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 7 0 100 700000000 4000";
  assert.deepEqual(parseStatTicks(stat), { user: 1234, system: 567 });
  assert.throws(() => parseStatTicks("garbage"), /not a \/proc/);
  assert.throws(() => parseStatTicks("1 (x) S 1"), /no utime/);
});

test("/proc/<pid>/status: a kB field in bytes, undefined when absent", () => {
  const status = "Name:\tnanomdm\nVmHWM:\t   23456 kB\nVmRSS:\t   15360 kB\nThreads:\t7\n";
  assert.equal(parseStatusBytes(status, "VmRSS"), 15360 * 1024);
  assert.equal(parseStatusBytes(status, "VmHWM"), 23456 * 1024);
  assert.equal(parseStatusBytes(status, "VmSwap"), undefined);
  assert.equal(parseStatusBytes(status, "Threads"), undefined, "not a kB field");
});

test("this process's CPU time and memory read from /proc agree with node's own figures", {
  skip: !fs.existsSync("/proc/self/stat"),
}, () => {
  const cpu = procCpuUsage(process.pid)!;
  const own = process.cpuUsage();
  // /proc counts in clock ticks (10 ms at USER_HZ 100) and was read first: never ahead of node's count by more than a tick.
  assert.ok(cpu.user + cpu.system <= own.user + own.system + 20_000, `${JSON.stringify(cpu)} vs ${JSON.stringify(own)}`);
  assert.ok(cpu.user + cpu.system > 0);
  const mem = procMemory(process.pid)!;
  assert.ok(mem.rss > 10 * 1024 * 1024 && mem.hwm >= mem.rss);
  assert.equal(procCpuUsage(2 ** 22 + 1), undefined, "no such process");
  assert.equal(procMemory(2 ** 22 + 1), undefined);
});
