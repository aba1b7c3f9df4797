// Declarations as the operator puts them, through the pieces server.ts joins:
// Apple's schema refuses a bad one naming the key and warns of a type newer
// than the schema; an orchard:asset/ reference resolves to the download URL and
// hash, and replacing the asset's bytes re-resolves the declaration (new
// ServerToken, a sync queued) while a named asset cannot be deleted.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { eventually, identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PUBLIC_URL = "https://mdm.example.com";
const KEY = "test-api-key-0123456789abcdef";

await forEachBackend("DDM declarations: schema and files", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;

  before(async () => {
    server = await startTestServer(["--public-url", PUBLIC_URL], backend);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const putDeclaration = async (d: object) => {
    const r = await fetch(`${server.url}/v1/declarations`, {
      method: "PUT",
      headers: { authorization: "Basic " + Buffer.from(`kmfddm:${KEY}`).toString("base64"), "content-type": "application/json" },
      body: JSON.stringify(d),
    });
    return { status: r.status, warning: r.headers.get("orchard-warning"), json: r.status === 400 ? await r.json() : undefined };
  };
  const putAsset = (id: string, bytes: string) =>
    fetch(`${server.url}/v1/ddm/assets/${id}`, {
      method: "PUT",
      headers: { authorization: "Basic " + Buffer.from(`orchard:${KEY}`).toString("base64"), "content-type": "text/plain" },
      body: bytes,
    }).then((r) => r.status);

  test("a declaration Apple's schema refuses is a 400 naming the key, and nothing is stored", async () => {
    const bad = await putDeclaration({
      Type: "com.apple.configuration.passcode.settings",
      Identifier: "com.example.passcode",
      Payload: { MinimumLength: "six" },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_declaration");
    assert.match(bad.json.error, /Payload\.MinimumLength/);
    assert.equal((await server.api("GET", "/v1/declarations/com.example.passcode")).status, 404);

    const good = await putDeclaration({
      Type: "com.apple.configuration.passcode.settings",
      Identifier: "com.example.passcode",
      Payload: { MinimumLength: 6 },
    });
    assert.equal(good.status, 204);
    assert.equal(good.warning, null);
  });

  test("an Identifier a device could not fetch, or with C1 or bidi controls, is a 400 and nothing is stored; so is such a set name", async () => {
    const base = { Type: "com.apple.configuration.management.test", Payload: { Echo: "x" } };
    for (const id of ["../../x", "./x", "a//b", "/lead", "trail/", ".", "a/../b", "c1\u0085x", "bidi\u202ex", " "]) {
      const r = await putDeclaration({ ...base, Identifier: id });
      assert.equal(r.status, 400, JSON.stringify(id));
      assert.equal(r.json.code, "invalid_declaration");
    }
    assert.equal((await server.api("GET", "/v1/declarations")).json.includes("a//b"), false);
    // A slash inside is fine: the device asks for declaration/<kind>/a/b.
    assert.equal((await putDeclaration({ ...base, Identifier: "com.example/with/slash" })).status, 204);
    const set = await server.api("PUT", `/v1/set-declarations/${encodeURIComponent("s\u00851")}?declaration=com.example%2Fwith%2Fslash`);
    assert.equal(set.status, 400, set.text);
    // A set stored under the earlier rules can still be emptied and taken away (review): removal keeps them.
    const now = Date.now();
    await server.store.ddm.addToSet("old\u0085set", "com.example/with/slash", { now, syncDueAt: null });
    await server.store.ddm.assign(dev.udid, "old\u0085set", { now, syncDueAt: null });
    const old = encodeURIComponent("old\u0085set");
    assert.equal((await server.api("DELETE", `/v1/enrollment-sets/${dev.udid}?set=${old}&nonotify=1`)).status, 204);
    assert.equal((await server.api("DELETE", `/v1/set-declarations/${old}?declaration=com.example%2Fwith%2Fslash`)).status, 204);
    assert.equal((await server.api("DELETE", "/v1/declarations/com.example%2Fwith%2Fslash")).status, 204);
  });

  test("a type newer than the schema is stored with a warning; one outside Apple's families is refused", async () => {
    const newer = await putDeclaration({ Type: "com.apple.configuration.shiny-new", Identifier: "com.example.new", Payload: { A: 1 } });
    assert.equal(newer.status, 204);
    assert.match(newer.warning ?? "", /not in the schema/);
    const foreign = await putDeclaration({ Type: "com.example.thing", Identifier: "com.example.thing", Payload: {} });
    assert.equal(foreign.status, 400);
    assert.equal(foreign.json.code, "invalid_declaration");
  });

  test("an activation naming a configuration no declaration has is stored with a warning naming it", async () => {
    const activation = (configs: string[]) => ({
      Type: "com.apple.activation.simple",
      Identifier: "com.example.activation.ahead",
      Payload: { StandardConfigurations: configs },
    });
    // Put before its configuration (allowed): stored, and said.
    const ahead = await putDeclaration(activation(["com.example.ahead.config"]));
    assert.equal(ahead.status, 204, "stored all the same (KMFDDM's status)");
    assert.equal(
      ahead.warning,
      'Payload.StandardConfigurations: no declaration "com.example.ahead.config" is stored: the activation applies it once it is put',
    );
    assert.equal((await server.api("GET", "/v1/declarations/com.example.activation.ahead")).status, 200);
    assert.ok(
      server.logs.some((l) => l.includes("DDM declaration accepted with a warning") && l.includes("com.example.ahead.config")),
      "and logged",
    );
    const config = { Type: "com.apple.configuration.management.test", Identifier: "com.example.ahead.config", Payload: { Echo: "x" } };
    assert.equal((await putDeclaration(config)).status, 204);
    const after = await putDeclaration(activation(["com.example.ahead.config"]));
    assert.equal(after.status, 304);
    assert.equal(after.warning, null, "no warning once it is stored");
    // Several missing: the first three and a count.
    const many = await putDeclaration(activation(["com.example.ahead.config", "m1", "m2", "m3", "m4", "m2"]));
    assert.equal(many.status, 204);
    assert.equal(
      many.warning,
      'Payload.StandardConfigurations: no declarations "m1", "m2", "m3" (and 1 more) are stored: the activation applies them once they are put',
    );
  });

  test("an orchard:asset/ reference resolves; new bytes re-resolve it and its channels sync; a named asset stays", async () => {
    assert.equal(await putAsset("wallpaper", "first bytes"), 201);
    const asset = {
      Type: "com.apple.asset.data",
      Identifier: "com.example.asset",
      Payload: { Reference: { DataURL: "orchard:asset/wallpaper", ContentType: "text/plain" } },
    };
    assert.equal((await putDeclaration(asset)).status, 204);
    assert.equal((await server.api("PUT", "/v1/set-declarations/files?declaration=com.example.asset")).status, 204);
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${dev.udid}?set=files`)).status, 204);

    const stored = async () => (await server.store.ddm.declaration("com.example.asset"))!;
    const first = await stored();
    const reference = JSON.parse(first.payload).Reference;
    assert.equal(reference.DataURL, `${PUBLIC_URL}/mdm/assets/wallpaper`);
    assert.equal(reference["Hash-SHA-256"], createHash("sha256").update("first bytes").digest("hex"));
    assert.equal(reference.Size, 11);
    // The operator reads back what they wrote, reference and all.
    const read = await server.api("GET", "/v1/declarations/com.example.asset");
    assert.equal(read.json.Payload.Reference.DataURL, "orchard:asset/wallpaper");
    assert.equal(read.json.ServerToken, first.serverToken);
    // Putting it again unchanged changes nothing.
    assert.equal((await putDeclaration(asset)).status, 304);

    await eventually(async () => ((await server.store.ddm.dueCount()) === 0 ? true : undefined), 15_000, "the first sync");
    const syncs = async () =>
      (await server.api("GET", `/v1/queue/${dev.udid}`)).json.commands.filter(
        (c: { request_type: string }) => c.request_type === "DeclarativeManagement",
      ).length;
    const before = await syncs();

    assert.equal(await putAsset("wallpaper", "second, longer bytes"), 200);
    const second = await stored();
    assert.notEqual(second.serverToken, first.serverToken);
    assert.equal(JSON.parse(second.payload).Reference["Hash-SHA-256"], createHash("sha256").update("second, longer bytes").digest("hex"));
    await eventually(async () => ((await server.store.ddm.dueCount()) === 0 && (await syncs()) >= 1 ? true : undefined), 15_000, "a sync");
    // One unsent sync command stands for all changes (a newer one replaces it), so the count does not grow past one.
    assert.equal(await syncs(), Math.max(before, 1));

    const removal = await server.api("DELETE", "/v1/ddm/assets/wallpaper");
    assert.equal(removal.status, 409);
    assert.equal(removal.json.code, "asset_in_use");
    assert.match(removal.json.error, /com\.example\.asset/);
  });

  test("an asset whose id only looks like the named one (LIKE's _) is not in use", async () => {
    assert.equal(await putAsset("a_b", "x"), 201);
    assert.equal(await putAsset("a-b", "y"), 201);
    const d = {
      Type: "com.apple.asset.data",
      Identifier: "com.example.a-b",
      Payload: { Reference: { DataURL: "orchard:asset/a-b", ContentType: "text/plain" } },
    };
    assert.equal((await putDeclaration(d)).status, 204);
    assert.equal((await server.api("DELETE", "/v1/ddm/assets/a_b")).status, 200);
    assert.equal((await server.api("DELETE", "/v1/ddm/assets/a-b")).status, 409);
  });
});
