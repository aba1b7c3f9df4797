import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import Fastify from "fastify";
import { registerAuditHook } from "../src/http/audit.ts";
import { openStore, type Store } from "../src/store/index.ts";

// The audit entry of a change is written before the change runs (status 0)
// and settled with its answer: a process killed in between leaves the entry.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-audit-"));
let store: Store;
after(async () => {
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a change's audit entry exists while it runs (status 0) and carries its status once answered", async () => {
  store = await openStore(undefined, dir);
  const app = Fastify();
  app.addHook("onRequest", async (req) => {
    req.actor = { name: "alice", credential: "session", role: "admin" };
  });
  registerAuditHook(app, store);
  let seenWhileRunning: Array<{ status: number; objects: string[] }> = [];
  app.put<{ Params: { id: string } }>("/v1/widgets/:id", async (_req, reply) => {
    seenWhileRunning = (await store.audit.list({ limit: 10 })).map((e) => ({ status: e.status, objects: e.objects }));
    return reply.code(201).send({ ok: true });
  });
  const r = await app.inject({ method: "PUT", url: "/v1/widgets/w1" });
  assert.equal(r.statusCode, 201);
  assert.deepEqual(seenWhileRunning, [{ status: 0, objects: ["w1"] }], "written before the handler ran");
  const [entry] = await store.audit.list({ limit: 10 });
  assert.equal(entry?.status, 201);
  assert.equal(entry?.actor, "alice");
  assert.equal(entry?.action, "PUT /v1/widgets/:id");
  await app.close();
});
