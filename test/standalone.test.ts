// A user's clone has nothing beside it: no source, test, bench or CI file may
// read from a folder outside the repository (the developers' shared folder).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUTSIDE = ["..", "shared"].join("/");
const ABSOLUTE = new RegExp(["", "work", "shared"].join("\\/") + "\\b");

function* files(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && entry.name !== "results") yield* files(full);
    } else if (/\.(ts|js|sh)$/.test(entry.name) || entry.name === "run") yield full;
  }
}

test("nothing in src/, test/, bench/ or .ci/ reads the shared folder beside the checkout", () => {
  const offenders: string[] = [];
  for (const dir of ["src", "test", "bench", ".ci", "bin"]) {
    const abs = path.join(ROOT, dir);
    if (!fs.existsSync(abs)) continue;
    for (const file of files(abs)) {
      const text = fs.readFileSync(file, "utf8");
      if (text.includes(OUTSIDE) || ABSOLUTE.test(text)) offenders.push(path.relative(ROOT, file));
    }
  }
  assert.deepEqual(offenders, []);
});
