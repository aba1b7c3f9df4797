// The seams the declaration store uses (DdmFileHooks): a file that
// declarations name cannot be removed, and a change of its bytes is told once.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { DdmAdmin } from "../core/ddm-admin.ts";
import { declarationFileHooks, resolveDeclaration, type FileRef } from "../core/ddm-assets.ts";
import { openStore, type Store } from "../store/index.ts";
import { registerDdmAssetRoutes } from "./ddm-asset-routes.ts";
import { errorHandler } from "./errors.ts";

let dir: string;
let store: Store;
let app: FastifyInstance;
const changed: FileRef[] = [];
const naming = new Map<string, string[]>();

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ddm-hooks-"));
  store = await openStore(undefined, dir);
  app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler);
  registerDdmAssetRoutes(app, {
    store,
    urls: { publicUrl: undefined, serverPath: "/mdm" },
    bodyLimit: 1024,
    hooks: {
      referencedBy: async (ref) => naming.get(`${ref.kind}/${ref.id}`) ?? [],
      changed: async (ref) => void changed.push(ref),
    },
  });
  await app.ready();
});
after(async () => {
  await app.close();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const put = (url: string, payload: string, type = "text/plain") =>
  app.inject({ method: "PUT", url, payload, headers: { "content-type": type } });

test("changed is told when the bytes or the type of a stored file change, not when it is created or stored again as it was", async () => {
  assert.equal((await put("/v1/ddm/assets/a", "one")).statusCode, 201);
  assert.equal((await put("/v1/ddm/assets/a", "one")).statusCode, 200);
  assert.deepEqual(changed, []);
  await put("/v1/ddm/assets/a", "two");
  await put("/v1/ddm/assets/a", "two", "application/json");
  assert.deepEqual(changed, [
    { kind: "asset", id: "a" },
    { kind: "asset", id: "a" },
  ]);
  // Without --public-url an asset has no device URL yet.
  assert.equal((await app.inject({ method: "GET", url: "/v1/ddm/assets/a" })).json().url, null);
});

test("a file that declarations name is not removed: 409 asset_in_use naming them", async () => {
  naming.set("asset/a", ["com.example.one", "com.example.two"]);
  const refused = await app.inject({ method: "DELETE", url: "/v1/ddm/assets/a" });
  assert.equal(refused.statusCode, 409);
  assert.equal(refused.json().code, "asset_in_use");
  assert.match(refused.json().error, /orchard:asset\/a is named by declarations com\.example\.one, com\.example\.two/);
  assert.ok(await store.ddmAssets.get("a"), "still stored");
  naming.delete("asset/a");
  assert.equal((await app.inject({ method: "DELETE", url: "/v1/ddm/assets/a" })).statusCode, 200);
});

test("a replaced file and the declarations naming it commit together: a failure part way rolls back the bytes too", async () => {
  // The real hooks and resolver, with a failure injected while the second declaration is re-resolved.
  const urls = { publicUrl: "https://mdm.example.test", serverPath: "/mdm" };
  let failOn: string | undefined;
  const admin = new DdmAdmin(store, {
    resolve: async (d, s) => {
      if (d.Identifier === failOn) throw new Error("injected failure between the bytes and the re-resolve");
      return resolveDeclaration(d, { asset: (id) => s.ddmAssets.get(id), profile: (id) => s.ddmProfiles.get(id) }, urls);
    },
  });
  const atomic = Fastify();
  atomic.removeAllContentTypeParsers();
  atomic.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  atomic.setErrorHandler(errorHandler);
  registerDdmAssetRoutes(atomic, { store, urls, bodyLimit: 1024, hooks: declarationFileHooks(store, admin) });
  await atomic.ready();
  try {
    const putAsset = (body: string) =>
      atomic.inject({ method: "PUT", url: "/v1/ddm/assets/shared", payload: body, headers: { "content-type": "text/plain" } });
    assert.equal((await putAsset("first")).statusCode, 201);
    for (const identifier of ["com.example.atomic.1", "com.example.atomic.2"]) {
      const decl = { Type: "com.apple.asset.data", Identifier: identifier, Payload: { Reference: { DataURL: "orchard:asset/shared" } } };
      await admin.putDeclaration(decl, false, Date.now());
    }
    const hashOf = async (identifier: string) => {
      const d = await store.ddm.declaration(identifier);
      return { token: d!.serverToken, hash: (JSON.parse(d!.payload) as { Reference: Record<string, unknown> }).Reference["Hash-SHA-256"] };
    };
    const before = [await hashOf("com.example.atomic.1"), await hashOf("com.example.atomic.2")];
    const storedBefore = await store.ddmAssets.get("shared");
    assert.equal(before[0]!.hash, storedBefore!.sha256);

    failOn = "com.example.atomic.2";
    const failed = await putAsset("second");
    assert.equal(failed.statusCode, 500, failed.body);
    // Nothing of it stayed: the old bytes, both declarations as they were, no ddm.asset.stored event for it.
    assert.equal((await store.ddmAssets.get("shared"))!.sha256, storedBefore!.sha256, "the new bytes were rolled back");
    assert.deepEqual([await hashOf("com.example.atomic.1"), await hashOf("com.example.atomic.2")], before);
    const events = await store.events.list({ type: "ddm.asset.stored", limit: 100 });
    assert.equal(events.filter((e) => (e.detail as { id?: string }).id === "shared").length, 1, "only the first PUT's event");

    failOn = undefined;
    assert.equal((await putAsset("second")).statusCode, 200);
    const now = await store.ddmAssets.get("shared");
    assert.notEqual(now!.sha256, storedBefore!.sha256);
    for (const identifier of ["com.example.atomic.1", "com.example.atomic.2"]) {
      const after = await hashOf(identifier);
      assert.equal(after.hash, now!.sha256, `${identifier} names the new bytes`);
      assert.notEqual(after.token, before[0]!.token);
    }
  } finally {
    await atomic.close();
  }
});
