// An in-process CLI context for client-command tests: output captured, no terminal.
import assert from "node:assert/strict";
import os from "node:os";
import type { CliContext } from "../../src/cli/command.ts";

export type CapturedCli = CliContext & { stdout: string; stderr: string };

/** Talks to `url` with the test servers' API key; stdin holds `stdin`. */
export function cliContext(url: string, o: { cwd?: string; stdin?: string | Buffer } = {}): CapturedCli {
  const ctx: CapturedCli = {
    stdout: "",
    stderr: "",
    out: (t) => void (ctx.stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
    err: (t) => void (ctx.stderr += t),
    env: { ORCHARD_URL: url, ORCHARD_API_KEY: "test-api-key" },
    cwd: o.cwd ?? os.tmpdir(),
    readStdin: async () => Buffer.from(o.stdin ?? ""),
    stdinIsTTY: false,
    readSecret: async () => assert.fail("no terminal in tests"),
  };
  return ctx;
}
