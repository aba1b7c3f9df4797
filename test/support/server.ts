import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { parseServeArgs } from "../../src/config.ts";
import { createLogger, startServer, type RunningServer } from "../../src/server.ts";
import { trustArgs } from "./device-ca.ts";
import { createTestDatabase, type Backend } from "./postgres.ts";

/** The made-up software lookup feed every test server reads unless told otherwise (test/fixtures/software-updates/README.md). */
export const SOFTWARE_LOOKUP_FIXTURE = path.resolve(import.meta.dirname, "../fixtures/software-updates/pmv.json");

export interface TestServer extends RunningServer {
  dataDir: string;
  /** Every log line the server wrote, as text. */
  logs: string[];
  /** GET/PUT/DELETE the operator API with the server's key. */
  api(
    method: string,
    urlPath: string,
    body?: Buffer | string | object,
  ): Promise<{ status: number; json: any; text: string; headers: Headers }>;
  stop(): Promise<void>;
}

/**
 * Starts a real Orchard on 127.0.0.1:0 over a fresh store: SQLite in a temp
 * dir, or a new PostgreSQL database dropped again by stop(). The server
 * trusts the test device CA (testFleet's) unless `args` give --ca or
 * --insecure-accept-any-device-cert, or `testCa` is false (Orchard's own default).
 */
export async function startTestServer(args: string[] = [], backend: Backend = "sqlite", o: { testCa?: boolean } = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-test-"));
  const database = backend === "postgres" ? await createTestDatabase() : undefined;
  if (o.testCa !== false) args = [...(await trustArgs(args)), ...args];
  if (database) args = ["--storage", database.url, ...args];
  // Never Apple's software lookup service from a test: the project's made-up feed unless a test names one.
  if (!args.includes("--software-lookup-url")) args = ["--software-lookup-url", SOFTWARE_LOOKUP_FIXTURE, ...args];
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  const config = parseServeArgs(
    [
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--api-key",
      "test-api-key-0123456789abcdef",
      "--cert-header",
      "x-client-cert",
      "--log-level",
      "debug",
      ...args,
    ],
    {},
  );
  const server = await startServer(config, createLogger(config.logLevel, sink));
  const auth = "Basic " + Buffer.from("orchard:test-api-key-0123456789abcdef").toString("base64");
  return {
    ...server,
    dataDir,
    logs,
    async api(method, urlPath, body) {
      const res = await fetch(server.url + urlPath, { method, headers: { authorization: auth }, body: fetchBody(body) });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text, headers: res.headers };
    },
    async stop() {
      await server.close();
      await database?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** An API body as fetch takes it: bytes, text, or an object as JSON. */
export function fetchBody(body: Buffer | string | object | undefined): BodyInit | undefined {
  if (body === undefined) return undefined;
  if (Buffer.isBuffer(body)) return new Uint8Array(body);
  return typeof body === "string" ? body : JSON.stringify(body);
}
