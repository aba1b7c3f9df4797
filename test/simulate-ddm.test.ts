// The simulator speaks Declarative Device Management against a real server,
// on both stores: a set assigned to its channels (device and user) queues a
// DeclarativeManagement command, the devices sync (tokens from the command,
// declaration-items, each declaration, a status report) and the server sees
// them compliant through /v1/declaration-status and /v1/set-compliance.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ApiClient } from "../src/cli/api-client.ts";
import type { EnrollmentJson } from "../src/http/wire.ts";
import { DdmChannel, DdmSyncError, type DdmSend } from "../src/sim/ddm.ts";
import { runSimulation, type SimulationReport } from "../src/sim/fleet-sim.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const API_KEY = "test-api-key-0123456789abcdef";
const DECLARATIONS = [
  { Type: "com.apple.configuration.management.test", Identifier: "sim.config", Payload: { Echo: "device", ReturnStatus: "Installed" } },
  { Type: "com.apple.activation.simple", Identifier: "sim.activation", Payload: { StandardConfigurations: ["sim.config"] } },
  { Type: "com.apple.configuration.management.test", Identifier: "sim.user-config", Payload: { Echo: "user" } },
  { Type: "com.apple.activation.simple", Identifier: "sim.user-activation", Payload: { StandardConfigurations: ["sim.user-config"] } },
  // In the device set but named by no activation: reported, not active.
  { Type: "com.apple.configuration.management.test", Identifier: "sim.unreferenced", Payload: { Echo: "idle" } },
];
const SETS: Record<string, string[]> = {
  "sim-devices": ["sim.config", "sim.activation", "sim.unreferenced"],
  "sim-users": ["sim.user-config", "sim.user-activation"],
};

type Status = { identifier: string; active: boolean; valid: string; current: boolean; reasons?: Array<{ code: string }> };

await forEachBackend("the simulator syncs DDM", (backend) => {
  let server: TestServer;
  let tmp: string;
  let report: SimulationReport;
  let channels: EnrollmentJson[] = [];

  before(async () => {
    server = await startTestServer(["--insecure-accept-any-device-cert"], backend);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-sim-ddm-"));
    for (const d of DECLARATIONS) assert.equal((await server.api("PUT", "/v1/declarations", d)).status, 204);
    for (const [set, ids] of Object.entries(SETS))
      for (const id of ids) assert.equal((await server.api("PUT", `/v1/set-declarations/${set}?declaration=${id}`)).status, 204);
    report = await runSimulation({
      url: server.url,
      api: new ApiClient(new URL(server.url), API_KEY),
      devices: 3,
      platform: "macOS",
      usersPerDevice: 1,
      commands: false,
      ddmFirstSync: true,
      durationMs: 6_000,
      pollIntervalMs: 200,
      seed: `sim-ddm-${backend}`,
      caOutDir: path.join(tmp, "ca"),
      // Every channel is open (and has done its first sync): give them their sets.
      onPhase: async (phase) => {
        if (phase !== "run") return;
        channels = (await server.api("GET", "/v1/enrollments?limit=100")).json.enrollments;
        for (const c of channels) {
          const set = c.user_id ? "sim-users" : "sim-devices";
          assert.equal((await server.api("PUT", `/v1/enrollment-sets/${encodeURIComponent(c.id)}?set=${set}`)).status, 204);
        }
      },
    });
  });
  after(async () => {
    await server?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("every channel synced twice (first sync, then the command's), with no error", () => {
    assert.equal(report.errors, 0, JSON.stringify(report.errorKinds));
    assert.equal(channels.length, 6);
    assert.equal(report.requestTypes.DeclarativeManagement?.acknowledged, 6, "one DeclarativeManagement command per channel");
    // First syncs asked for the tokens; the command's syncs took them from its Data.
    assert.equal(report.ddm.tokens, 6);
    assert.equal(report.ddm.syncs, 12);
    assert.equal(report.ddm.changed, 12);
    assert.equal(report.ddm.declarationItems, 12);
    assert.equal(report.ddm.declarations, 3 * 3 + 3 * 2);
    assert.equal(report.ddm.statusReports, 12);
  });

  test("the server sees each channel's declarations active and valid with their current tokens", async () => {
    const ids = channels.map((c) => encodeURIComponent(c.id)).join(",");
    const status: Record<string, Status[]> = (await server.api("GET", `/v1/declaration-status/${ids}`)).json;
    for (const c of channels) {
      const mine = status[c.id]!.map((s) => [s.identifier, s.active, s.valid, s.current, s.reasons?.[0]?.code ?? null]);
      if (c.user_id) {
        assert.deepEqual(mine, [
          ["sim.user-activation", true, "valid", true, null],
          ["sim.user-config", true, "valid", true, null],
        ]);
      } else {
        assert.deepEqual(mine, [
          ["sim.activation", true, "valid", true, null],
          ["sim.config", true, "valid", true, null],
          ["sim.unreferenced", false, "unknown", true, "Info.NotReferencedByActivation"],
        ]);
      }
    }
    const device = channels.find((c) => !c.user_id)!;
    const values = (await server.api("GET", `/v1/status-values/${device.id}?prefix=.StatusItems.device.`)).json[device.id];
    const byPath = Object.fromEntries(values.map((v: { path: string; value: string }) => [v.path, v.value]));
    assert.equal(byPath[".StatusItems.device.identifier.udid"], device.id);
    assert.equal(byPath[".StatusItems.device.operating-system.family"], "macOS");
    assert.equal(byPath[".StatusItems.device.operating-system.version"], device.os_version);
  });

  test("the sets are compliant: every channel reports every activated declaration", async () => {
    const devices = (await server.api("GET", "/v1/set-compliance/sim-devices")).json;
    assert.equal(devices.enrollments, 3);
    assert.deepEqual(
      devices.declarations.map((d: { identifier: string; compliant: number; failing: number; pending: number }) => [
        d.identifier,
        d.compliant,
        d.failing,
        d.pending,
      ]),
      [
        ["sim.activation", 3, 0, 0],
        ["sim.config", 3, 0, 0],
        ["sim.unreferenced", 0, 3, 0],
      ],
    );
    const users = (await server.api("GET", "/v1/set-compliance/sim-users")).json;
    assert.deepEqual(
      users.declarations.map((d: { compliant: number; pending: number }) => [d.compliant, d.pending]),
      [
        [3, 0],
        [3, 0],
      ],
    );
  });
});

/** A scripted server for the client alone: each endpoint's answer. */
function scripted(answers: Record<string, unknown>, seen: string[]): DdmSend {
  return async (endpoint, data) => {
    seen.push(data ? `${endpoint} ${data.toString("utf8")}` : endpoint);
    if (endpoint !== "status" && !(endpoint in answers)) return { status: 404, body: Buffer.from("not found") };
    return { status: 200, body: Buffer.from(endpoint === "status" ? "" : JSON.stringify(answers[endpoint])) };
  };
}

const items = (configs: Array<[string, string]>) => ({
  Declarations: {
    Activations: [],
    Configurations: configs.map(([i, t]) => ({ Identifier: i, ServerToken: t })),
    Assets: [],
    Management: [],
  },
  DeclarationsToken: "T",
});
const config = (id: string, token: string, echo: string) => ({
  Type: "com.apple.configuration.management.test",
  Identifier: id,
  ServerToken: token,
  Payload: { Echo: echo },
});

test("the DDM client: unchanged tokens end the sync; only changed declarations are fetched; a removal makes a full report", async () => {
  const c = new DdmChannel();
  const seen: string[] = [];
  const tokens = (t: string) => ({ SyncTokens: { DeclarationsToken: t, Timestamp: "2026-12-03T00:00:00Z" } });
  let r = await c.sync(
    scripted(
      {
        tokens: tokens("A"),
        "declaration-items": items([
          ["a", "1"],
          ["b", "1"],
        ]),
        "declaration/configuration/a": config("a", "1", "x"),
        "declaration/configuration/b": config("b", "1", "y"),
      },
      seen,
    ),
  );
  assert.deepEqual(r, { tokens: 1, declarationItems: 1, declarations: 2, statusReports: 1, changed: true });
  assert.equal(JSON.parse(seen.at(-1)!.slice("status ".length)).FullReport, true);

  seen.length = 0;
  r = await c.sync(scripted({ tokens: tokens("A") }, seen));
  assert.deepEqual(seen, ["tokens"], "the same DeclarationsToken: nothing more");
  assert.equal(r.changed, false);

  // The command's Data carries the tokens: no tokens request; b changed, a did not.
  seen.length = 0;
  const data = Buffer.from(JSON.stringify(tokens("B")));
  await c.sync(
    scripted(
      {
        "declaration-items": items([
          ["a", "1"],
          ["b", "2"],
        ]),
        "declaration/configuration/b": config("b", "2", "z"),
      },
      seen,
    ),
    data,
  );
  assert.deepEqual(seen.slice(0, 2), ["declaration-items", "declaration/configuration/b"]);
  const partial = JSON.parse(seen[2]!.slice("status ".length));
  assert.equal(partial.FullReport, false);
  assert.deepEqual(
    partial.StatusItems.management.declarations.configurations.map((d: { identifier: string }) => d.identifier),
    ["b"],
  );

  seen.length = 0;
  await c.sync(scripted({ tokens: tokens("C"), "declaration-items": items([["b", "2"]]) }, seen));
  const full = JSON.parse(seen.at(-1)!.slice("status ".length));
  assert.equal(full.FullReport, true, "a declaration went away");
  assert.deepEqual([...c.installed.keys()], ["b"]);

  // A declaration that is not the one listed is an error, and the sync does not count as done.
  await assert.rejects(
    c.sync(
      scripted({ tokens: tokens("D"), "declaration-items": items([["b", "3"]]), "declaration/configuration/b": config("b", "2", "z") }, []),
    ),
    DdmSyncError,
  );
  assert.equal(c.token, "C");
});
