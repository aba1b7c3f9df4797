// bin/bundle.js: the bundle plain node runs (bin/orchard.js), rebuilt when
// src/ changes, and what bin/orchard.js does when it cannot be built.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { bundlePath, bundleStamp, ensureOrchardBundle, ROOT, sourceStamp } from "../bin/bundle.js";

const BIN = path.join(ROOT, "bin", "orchard.js");

/** A checkout of its own: a small src/ with the three modules the bundle exports and the webhook sender's entry, and node_modules linked. */
function miniCheckout(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bundle-"));
  fs.mkdirSync(path.join(dir, "src", "cli"), { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), '{ "type": "module", "version": "9.9.9" }\n');
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  fs.writeFileSync(
    path.join(dir, "src", "cli", "main.ts"),
    'import { word } from "../word.ts";\nexport async function main(argv: string[]): Promise<void> {\n  // a comment — not ASCII\n  process.stdout.write(word + ": " + argv.join(" ") + "\\n");\n}\n',
  );
  fs.writeFileSync(path.join(dir, "src", "word.ts"), 'export const word: string = "one";\n');
  fs.writeFileSync(path.join(dir, "src", "server.ts"), "export function startServer(): void {}\n");
  fs.writeFileSync(path.join(dir, "src", "config.ts"), "export function parseServeArgs(): void {}\n");
  fs.mkdirSync(path.join(dir, "src", "webhook"));
  fs.writeFileSync(path.join(dir, "src", "webhook", "sender-worker.ts"), 'export const SENDER_THREAD: string = "sender";\n');
  return dir;
}

describe("the bundle", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("is built once, carries its sources' stamp, is ASCII, and is rebuilt when a source changes", async () => {
    const dir = miniCheckout();
    dirs.push(dir);
    const file = ensureOrchardBundle(dir);
    assert.equal(file, bundlePath(dir));
    assert.equal(bundleStamp(file), sourceStamp(dir));
    const text = fs.readFileSync(file, "utf8");
    assert.match(text, /"one"/);
    assert.doesNotMatch(text, /[^\0-\x7f]/, "one non-ASCII character would make V8 keep the whole source as two-byte");
    assert.ok(fs.existsSync(`${file}.map`));
    assert.match(
      fs.readFileSync(path.join(path.dirname(file), "webhook-sender.mjs"), "utf8"),
      /"sender"/,
      "the sender thread's bundle beside it",
    );
    const built = fs.statSync(file).mtimeMs;

    assert.equal(ensureOrchardBundle(dir), file, "up to date: used as it is");
    assert.equal(fs.statSync(file).mtimeMs, built);

    fs.writeFileSync(path.join(dir, "src", "word.ts"), 'export const word: string = "two";\n');
    fs.utimesSync(path.join(dir, "src", "word.ts"), new Date(), new Date(Date.now() + 5000));
    assert.notEqual(bundleStamp(file), sourceStamp(dir));
    assert.equal(ensureOrchardBundle(dir), file);
    assert.match(fs.readFileSync(file, "utf8"), /"two"/);
    // Plain node runs it: no loader.
    const run = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", `const m = await import(${JSON.stringify("file://" + file)}); await m.main(["a", "b"]);`],
      {
        encoding: "utf8",
      },
    );
    assert.equal(run.stdout, "two: a b\n", run.stderr);
  });

  it("names the file and line of a source that does not build", () => {
    const dir = miniCheckout();
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, "src", "word.ts"), "export const word: string = ;\n");
    const result = ensureOrchardBundle(dir);
    assert.ok(result instanceof Error);
    assert.match(result.message, /cannot build dist\/orchard\.mjs: src\/word\.ts:1: /);
  });

  it("bin/orchard.js runs the checkout's bundle, without tsx's loader thread", () => {
    // `orchard help`, then the process's thread count: tsx runs its module hooks in a thread of their own.
    const threads = (runtime: string) => {
      const run = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `await import(${JSON.stringify("file://" + BIN)}); process.stdout.write("threads " + /Threads:\\s+(\\d+)/.exec((await import("node:fs")).readFileSync("/proc/self/status", "utf8"))[1]);`,
        ],
        { encoding: "utf8", env: { ...process.env, ORCHARD_RUNTIME: runtime } },
      );
      assert.match(run.stdout, /^usage: orchard <command>/, run.stderr);
      return Number(/threads (\d+)$/.exec(run.stdout)?.[1]);
    };
    const bundled = threads("");
    assert.equal(bundleStamp(bundlePath()), sourceStamp(), "bin/orchard.js left an up-to-date bundle");
    const tsx = threads("tsx");
    assert.ok(bundled > 0 && tsx > bundled, `threads: bundle ${bundled}, tsx ${tsx}`);
  });
});

describe("orchard serve from the bundle", () => {
  it("serves the console: its client is found from dist/ as from src/ (a 500 before)", async () => {
    const { spawnOrchard } = await import("./support/process.ts");
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bundle-serve-"));
    const server = await spawnOrchard(["--data-dir", dataDir]);
    try {
      const page = await fetch(`${server.url}/ui/`);
      assert.equal(page.status, 200, await page.text());
      const script = /src="([^"]+\.js[^"]*)"/.exec(await (await fetch(`${server.url}/ui/`)).text())?.[1];
      assert.ok(script, "the page names its script");
      const js = await fetch(new URL(script!, `${server.url}/ui/`));
      assert.equal(js.status, 200);
      assert.ok((await js.text()).length > 1000, "the bundled client");
    } finally {
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
