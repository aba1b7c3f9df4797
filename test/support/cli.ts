// An in-process CLI context for client-command tests: output captured, no terminal.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { CliContext } from "../../src/cli/command.ts";

export type CapturedCli = CliContext & { stdout: string; stderr: string };

/** Talks to `url` with the test servers' API key; stdin holds `stdin`. */
export function cliContext(url: string, o: { cwd?: string; stdin?: string | Buffer } = {}): CapturedCli {
  const ctx: CapturedCli = {
    stdout: "",
    stderr: "",
    out: (t) => void (ctx.stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
    err: (t) => void (ctx.stderr += t),
    env: { ORCHARD_URL: url, ORCHARD_API_KEY: "test-api-key-0123456789abcdef" },
    cwd: o.cwd ?? os.tmpdir(),
    readStdin: async () => Buffer.from(o.stdin ?? ""),
    stdinIsTTY: false,
    readSecret: async () => assert.fail("no terminal in tests"),
  };
  return ctx;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin", "orchard.js");

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `orchard <args>` as a child process, as a user runs it. env is added to this
 * process's environment (an undefined value removes a variable); ORCHARD_DATA_DIR
 * never leaks in from the test runner.
 */
export function runOrchard(
  args: string[],
  o: { env?: Record<string, string | undefined>; input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  delete env.ORCHARD_DATA_DIR;
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd ?? ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    // A process that should have exited and did not: killed, and its code is null.
    const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), o.timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(o.input ?? "");
  });
}
