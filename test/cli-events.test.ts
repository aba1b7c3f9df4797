// `orchard events`: newest first, and --follow printing each new event once
// as it is recorded, until interrupted.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext } from "./support/cli.ts";
import type { EventType, NewEvent } from "../src/store/event-types.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../bin/orchard.js");
let server: TestServer;

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.stop();
});

// Catalogue types with a test's detail ({n}): the store does not check a detail's shape at run time.
const add = (type: EventType, n: number) =>
  server.store.events.add({ type, enrollmentId: "FOLLOW-1", detail: { n } } as unknown as NewEvent, Date.now());

test("--newest-first lists the newest first and pages backwards", async () => {
  for (let n = 1; n <= 3; n++) await add("enrollment.profile", n);
  const ctx = cliContext(server.url);
  assert.equal(await runWith(ctx, "events", ["--type", "enrollment.profile", "--newest-first", "--limit", "2", "--json"]), 0, ctx.stderr);
  const page = JSON.parse(ctx.stdout);
  assert.deepEqual(
    page.events.map((e: { detail: { n: number } }) => e.detail.n),
    [3, 2],
  );
  const rest = cliContext(server.url);
  assert.equal(
    await runWith(rest, "events", ["--type", "enrollment.profile", "--newest-first", "--cursor", page.next_cursor, "--json"]),
    0,
  );
  assert.deepEqual(
    JSON.parse(rest.stdout).events.map((e: { detail: { n: number } }) => e.detail.n),
    [1],
  );
  const unknown = cliContext(server.url);
  assert.notEqual(await runWith(unknown, "events", ["--type", "cli.order"]), 0);
  assert.match(unknown.stderr, /unknown --type "cli.order": one of device.authenticated/);
  const bad = await server.api("GET", "/v1/events?order=sideways");
  assert.equal(bad.status, 400);
});

/** `orchard events --follow ARGS` as a child process, with its output so far and a way to wait for it. */
function followEvents(args: string[]) {
  const child = spawn(process.execPath, [BIN, "events", "--follow", "--interval", "100ms", ...args], {
    env: { ...process.env, ORCHARD_URL: server.url, ORCHARD_API_KEY: "test-api-key-0123456789abcdef" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (c) => (out.stdout += c));
  child.stderr.on("data", (c) => (out.stderr += c));
  const waitFor = (what: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (what()) resolve();
        else if (child.exitCode !== null) reject(new Error(`orchard exited: ${out.stderr}`));
        else setTimeout(check, 20);
      };
      check();
    });
  return { child, out, waitFor };
}

test("--follow prints the recent events, then each new one once, and stops on Ctrl-C", async () => {
  await add("pushcert.removed", 1);
  await add("pushcert.removed", 2);
  const { child, out, waitFor } = followEvents(["--type", "pushcert.removed", "--json"]);
  const seen = () =>
    out.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l).detail.n as number);
  try {
    await waitFor(() => out.stderr.includes("following events"));
    assert.deepEqual(seen(), [1, 2]);
    await add("pushcert.removed", 3);
    await add("push.sent", 99);
    await add("pushcert.removed", 4);
    await waitFor(() => seen().length >= 4);
    assert.deepEqual(seen(), [1, 2, 3, 4]);
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    child.kill("SIGINT");
    assert.equal(await exited, 0, out.stderr);
    assert.deepEqual(seen(), [1, 2, 3, 4], "nothing printed twice");
  } finally {
    child.kill("SIGKILL");
  }
});

test("--follow's lines show a device's control characters escaped, as the table does (C1 ones too)", async () => {
  // An enrollment id is the device's to choose; U+009B is a terminal's CSI.
  const evil = "EVIL\u009b2J\u009b31mPWNED";
  await server.store.events.add({ type: "device.checked_out", enrollmentId: evil } as NewEvent, Date.now());
  const { child, out, waitFor } = followEvents(["--type", "device.checked_out"]);
  try {
    await waitFor(() => out.stdout.includes("EVIL"));
    assert.ok(!out.stdout.includes("\u009b"), JSON.stringify(out.stdout));
    assert.match(out.stdout, /EVIL\\x9b2J\\x9b31mPWNED/);
  } finally {
    child.kill("SIGKILL");
  }
  // --json (here the list; --follow --json writes its lines the same way): escaped in the JSON, the same value parsed.
  const ctx = cliContext(server.url);
  assert.equal(await runWith(ctx, "events", ["--type", "device.checked_out", "--json"]), 0, ctx.stderr);
  assert.ok(!ctx.stdout.includes("\u009b"), ctx.stdout);
  assert.equal(JSON.parse(ctx.stdout).events[0].enrollment_id, evil);
});
