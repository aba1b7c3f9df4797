// The README's flag table and `orchard serve --help` come from the table the
// parser reads: a flag added, renamed or given another default shows in both.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { SERVE_FLAGS, envName } from "../src/config.ts";
import { readmeFlagTable, serveHelp } from "../src/cli/serve-flags.ts";
import { runOrchard } from "./support/cli.ts";

const README = new URL("../README.md", import.meta.url);

test("the README's flag table is the parser's table", () => {
  const text = fs.readFileSync(README, "utf8");
  const start = text.indexOf("| flag | default | meaning |");
  assert.ok(start >= 0, "the README has a flag table");
  const end = text.indexOf("\n\n", start);
  const table = text.slice(start, end);
  assert.equal(table, readmeFlagTable(), `README.md's flag table differs; it should be:\n${readmeFlagTable()}`);
});

test("orchard serve --help lists every flag with its default and environment variable", async () => {
  const run = await runOrchard(["serve", "--help"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, serveHelp());
  for (const name of Object.keys(SERVE_FLAGS)) {
    assert.match(run.stdout, new RegExp(`^  --${name}( |$)`, "m"), name);
    assert.ok(run.stdout.includes(`env: ${envName(name)}`), name);
  }
  assert.match(run.stdout, /--listen HOST:PORT\n {6}where to listen\n {6}default: 127\.0\.0\.1:9000; env: ORCHARD_LISTEN/);
});
