// Real device check-in messages (test/fixtures/checkin, see SOURCES.md there).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePlistDict, serializePlist, parsePlist } from "./index.ts";
import { FIXTURES_DIR, fixtures } from "./testing.ts";

const load = (name: string) => {
  const f = fixtures().find((x) => x.name === name);
  assert.ok(f, `fixture ${name} missing`);
  return parsePlistDict(f.bytes);
};

test("fixtures live in the repository (test/fixtures/checkin), six plists", () => {
  // Inside the checkout: a user's clone has nothing beside it.
  assert.ok(FIXTURES_DIR.endsWith("/test/fixtures/checkin/"), FIXTURES_DIR);
  assert.deepEqual(
    fixtures().map((f) => f.name),
    [
      "authenticate-ios-9.3.2.plist",
      "authenticate-macos-10.11.6.plist",
      "authenticate-macos-10.12.2.plist",
      "checkout-macos-10.11.plist",
      "tokenupdate-macos-10.12.2-device.plist",
      "tokenupdate-macos-10.12.2-user.plist",
    ],
  );
});

test("TokenUpdate (device channel)", () => {
  const m = load("tokenupdate-macos-10.12.2-device.plist");
  assert.equal(m["MessageType"], "TokenUpdate");
  assert.equal(m["UDID"], "E3568F17-92ED-450A-8904-C3BF4CB7E9A5");
  assert.equal(m["Topic"], "com.apple.mgmt.commandment.dev");
  assert.equal(m["PushMagic"], "B81B1FEC-09C6-4EC2-871C-E521EC971B38");
  assert.equal(m["AwaitingConfiguration"], false);
  const token = m["Token"];
  assert.ok(Buffer.isBuffer(token));
  assert.equal(token.length, 37); // SOURCES.md: sanitized ASCII tokens of 37 bytes
  assert.equal(token.toString("latin1"), "00201052-A2D0-403D-B857-72F913F5BCCE\n");
  assert.deepEqual(Object.keys(m), ["AwaitingConfiguration", "MessageType", "PushMagic", "Token", "Topic", "UDID"]);
});

test("TokenUpdate (user channel)", () => {
  const m = load("tokenupdate-macos-10.12.2-user.plist");
  assert.equal(m["MessageType"], "TokenUpdate");
  assert.equal(m["UserID"], "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883");
  assert.equal(m["UserShortName"], "cjoe");
  assert.equal(m["UserLongName"], "Commando Joe");
  assert.equal(m["NotOnConsole"], false);
  assert.equal((m["Token"] as Buffer).length, 37);
  assert.equal((m["Token"] as Buffer).toString("latin1"), "00201052-A2D0-403D-B857-72F913F5BCCD\n");
});

test("Authenticate (macOS 10.12.2, 10.11.6 with wrapped <data>, iOS 9.3.2)", () => {
  const a = load("authenticate-macos-10.12.2.plist");
  assert.equal(a["MessageType"], "Authenticate");
  assert.equal(a["UDID"], "E3568F17-92ED-450A-8904-C3BF4CB7E9A5");
  assert.equal(a["Model"], "iMac17,1");
  assert.equal(a["OSVersion"], "10.12.2");
  assert.equal(a["BuildVersion"], "16C67");
  assert.deepEqual(a["Challenge"], Buffer.from("apple"));

  const b = load("authenticate-macos-10.11.6.plist");
  assert.equal(b["SerialNumber"], "C00000000004");
  assert.equal(b["UDID"], "00000000-1111-2222-3333-444455556666");
  assert.deepEqual(b["Challenge"], Buffer.from("apple")); // base64 on its own indented line

  const c = load("authenticate-ios-9.3.2.plist");
  assert.equal(c["ProductName"], "iPad4,1");
  assert.equal(c["UDID"], "1111111111111111111111111111111111111111");
  assert.equal(c["Topic"], "io.micromdm.topic.00000000-1111-2222-3333-444455556666");
  assert.equal(Object.keys(c).length, 7);
});

test("CheckOut", () => {
  assert.deepEqual(load("checkout-macos-10.11.plist"), {
    MessageType: "CheckOut",
    Topic: "com.apple.mgmt.test.00000000-1111-2222-3333-444455556666",
    UDID: "00000000-1111-2222-3333-444455556666",
  });
});

test("every fixture re-serializes to a document that parses to the same value", () => {
  for (const { name, bytes } of fixtures()) {
    const v = parsePlistDict(bytes);
    assert.deepEqual(parsePlist(serializePlist(v)), v, name);
    assert.deepEqual(parsePlistDict(bytes.toString("utf8")), v, `${name} as string`);
  }
});

test("the published TokenUpdate sample with <data>AAAA=</data> is refused (brief 9.17)", () => {
  const f = fixtures().find((x) => x.name === "tokenupdate-macos-10.12.2-user.plist")!;
  const text = f.bytes.toString("utf8").replace(/<data>[^<]*<\/data>/, "<data>AAAA=</data>");
  assert.throws(() => parsePlistDict(text), { name: "PlistError", message: /base64/ });
});
