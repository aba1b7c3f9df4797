import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/orchard.js", import.meta.url));

export interface OrchardProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr. */
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `orchard serve` as its own process on a free port and waits until it
 * listens. The crash and multi-process tests make their own device CAs after
 * the servers start: without --ca in `args` the process accepts any device
 * certificate (the lab opt-in); trust itself is tested in identity-e2e.
 * `wrap` runs it under another command (e.g. `prlimit --nofile=256`).
 */
export function spawnOrchard(args: string[], timeoutMs = 90_000, wrap: string[] = []): Promise<OrchardProcess> {
  const trust = args.includes("--ca") || args.includes("--insecure-accept-any-device-cert") ? [] : ["--insecure-accept-any-device-cert"];
  const command = [...wrap, process.execPath, BIN, "serve", "--listen", "127.0.0.1:0", ...trust, ...args];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`orchard did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"url":"(http[^"]+)"[^\n]*"msg":"orchard listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          output: () => out,
          stop: (signal = "SIGTERM") =>
            new Promise((done) => {
              if (child.exitCode !== null || child.signalCode !== null) return done();
              child.once("exit", () => done());
              child.kill(signal);
            }),
        });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`orchard exited with ${code} before listening:\n${out}`));
    });
  });
}
