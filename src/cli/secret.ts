import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { CliError } from "./command.ts";

/**
 * Reads one line typed at the terminal without echoing it. readline puts the
 * terminal in raw mode and would echo every key to its output, so its output
 * is a sink that lets only the prompt through. No history is kept, and the
 * prompt goes to stderr so that stdout stays clean.
 */
export function promptSecret(
  prompt: string,
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let muted = false;
    let settled = false;
    const sink = new Writable({
      write(chunk, _encoding, done) {
        if (!muted) output.write(chunk);
        done();
      },
    });
    const rl = createInterface({ input, output: sink, terminal: true, historySize: 0 });
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      muted = false;
      output.write("\n");
      rl.close();
      fn();
    };
    rl.on("SIGINT", () => finish(() => reject(new CliError("cancelled"))));
    rl.on("close", () => finish(() => reject(new CliError("no password typed (end of input)"))));
    rl.question(prompt, (answer) => finish(() => resolve(answer)));
    // The prompt is written synchronously by question(); from here on nothing is echoed.
    muted = true;
  });
}

/** The first line of stdin without its line end: how --*-stdin flags take a secret. Never shown anywhere. */
export function firstLine(input: Buffer): string {
  const text = input.toString("utf8");
  const nl = text.indexOf("\n");
  return (nl === -1 ? text : text.slice(0, nl)).replace(/\r$/, "");
}
