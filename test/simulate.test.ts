// `orchard simulate` against a real server: in-process through runSimulation
// for speed, and once as `node bin/orchard.js simulate` for the CLI wiring.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { EnrollmentJson, UserJson, UserSessionJson } from "../src/http/wire.ts";
import { ApiClient } from "../src/cli/api-client.ts";
import { runWith } from "../src/cli/client-commands.ts";
import type { CliContext } from "../src/cli/command.ts";
import { createCa, generateKeyPair } from "../src/identity/testing/pki.ts";
import { serializePlist } from "../src/plist/index.ts";
import { IdentityFactory } from "../src/sim/identities.ts";
import { runSimulation, type SimulateOptions, type SimulationReport } from "../src/sim/fleet-sim.ts";
import { answerCommand, UNKNOWN_COMMAND_ERROR_CODE, type DeviceProfile } from "../src/sim/responder.ts";
import { Rng } from "../src/sim/rng.ts";
import { formatSummary } from "../src/cli/simulate-summary.ts";
import { runOrchard, type CliRun } from "./support/cli.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const UNKNOWN_TYPE = "OrchardSimulatorUnknownCommand";

let server: TestServer;
let tmp: string;

before(async () => {
  // Most runs here sign with a CA made for the run, as `orchard simulate --ca-out` does: the lab opt-in.
  server = await startTestServer(["--insecure-accept-any-device-cert"]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-simulate-"));
});

after(async () => {
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function options(url: string, o: Partial<SimulateOptions> = {}): SimulateOptions {
  return {
    url,
    api: new ApiClient(new URL(url), "test-api-key-0123456789abcdef"),
    devices: 2,
    durationMs: 2_000,
    pollIntervalMs: 200,
    commandIntervalMs: 500,
    caOutDir: path.join(tmp, `ca-${Math.random().toString(36).slice(2)}`),
    ...o,
  };
}

function orchard(args: string[]): Promise<CliRun> {
  return runOrchard(args, { cwd: tmp, env: { ORCHARD_URL: "", ORCHARD_API_KEY: "" } });
}

async function all<T>(listPath: string, key: string): Promise<T[]> {
  const res = await server.api("GET", listPath);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.next_cursor, null, "more than one page");
  return res.json[key];
}

describe("a small fleet with network users against a real server", () => {
  let report: SimulationReport;
  const queued = new Map<string, { type: string; ids: string[] }>();
  let unknownUuid = "";

  before(async () => {
    report = await runSimulation(
      options(server.url, {
        devices: 6,
        usersPerDevice: 2,
        networkUsers: true,
        durationMs: 5_000,
        pollIntervalMs: 250,
        commandIntervalMs: 700,
        notNow: 0.3,
        seed: "simulate-test",
        onEnqueued: (uuid, type, ids) => queued.set(uuid, { type, ids }),
        async onPhase(phase) {
          if (phase !== "run") return;
          // An operator's command the devices do not know: they must answer it with an Error.
          const devices = await all<{ id: string }>("/v1/enrollments?type=Device&limit=1000", "enrollments");
          const body = serializePlist({ Command: { RequestType: UNKNOWN_TYPE } });
          const r = await server.api("PUT", `/v1/enqueue/${devices.map((d) => d.id).join(",")}?nopush=1`, body);
          assert.equal(r.status, 200, r.text);
          unknownUuid = r.json.command_uuid;
        },
      }),
    );
  });

  test("the run reports every device enrolled, every user logged in, every command answered, no errors", () => {
    assert.deepEqual(report.errorKinds, {});
    assert.equal(report.errors, 0);
    assert.equal(report.devices, 6);
    assert.equal(report.macs, 3);
    assert.equal(report.iphones, 3);
    assert.equal(report.enrolled, 6);
    assert.equal(report.loginsExpected, 6);
    assert.equal(report.logins, 6);
    assert.equal(report.userChannels, 6);
    assert.ok(report.commandsEnqueued >= 12, `only ${report.commandsEnqueued} commands queued`);
    assert.equal(report.unanswered, 0);
    // The run's commands plus the unknown one on each of the 6 devices.
    assert.equal(report.commands, report.commandsEnqueued + 6);
    assert.ok(report.notNow > 0, "no device ever answered NotNow");
    assert.equal(report.requestTypes[UNKNOWN_TYPE]?.error, 6);
    assert.ok(report.requests > 0 && report.latencyMs.p99 >= report.latencyMs.p50 && report.latencyMs.p50 > 0);
    assert.deepEqual(Object.keys(report.statuses), ["200"]);
    assert.match(formatSummary(report), /^enrolled: +6\/6$/m);
    assert.match(formatSummary(report), /^commands: .*, 0 left unanswered$/m);
    // Interrupted, the run does not wait for answers: it says it did not count them rather than 0.
    assert.match(formatSummary({ ...report, interrupted: true }), /^commands: .*, unanswered not counted \(interrupted\)$/m);
  });

  test("the server has every device and user channel enrolled", async () => {
    const devices = await all<EnrollmentJson>("/v1/enrollments?type=Device&limit=1000", "enrollments");
    assert.equal(devices.length, 6);
    for (const d of devices) {
      assert.equal(d.enabled, true);
      assert.match(d.serial_number!, /^[0-9A-Z]{10}$/);
      assert.match(d.product_name!, /^(Mac|iPhone)\d+,\d+$/);
      assert.ok(d.os_version);
    }
    const users = await all<EnrollmentJson>("/v1/enrollments?type=User&limit=1000", "enrollments");
    assert.equal(users.length, 6);
    assert.ok(users.every((u) => u.user_short_name?.startsWith("sim-") && devices.some((d) => d.id === u.device_id)));
  });

  test("every network user is logged in with a token", async () => {
    const sessions = await all<UserSessionJson>("/v1/user-sessions?limit=1000", "sessions");
    assert.equal(sessions.length, 6);
    for (const s of sessions) {
      assert.equal(s.state, "authenticated", JSON.stringify(s));
      assert.ok(s.token_issued_at);
    }
    const users = await all<UserJson>("/v1/users?limit=1000", "users");
    assert.equal(users.length, 6);
    assert.deepEqual(new Set(users.map((u) => u.short_name)), new Set(sessions.map((s) => s.short_name)));
  });

  test("every command the run queued has a final answer from every enrollment it went to", async () => {
    assert.equal(
      [...queued.values()].reduce((n, q) => n + q.ids.length, 0),
      report.commandsEnqueued,
    );
    let sawNotNowThenAnswer = false;
    for (const [uuid, q] of queued) {
      const res = await server.api("GET", `/v1/commands/${uuid}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.request_type, q.type);
      const results: Array<{
        enrollment_id: string;
        status: string;
        active: boolean;
        not_now_count: number;
        result: Record<string, unknown>;
      }> = res.json.results;
      assert.deepEqual(results.map((r) => r.enrollment_id).sort(), [...q.ids].sort());
      for (const r of results) {
        assert.equal(r.status, "Acknowledged", `${q.type} on ${r.enrollment_id}`);
        assert.equal(r.active, false);
        const key = {
          DeviceInformation: "QueryResponses",
          ProfileList: "ProfileList",
          InstalledApplicationList: "InstalledApplicationList",
          SecurityInfo: "SecurityInfo",
          CertificateList: "CertificateList",
        }[q.type];
        assert.ok(key && r.result[key] !== undefined, `${q.type} answered without ${key}`);
        if (r.not_now_count > 0) sawNotNowThenAnswer = true;
      }
    }
    assert.ok(sawNotNowThenAnswer, "no command was answered NotNow first and then for good");
    const queues = await Promise.all(
      (await all<{ id: string }>("/v1/enrollments?limit=1000", "enrollments")).map((e) =>
        server.api("GET", `/v1/queue/${encodeURIComponent(e.id)}`),
      ),
    );
    for (const q of queues) assert.deepEqual(q.json.commands, [], `${q.json.enrollment_id} still has queued commands`);
  });

  test("DeviceInformation answers the queries asked, with the device's own facts", async () => {
    const [uuid] = [...queued].find(([, q]) => q.type === "DeviceInformation")!;
    const res = await server.api("GET", `/v1/commands/${uuid}`);
    for (const r of res.json.results) {
      const info = r.result.QueryResponses;
      assert.equal(info.UDID, r.enrollment_id);
      const device = (await server.api("GET", `/v1/enrollments/${r.enrollment_id}`)).json;
      assert.equal(info.SerialNumber, device.serial_number);
      assert.equal(info.OSVersion, device.os_version);
      assert.equal(typeof info.DeviceCapacity, "number");
      assert.match(info.WiFiMAC, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    }
  });

  test("a command the devices do not know is answered Error with MCMDMErrorDomain 12021", async () => {
    assert.ok(unknownUuid);
    const res = await server.api("GET", `/v1/commands/${unknownUuid}`);
    assert.equal(res.json.results.length, 6);
    for (const r of res.json.results) {
      assert.equal(r.status, "Error");
      assert.equal(r.result.ErrorChain[0].ErrorCode, UNKNOWN_COMMAND_ERROR_CODE);
      assert.equal(r.result.ErrorChain[0].ErrorDomain, "MCMDMErrorDomain");
    }
  });
});

test("orchard simulate --json: one JSON object, exit 0, the generated CA written where asked", async () => {
  const caOut = path.join(tmp, "cli-ca");
  const r = await orchard([
    "simulate",
    "--url",
    server.url,
    "--api-key",
    "test-api-key-0123456789abcdef",
    "--devices",
    "3",
    "--users-per-device",
    "1",
    "--network-users",
    "--duration",
    "2500ms",
    "--poll-interval",
    "200ms",
    "--command-interval",
    "500ms",
    "--seed",
    "cli",
    "--ca-out",
    caOut,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const report = JSON.parse(r.stdout);
  for (const key of ["devices", "enrolled", "logins", "commands", "requests", "errors", "latencyMs", "durationMs"])
    assert.ok(key in report, `no ${key}`);
  assert.equal(report.devices, 3);
  assert.equal(report.enrolled, 3);
  assert.equal(report.logins, 2);
  assert.ok(report.commands >= report.commandsEnqueued && report.commandsEnqueued > 0);
  assert.ok(report.requests > 0);
  assert.equal(report.errors, 0);
  assert.equal(report.caCertPath, path.join(caOut, "ca.pem"));
  assert.match(fs.readFileSync(report.caCertPath, "utf8"), /^-----BEGIN CERTIFICATE-----/);
  assert.equal(fs.statSync(path.join(caOut, "ca.key")).mode & 0o077, 0);
  assert.ok(r.stderr.includes(`--ca ${report.caCertPath}`), r.stderr);
});

/** The CLI in-process: the same command code as `orchard simulate`, without a process start. */
function context(): CliContext & { stdout: string; stderr: string } {
  const ctx = {
    stdout: "",
    stderr: "",
    out: (t: string) => void (ctx.stdout += t),
    err: (t: string) => void (ctx.stderr += t),
    env: { ORCHARD_URL: server.url },
    cwd: tmp,
    readStdin: async () => Buffer.alloc(0),
    stdinIsTTY: false,
    readSecret: async () => assert.fail("no terminal in tests"),
  };
  return ctx;
}

test("simulate with a wrong API key: the error in the JSON, exit 1, no device made", async () => {
  const ctx = context();
  assert.equal(await runWith(ctx, "simulate", ["--api-key", "wrong", "--devices", "2", "--duration", "1s", "--json"]), 1, ctx.stderr);
  const report = JSON.parse(ctx.stdout);
  assert.equal(report.errors, 1);
  assert.match(report.errorKinds.api.example, /401.*--api-key/);
  assert.equal(report.enrolled, 0);
  assert.equal(report.requests, 0);
  assert.match(ctx.stderr, /saw 1 error/);
});

test("simulate usage errors exit 2", async () => {
  for (const args of [
    ["--devices", "2", "--cert-header", "x-client-cert", "--sign-messages"],
    ["--devices", "0"],
    ["--devices", "2", "--ca-cert", "ca.pem"],
    ["--devices", "2", "--duration", "soon"],
    ["--devices", "2", "--not-now", "2"],
    ["--devices", "2", "--network-users", "--users-per-device", "0"],
  ]) {
    const ctx = context();
    assert.equal(await runWith(ctx, "simulate", args), 2, `${args.join(" ")}: ${ctx.stderr}`);
    assert.match(ctx.stderr, /^orchard: .*\nusage: orchard simulate/, args.join(" "));
  }
});

test("a server that trusts another device CA: every enrollment is an error, the logins never start", async () => {
  const other = await createCa({ commonName: "Another Device CA" });
  const caFile = path.join(tmp, "other-ca.pem");
  fs.writeFileSync(caFile, other.certPem);
  const strict = await startTestServer(["--ca", caFile]);
  try {
    const report = await runSimulation(
      options(strict.url, { devices: 2, platform: "macOS", usersPerDevice: 1, networkUsers: true, durationMs: 1_500, seed: "other-ca" }),
    );
    assert.equal(report.enrolled, 0);
    assert.equal(report.logins, 0);
    assert.equal(report.errors, 2);
    assert.equal(report.errorKinds.enroll?.count, 2);
    assert.match(report.errorKinds.enroll!.example, /^Authenticate of .*: HTTP 400.*start it with --ca /);
    assert.equal((await strict.api("GET", "/v1/enrollments")).json.enrollments.length, 0);
  } finally {
    await strict.stop();
  }
});

/**
 * A reverse proxy serving `target` under /orchard, as a deployment behind a
 * path prefix would. With `fakeChallenges` it answers POST
 * /v1/scep/challenges itself, with a challenge the server never made; with
 * `scepTarget` SCEP and its challenges go to another server.
 */
async function prefixProxy(
  target: string,
  o: { fakeChallenges?: boolean; scepTarget?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const proxy = http.createServer((req, res) => {
    if (!req.url?.startsWith("/orchard/")) return void res.writeHead(404).end("not under /orchard");
    const path = req.url.slice("/orchard".length);
    if (o.fakeChallenges && req.method === "POST" && path === "/v1/scep/challenges") {
      req.resume();
      return void res
        .writeHead(201, { "content-type": "application/json" })
        .end(JSON.stringify({ challenge: "not-issued-by-this-server", expires_at: new Date(Date.now() + 60_000).toISOString() }));
    }
    const upstream = new URL(o.scepTarget && /^\/(v1\/)?scep(\/|\?|$)/.test(path) ? o.scepTarget : target);
    const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/orchard/`,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      }),
  };
}

describe("--scep: the devices' identities from the server's own SCEP, behind a path prefix", () => {
  // The server trusts an unrelated CA and its own device CA, nothing else:
  // enrolling at all shows the certificates are the device CA's.
  let strict: TestServer;
  let proxy: Awaited<ReturnType<typeof prefixProxy>>;
  let report: SimulationReport;

  before(async () => {
    const unrelated = await createCa({ commonName: "Unrelated Device CA", keyAlgorithm: "ECDSA" });
    const caFile = path.join(tmp, "unrelated-ca.pem");
    fs.writeFileSync(caFile, unrelated.certPem);
    strict = await startTestServer(["--ca", caFile]);
    proxy = await prefixProxy(strict.url);
    report = await runSimulation(
      options(proxy.url, {
        devices: 4,
        usersPerDevice: 1,
        networkUsers: true,
        scep: true,
        caOutDir: undefined,
        durationMs: 2_500,
        seed: "scep",
      }),
    );
  });
  after(async () => {
    await proxy?.close();
    await strict?.stop();
  });

  test("every device gets a certificate, enrolls, logs in its user and answers, no errors", () => {
    assert.deepEqual(report.errorKinds, {});
    assert.equal(report.identitySource, "scep");
    assert.equal(report.scepUrl, `${proxy.url}scep`);
    assert.equal(report.scepCertificates, 4);
    assert.equal(report.caCertPath, undefined);
    assert.equal(report.enrolled, 4);
    assert.equal(report.logins, 2);
    assert.equal(report.userChannels, 2);
    assert.ok(report.commandsEnqueued >= 6, `only ${report.commandsEnqueued} commands queued`);
    assert.equal(report.commands, report.commandsEnqueued);
    assert.equal(report.unanswered, 0);
  });

  test("the server binds each device to its own certificate from its device CA's SCEP", async () => {
    const devices = (await strict.api("GET", "/v1/enrollments?type=Device&limit=100")).json.enrollments as Array<{ id: string }>;
    assert.equal(devices.length, 4);
    const fingerprints = new Set<string>();
    for (const d of devices) {
      const fingerprint = (await strict.store.enrollments.bindingOf(d.id))?.fingerprint;
      assert.ok(fingerprint, d.id);
      fingerprints.add(fingerprint);
      const issued = await strict.store.scep.certificateByFingerprint(fingerprint);
      assert.ok(issued, `${d.id}: its certificate is not one the SCEP server issued`);
      assert.equal(issued.requestType, "PKCSReq");
      const cert = new X509Certificate(issued.certDer);
      assert.ok(cert.verify(strict.deviceCa.cert.publicKey), "signed by the device CA");
      assert.ok(cert.checkIssued(strict.deviceCa.cert));
      assert.equal(cert.subject, `CN=${d.id}`);
    }
    assert.equal(fingerprints.size, 4);
  });

  test("a refused PKCSReq is a scep error per device, with the failInfo; nothing enrolls", async () => {
    const faking = await prefixProxy(strict.url, { fakeChallenges: true });
    try {
      const r = await runSimulation(
        options(faking.url, { devices: 2, scep: true, caOutDir: undefined, durationMs: 1_500, seed: "scep-refused" }),
      );
      assert.equal(r.enrolled, 0);
      assert.equal(r.scepCertificates, 0);
      assert.equal(r.errors, 2, JSON.stringify(r.errorKinds));
      assert.equal(r.errorKinds.scep?.count, 2);
      assert.match(r.errorKinds.scep!.example, /^SCEP PKCSReq of .*: SCEP refused: badRequest /);
    } finally {
      await faking.close();
    }
  });

  test("a certificate from another server's SCEP is refused at Authenticate; the hint does not suggest --ca", async () => {
    // SCEP answered by the shared test server (its own device CA), check-ins by the strict one.
    const split = await prefixProxy(strict.url, { scepTarget: server.url });
    try {
      const r = await runSimulation(
        options(split.url, { devices: 2, scep: true, caOutDir: undefined, durationMs: 1_500, seed: "scep-split" }),
      );
      assert.equal(r.scepCertificates, 2);
      assert.equal(r.enrolled, 0);
      assert.equal(r.errors, 2, JSON.stringify(r.errorKinds));
      const example = r.errorKinds.enroll?.example ?? "";
      assert.match(
        example,
        /^Authenticate of .*: HTTP 400.*not issued by a trusted CA.*from the server's own SCEP at \/orchard\/scep.*--device-ca-cert/,
      );
      assert.doesNotMatch(example, /--ca[ -]/);
    } finally {
      await split.close();
    }
  });

  test("orchard simulate --scep: the summary says where the identities came from", async () => {
    const ctx = context();
    const code = await runWith(ctx, "simulate", [
      "--url",
      proxy.url,
      "--api-key",
      "test-api-key-0123456789abcdef",
      "--scep",
      "--devices",
      "2",
      "--no-commands",
      "--duration",
      "1s",
      "--poll-interval",
      "200ms",
    ]);
    assert.equal(code, 0, ctx.stderr + ctx.stdout);
    assert.match(
      ctx.stdout,
      /^devices: +2 .*\nidentities: +from the server's SCEP, http:\/\/127\.0\.0\.1:\d+\/orchard\/scep \(2 issued\)\nenrolled: +2\/2\n/m,
    );
  });
});

test("--scep is refused with --ca-cert, --ca-key or --ca-out", async () => {
  for (const args of [
    ["--devices", "2", "--scep", "--ca-cert", "x", "--ca-key", "y"],
    ["--devices", "2", "--scep", "--ca-out", "dir"],
  ]) {
    const ctx = context();
    assert.equal(await runWith(ctx, "simulate", args), 2, `${args.join(" ")}: ${ctx.stderr}`);
    assert.match(
      ctx.stderr,
      /^orchard: --scep takes the certificates from the server's SCEP: not with --ca-.*\nusage: orchard simulate/,
      args.join(" "),
    );
  }
});

test("every device enrolls before --duration starts, however short it is (what a run covers does not depend on load)", async () => {
  const report = await runSimulation(options(server.url, { devices: 6, usersPerDevice: 1, durationMs: 1, commands: false, seed: "short" }));
  assert.deepEqual(report.errorKinds, {});
  assert.equal(report.enrolled, 6);
});

test("--rate bounds the requests per second of the whole run", async () => {
  const report = await runSimulation(
    options(server.url, { devices: 4, rate: 20, durationMs: 1_500, pollIntervalMs: 20, commandIntervalMs: 300, seed: "rate" }),
  );
  assert.equal(report.errors, 0, JSON.stringify(report.errorKinds));
  const sent = report.requests + report.apiRequests;
  // Without the limit these devices poll every 20 ms: hundreds of requests.
  assert.ok(sent <= 2 + 20 * (report.durationMs / 1000) + 1, `${sent} requests in ${report.durationMs} ms`);
  assert.ok(sent >= 10, `only ${sent} requests`);
});

test("with the Mdm-Signature identity and a given CA, devices enroll and answer", async () => {
  const made = await createCa({ commonName: "Simulate Test CA", keyAlgorithm: "ECDSA" });
  const ca = { certPem: made.certPem, keyPem: made.keyPem };
  const report = await runSimulation(
    options(server.url, { devices: 2, identity: { kind: "signature" }, ca, durationMs: 3_000, seed: "sig" }),
  );
  assert.deepEqual(report.errorKinds, {});
  assert.equal(report.enrolled, 2);
  assert.equal(report.caCertPath, undefined);
  assert.equal(report.identity, "Mdm-Signature");
  assert.ok(report.commandsEnqueued > 0, "no command was queued");
  assert.equal(report.commands, report.commandsEnqueued);
});

test("the responder: known queries only, unknown request types get an ErrorChain", () => {
  const d: DeviceProfile = {
    udid: "U1",
    serialNumber: "C02XYZ1234",
    platform: "iOS",
    facts: { ProductName: "iPhone15,2", OSVersion: "18.1", BuildVersion: "22B83", DeviceName: "Phone" },
    wifiMac: "a4:00:00:00:00:01",
    bluetoothMac: "a4:00:00:00:00:02",
    capacity: 255.6,
    available: 100.5,
    batteryLevel: 0.5,
    imei: "351234567890123",
    supervised: false,
    identity: { commonName: "U1", der: Buffer.from([1, 2, 3]) },
    ca: { commonName: "CA", der: Buffer.from([4, 5]) },
    users: [],
  };
  const rng = new Rng("t");
  const info = answerCommand(
    { CommandUUID: "1", Command: { RequestType: "DeviceInformation", Queries: ["UDID", "OSVersion", "NoSuchQuery", "BatteryLevel"] } },
    d,
    rng,
  );
  assert.equal(info.status, "Acknowledged");
  assert.deepEqual(info.fields, { QueryResponses: { UDID: "U1", OSVersion: "18.1", BatteryLevel: 0.5 } });
  const certs = answerCommand({ Command: { RequestType: "CertificateList" } }, d, rng);
  assert.deepEqual(
    (certs.fields.CertificateList as Array<{ IsIdentity: boolean }>).map((c) => c.IsIdentity),
    [true, false],
  );
  assert.deepEqual(answerCommand({ Command: { RequestType: "RestartDevice" } }, d, rng), { status: "Acknowledged", fields: {} });
  const unknown = answerCommand({ Command: { RequestType: "Frobnicate" } }, d, rng);
  assert.equal(unknown.status, "Error");
  const chain = unknown.fields.ErrorChain as Array<Record<string, unknown>>;
  assert.equal(chain[0]!.ErrorCode, 12021);
  assert.equal(chain[0]!.ErrorDomain, "MCMDMErrorDomain");
  assert.match(String(chain[0]!.LocalizedDescription), /Frobnicate/);
});

test("fast device certificates: each its own serial and CN, each verifying against the CA", async () => {
  // An EC CA here (quick to make); every run above issues from an RSA one.
  for (const keyAlgorithm of ["ECDSA"] as const) {
    const ca = await createCa({ commonName: `Factory ${keyAlgorithm} CA`, keyAlgorithm });
    const factory = await IdentityFactory.create(ca, await generateKeyPair("ECDSA"));
    const a = factory.issue("0000-A");
    const b = factory.issue("5B7C58F1-0C45-4F55-9A4B-0E1E4B1B8A2D".repeat(4));
    for (const id of [a, b]) {
      assert.ok(id.cert.verify(ca.publicKey), keyAlgorithm);
      assert.ok(id.cert.checkIssued(ca.cert));
      assert.equal(id.cert.subject, `CN=${id.commonName}`);
      assert.equal(id.cert.issuer, ca.cert.subject);
      assert.match(id.certPem, /^-----BEGIN CERTIFICATE-----/);
    }
    assert.notEqual(a.cert.serialNumber, b.cert.serialNumber);
    assert.notEqual(a.fingerprint, b.fingerprint);
    const other = await createCa({ commonName: "Other", keyAlgorithm: "ECDSA" });
    assert.equal(a.cert.verify(other.publicKey), false);
  }
});

test("the seeded random stream repeats for a seed and differs between seeds", () => {
  const a = new Rng("s").fork("device-1");
  const b = new Rng("s").fork("device-1");
  const c = new Rng("s").fork("device-2");
  const ua = a.uuid();
  assert.equal(ua, b.uuid());
  assert.notEqual(ua, c.uuid());
  assert.match(ua, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
});
