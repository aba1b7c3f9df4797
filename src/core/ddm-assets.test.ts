import assert from "node:assert/strict";
import { test } from "node:test";
import { OrchardError } from "../errors.ts";
import { checkFileId, referencedFiles, resolveDeclaration, type Declaration, type DeviceUrls, type FileLookup } from "./ddm-assets.ts";

const HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const lookup: FileLookup = {
  asset: async (id) => (id === "wallpaper" ? { contentType: "image/png", size: 4, sha256: HASH } : undefined),
  profile: async (id) => (id === "wifi" ? { size: 100, sha256: HASH } : undefined),
};
const urls = { publicUrl: "https://mdm.example.com/orchard", serverPath: "/mdm" };

const asset = (reference: Record<string, unknown>, extra: Record<string, unknown> = {}): Declaration => ({
  Type: "com.apple.asset.data",
  Identifier: "a1",
  Payload: { Reference: reference, ...extra },
});

test("an asset reference becomes the device URL under --public-url and its prefix, with the stored size, hex hash and type", async () => {
  const decl = asset({ DataURL: "orchard:asset/wallpaper" });
  const resolved = await resolveDeclaration(decl, lookup, urls);
  assert.deepEqual(resolved, {
    Type: "com.apple.asset.data",
    Identifier: "a1",
    Payload: {
      Reference: {
        DataURL: "https://mdm.example.com/orchard/mdm/assets/wallpaper",
        ContentType: "image/png",
        Size: 4,
        "Hash-SHA-256": HASH,
      },
      Authentication: { Type: "MDM" },
    },
  });
  // The argument is left as it was (the declaration store keeps what the operator wrote).
  assert.deepEqual(decl.Payload, { Reference: { DataURL: "orchard:asset/wallpaper" } });
});

test("the operator's ContentType and Authentication MDM are kept; Size and hash are always Orchard's", async () => {
  const resolved = await resolveDeclaration(
    asset(
      { DataURL: "orchard:asset/wallpaper", ContentType: "image/x-custom", Size: 99, "Hash-SHA-256": "00" },
      { Authentication: { Type: "MDM" } },
    ),
    lookup,
    urls,
  );
  const payload = resolved.Payload as { Reference: Record<string, unknown>; Authentication: unknown };
  assert.equal(payload.Reference.ContentType, "image/x-custom");
  assert.equal(payload.Reference.Size, 4);
  assert.equal(payload.Reference["Hash-SHA-256"], HASH);
  assert.deepEqual(payload.Authentication, { Type: "MDM" });
});

test("credential assets with a Reference resolve the same way", async () => {
  const resolved = await resolveDeclaration(
    { Type: "com.apple.asset.credential.certificate", Identifier: "c1", Payload: { Reference: { DataURL: "orchard:asset/wallpaper" } } },
    lookup,
    urls,
  );
  assert.equal(
    (resolved.Payload as { Reference: { DataURL: string } }).Reference.DataURL,
    "https://mdm.example.com/orchard/mdm/assets/wallpaper",
  );
});

test("a legacy profile's ProfileURL becomes the device URL (legacy and legacy.interactive)", async () => {
  for (const Type of ["com.apple.configuration.legacy", "com.apple.configuration.legacy.interactive"]) {
    const resolved = await resolveDeclaration({ Type, Identifier: "p1", Payload: { ProfileURL: "orchard:profile/wifi" } }, lookup, urls);
    assert.deepEqual(resolved.Payload, { ProfileURL: "https://mdm.example.com/orchard/mdm/profiles/wifi" });
  }
});

test("declarations without references come back unchanged; https URLs are the operator's", async () => {
  const plain = asset({ DataURL: "https://cdn.example.com/x.zip" });
  assert.equal(await resolveDeclaration(plain, lookup, urls), plain);
  const config: Declaration = { Type: "com.apple.configuration.passcode.settings", Identifier: "x", Payload: { MinimumLength: 6 } };
  assert.equal(await resolveDeclaration(config, lookup, urls), config);
  // An orchard: string where Orchard puts nothing in is not touched either.
  const other: Declaration = { Type: "com.apple.configuration.legacy", Identifier: "y", Payload: { Other: "orchard:asset/wallpaper" } };
  assert.equal(await resolveDeclaration(other, lookup, { ...urls, publicUrl: undefined }), other);
  assert.deepEqual(referencedFiles(plain), []);
});

test("referencedFiles names the stored files a declaration uses", () => {
  assert.deepEqual(referencedFiles(asset({ DataURL: "orchard:asset/wallpaper" })), [{ kind: "asset", id: "wallpaper" }]);
  assert.deepEqual(
    referencedFiles({ Type: "com.apple.configuration.legacy", Identifier: "p", Payload: { ProfileURL: "orchard:profile/wifi" } }),
    [{ kind: "profile", id: "wifi" }],
  );
});

async function refused(decl: Declaration, status: number, code: string, message: RegExp, u: DeviceUrls = urls): Promise<void> {
  await assert.rejects(resolveDeclaration(decl, lookup, u), (err: unknown) => {
    assert.ok(err instanceof OrchardError, String(err));
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test("an id that names nothing is a 422 naming it; a malformed or wrong-kind reference a 400", async () => {
  await refused(asset({ DataURL: "orchard:asset/nope" }), 422, "unknown_asset_reference", /orchard:asset\/nope, which is not stored/);
  await refused(
    { Type: "com.apple.configuration.legacy", Identifier: "p", Payload: { ProfileURL: "orchard:profile/nope" } },
    422,
    "unknown_asset_reference",
    /orchard:profile\/nope/,
  );
  await refused(asset({ DataURL: "orchard:profile/wifi" }), 400, "invalid_asset_reference", /write orchard:asset\/<id>/);
  await refused(asset({ DataURL: "orchard:asset/../etc" }), 400, "invalid_asset_reference", /not a valid asset id/);
  await refused(asset({ DataURL: "orchard:asset/" }), 400, "invalid_asset_reference", /an empty id/);
  await refused(asset({ DataURL: `orchard:asset/${"a".repeat(129)}` }), 400, "invalid_asset_reference", /not a valid asset id/);
  await refused(asset({ DataURL: "ORCHARD:asset/wallpaper" }), 400, "invalid_asset_reference", /not a reference Orchard knows/);
});

test("Authentication None cannot fetch an Orchard asset; no --public-url is a 409", async () => {
  await refused(
    asset({ DataURL: "orchard:asset/wallpaper" }, { Authentication: { Type: "None" } }),
    400,
    "bad_request",
    /"None" cannot fetch/,
  );
  await refused(asset({ DataURL: "orchard:asset/wallpaper" }), 409, "conflict", /--public-url/, { ...urls, publicUrl: undefined });
});

test("ids: letters, digits, . _ -, 1 to 128, not starting with a dot", () => {
  for (const ok of ["a", "wallpaper.png", "A-1_b.c", "x".repeat(128), "_x", "-x"]) checkFileId(ok, "asset");
  for (const bad of ["", ".", "..", ".hidden", "../x", "a/b", "a b", "a%2Fb", "é", "x".repeat(129), "a\0"]) {
    assert.throws(
      () => checkFileId(bad, "asset"),
      (err: OrchardError) => err.code === "invalid_asset_id",
      JSON.stringify(bad),
    );
  }
});
