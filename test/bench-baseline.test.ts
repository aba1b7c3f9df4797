// The bench's --baseline-orchard: the smallest A/B it can run (this tree
// against HEAD, one short run of Idle), read back from the results file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { resolveBaseRevision } from "../bench/base-orchard.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function headCommit(): string | undefined {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}
const head = headCommit();
const noGit = head === undefined ? "not a git checkout" : false;

test("a revision is resolved to its full hash, and one that names no commit is refused", { skip: noGit }, () => {
  const r = resolveBaseRevision(ROOT, "HEAD");
  assert.equal(r.commit, head);
  assert.equal(r.rev, "HEAD");
  assert.ok(r.describe.length > 0);
  assert.throws(() => resolveBaseRevision(ROOT, "no-such-revision-3f1c"), /--baseline-orchard no-such-revision-3f1c: not a commit/);
  assert.throws(() => resolveBaseRevision(ROOT, "--output=x"), /is not a git revision/);
});

test("--baseline-orchard HEAD runs a base row beside each Orchard row and records x base", { skip: noGit, timeout: 120_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-baseline-"));
  try {
    const out = path.join(tmp, "ab");
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "bench/run.ts",
        ...["--quick", "--scenarios", "idle", "--baseline-orchard", "HEAD"],
        ...["--devices", "4", "--runs", "1", "--duration", "200ms", "--warmup", "0", "--out", out],
        // A node flag A/B'd on one build: each side runs with its own.
        "--server-node-args=--max-semi-space-size=8",
        "--base-server-node-args=--max-semi-space-size=4",
      ],
      // The base's tree is exported under TMPDIR: this one, so that what is left of it shows.
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, TMPDIR: tmp }, timeout: 110_000 },
    );
    assert.equal(r.status, 0, `bench exited ${r.status}:\n${r.stderr.slice(-3000)}`);
    assert.match(r.stdout, /\| x base \|/);
    assert.match(r.stdout, /^base-idle /m);
    assert.match(r.stderr, /sqlite idle: server pid \d+ at \S+ \(node --max-semi-space-size=8\)/);
    assert.match(r.stderr, /sqlite base-idle: server pid \d+ at \S+ \(node --max-semi-space-size=4\)/);

    const results = JSON.parse(fs.readFileSync(`${out}-idle.json`, "utf8"));
    const base = results.parameters.baselineOrchard;
    assert.equal(base.rev, "HEAD");
    assert.equal(base.commit, head);
    assert.equal(typeof base.describe, "string");
    assert.deepEqual(base.rows, ["base-idle"]);
    assert.deepEqual(results.parameters.rows, ["floor", "idle", "base-idle"]);
    assert.deepEqual(results.parameters.serverNodeArgs, ["--max-semi-space-size=8"]);
    assert.deepEqual(results.parameters.baseServerNodeArgs, ["--max-semi-space-size=4"]);

    const rows = results.backends.sqlite.scenarios;
    assert.equal(rows["base-idle"].baseline, "orchard");
    assert.equal(rows["base-idle"].scenario, "idle");
    assert.equal(rows["base-idle"].runs.length, 1);
    assert.ok(rows["base-idle"].median.reqPerSec > 0);
    assert.equal(rows["base-idle"].median.xBase, undefined, "a base row is not compared with itself");
    const idle = rows.idle;
    assert.equal(idle.baseline, undefined);
    const run = idle.runs[0];
    const baseRun = rows["base-idle"].runs[0];
    assert.equal(run.xBase, Math.round((run.reqPerSec / baseRun.reqPerSec) * 10000) / 10000, "x base: the round's req/s ratio");
    assert.equal(idle.median.xBase, run.xBase);

    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.startsWith("orchard-bench-base-")),
      [],
      "the base's exported tree is removed at the end",
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("an Orchard row and its base row swap places every other round; other rows keep theirs", async () => {
  const { roundOrder } = await import("../bench/base-orchard.ts");
  const rows = ["floor", "idle", "base-idle", "roundtrip", "base-roundtrip", "nanomdm-roundtrip"].map((name) => ({ name }));
  const names = (round: number) => roundOrder(rows, round).map((r) => r.name);
  assert.deepEqual(names(1), ["floor", "idle", "base-idle", "roundtrip", "base-roundtrip", "nanomdm-roundtrip"]);
  assert.deepEqual(names(2), ["floor", "base-idle", "idle", "base-roundtrip", "roundtrip", "nanomdm-roundtrip"]);
  assert.deepEqual(names(3), names(1));
  assert.deepEqual(
    rows.map((r) => r.name),
    ["floor", "idle", "base-idle", "roundtrip", "base-roundtrip", "nanomdm-roundtrip"],
  );
});
