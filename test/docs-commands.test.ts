// Every `orchard` command the README and docs/ show is one the CLI accepts:
// client commands run against a test server (placeholders filled in; a file
// the page assumes may be missing, so exit 1 is fine, a usage error is not),
// `orchard serve` lines parse with the server's own flag parser, and
// `orchard backup` backs up a test server's data dir, `orchard restore` puts
// such a backup into a data dir of its own. Every `curl` line
// against "$URL" runs too, through bash: it reaches a route the server has
// and gets no 5xx.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseServeArgs } from "../src/config.ts";
import { runWith } from "../src/cli/client-commands.ts";
import { backup } from "../src/cli/backup.ts";
import { restore } from "../src/cli/restore.ts";
import { cliContext } from "./support/cli.ts";
import { commandPlist } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PAGES = [
  "README.md",
  ...fs
    .readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const UDID = "0000FE00-1111-2222-3333-444455556666";

interface DocCommand {
  page: string;
  line: string;
  args: string[];
}

/** The lines of a page's shell code blocks, continuation lines joined. */
function shellLines(page: string): Array<{ page: string; line: string }> {
  const found: Array<{ page: string; line: string }> = [];
  let inBlock = false;
  let shell = false;
  let pending = "";
  for (const raw of fs.readFileSync(path.join(ROOT, page), "utf8").split("\n")) {
    const fence = /^\s*```(\w*)/.exec(raw);
    if (fence) {
      inBlock = !inBlock;
      shell = inBlock && ["", "sh", "bash", "shell", "console"].includes(fence[1]!);
      pending = "";
      continue;
    }
    if (!inBlock || !shell) continue;
    const line = pending + raw.trim();
    if (line.endsWith("\\")) {
      pending = line.slice(0, -1) + " ";
      continue;
    }
    pending = "";
    if (line !== "" && !line.startsWith("#")) found.push({ page, line });
  }
  return found;
}

/**
 * The files a page's shell blocks write with a heredoc (`cat > name <<'EOF'`
 * up to `EOF`): written into the commands' directory, so that the commands
 * after them find them.
 */
function heredocFiles(page: string): Array<{ name: string; text: string }> {
  const files: Array<{ name: string; text: string }> = [];
  let open: { name: string; end: string; lines: string[] } | undefined;
  for (const raw of fs.readFileSync(path.join(ROOT, page), "utf8").split("\n")) {
    if (open) {
      if (raw.trim() === open.end) files.push({ name: open.name, text: open.lines.join("\n") + "\n" }), (open = undefined);
      else open.lines.push(raw);
      continue;
    }
    const m = /^\s*cat > ([\w.-]+) <<'?(\w+)'?\s*$/.exec(raw);
    if (m) open = { name: m[1]!, end: m[2]!, lines: [] };
  }
  return files;
}

/** The `orchard ...` invocations in a page's shell code blocks. */
function docCommands(page: string): DocCommand[] {
  const found: DocCommand[] = [];
  for (const { line } of shellLines(page)) {
    const m = /(?:^|[|;&]\s*)(?:npx )?orchard (.*)$/.exec(line);
    if (m) found.push({ page, line, args: words(m[1]!) });
  }
  return found;
}

/** Shell words, with comments, redirections, `...` and command substitutions dealt with. */
function words(text: string): string[] {
  const filled = text
    .replace(/\$\(openssl rand -hex 16\)/g, "0123456789abcdef0123456789abcdef")
    .replace(/\$\(date \+%F\)/g, "2026-01-01")
    .replace(/\$ORCHARD_API_KEY/g, "test-api-key-0123456789abcdef")
    .replace(/<UDID>|\bUDID[12]?\b/g, UDID)
    .replace(/<SHA-256>/g, "a".repeat(64));
  const out: string[] = [];
  for (const m of filled.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) {
    const word = m[1] ?? m[2] ?? m[3]!;
    if (m[3] !== undefined && (word.startsWith("#") || /^[<>|]/.test(word))) break;
    if (word !== "...") out.push(word);
  }
  return out;
}

let server: TestServer;
let cwd: string;
before(async () => {
  server = await startTestServer();
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-docs-"));
  for (const f of PAGES.flatMap(heredocFiles)) fs.writeFileSync(path.join(cwd, f.name), f.text);
});
after(async () => {
  await server?.stop();
  if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
});

const commands = PAGES.flatMap(docCommands);

test("the docs show orchard commands (the extraction finds them)", () => {
  assert.ok(commands.length >= 30, `${commands.length} commands found`);
  assert.ok(commands.some((c) => c.args[0] === "enqueue"));
});

for (const c of commands) {
  test(`${c.page}: orchard ${c.args.join(" ").slice(0, 100)}`, async () => {
    const [name, ...args] = c.args;
    if (name === "serve") {
      assert.doesNotThrow(() => parseServeArgs(args, {}), c.line);
      return;
    }
    if (name === "backup") {
      const at = (flag: string, value: string) => {
        const i = args.indexOf(flag);
        if (i >= 0) args[i + 1] = value;
      };
      at("--data-dir", server.dataDir);
      at("--out", path.join(cwd, `backup-${Math.random().toString(36).slice(2)}`));
      const done = await backup(args, {});
      assert.ok(fs.existsSync(done.database));
      return;
    }
    if (name === "restore") {
      // A backup of the test server's store, restored into a data dir of its own (the server keeps running).
      const from = path.join(cwd, `backup-${Math.random().toString(36).slice(2)}`);
      await backup(["--data-dir", server.dataDir, "--out", from], {});
      const into = path.join(cwd, `restored-${Math.random().toString(36).slice(2)}`);
      const a = [...args];
      a[a.indexOf("--from") + 1] = from;
      if (a.includes("--data-dir")) a[a.indexOf("--data-dir") + 1] = into;
      else a.push("--data-dir", into);
      const done = await restore(a, {});
      assert.ok(fs.existsSync(path.join(done.dataDir, "orchard.db")), c.line);
      return;
    }
    // Never a host the page names: the test server, small and short runs.
    for (let i = 0; i < args.length; i++) {
      if (args[i] === "--url") args[i + 1] = server.url;
      if (name === "simulate" && args[i] === "--devices") args[i + 1] = "2";
      if (name === "simulate" && args[i] === "--duration") args[i + 1] = "1s";
    }
    // As at a terminal, where the pages' commands that ask for a password or passphrase are typed.
    const ctx = { ...cliContext(server.url, { cwd }), stdinIsTTY: true, readSecret: async () => "doc-test-passphrase" };
    const code = await runWith(ctx, name!, args);
    assert.notEqual(code, 2, `a usage error:\n${c.line}\n${ctx.stderr}`);
  });
}

// The curl lines: each curl answers to a file of its own (the status to
// stderr), so that a line's own redirections and pipes still work.
const curls = PAGES.flatMap(shellLines).filter((l) => /\bcurl\b/.test(l.line) && l.line.includes("$URL"));

test("the docs show curl calls of the API (the extraction finds them)", () => {
  assert.ok(curls.length >= 20, `${curls.length} curl lines found`);
});

for (const c of curls) {
  test(`${c.page}: ${c.line.slice(0, 110)}`, async () => {
    const bodies = fs.mkdtempSync(path.join(cwd, "bodies-"));
    fs.writeFileSync(path.join(cwd, "cmd.plist"), commandPlist("DeviceInformation"));
    fs.writeFileSync(path.join(cwd, "users.htdigest"), "docuser:fusion.home:0123456789abcdef0123456789abcdef\n");
    for (const junk of ["push.pem", "push.key", "other.pem", "other.key", "push.p12"])
      fs.writeFileSync(path.join(cwd, junk), "not a certificate\n");
    const script = c.line.replace(/\bcurl /g, `curl -sS -o "$(mktemp -p ${bodies})" -w '%{stderr}HTTP %{http_code}\\n' `);
    // Not spawnSync: the server answering the curls runs in this process.
    const run = await bash(script, { KEY: "test-api-key-0123456789abcdef", URL: server.url, P12_PASS: "doc-test-passphrase" });
    assert.ok(/^HTTP \d{3}$/m.test(run.stderr) && run.status === 0, `${c.line}\nexit ${run.status}: ${run.stderr}`);
    for (const file of fs.readdirSync(bodies)) {
      const text = fs.readFileSync(path.join(bodies, file), "utf8");
      let body: { code?: string; status?: unknown } | undefined;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      assert.notEqual(body?.code, "no_such_route", `${c.line}: no such route`);
      assert.notEqual(body?.code, "internal_error", `${c.line}: ${text}`);
    }
    // 5xx only as NanoMDM's push and enqueue answer "every id failed": a per-id status, not an error.
    for (const status of [...run.stderr.matchAll(/^HTTP (\d{3})$/gm)].map((m) => Number(m[1]))) {
      assert.ok(status >= 200 && (status < 500 || /\/v1\/(push|enqueue)/.test(c.line)), `${c.line}: HTTP ${status}`);
    }
  });
}

function bash(script: string, env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stderr }));
  });
}
