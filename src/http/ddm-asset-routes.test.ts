// The seams the declaration store uses (DdmFileHooks): a file that
// declarations name cannot be removed, and a change of its bytes is told once.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import type { FileRef } from "../core/ddm-assets.ts";
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
