// Check-in messages decode once, in the protocol layer, into one typed message
// per MessageType: handlers read fields (msg.topic, msg.token), never keys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePlistDict, serializePlist, type PlistDict } from "../plist/index.ts";
import { BadRequest } from "../errors.ts";
import { CHECKIN_MESSAGE_TYPES, decodeCheckin, type CheckinMessage } from "./checkin.ts";

const UDID = "0000FE00-5FADBD3A4F5ABC00";
const USER = "C1E1F94C-6D45-4C6F-9A59-0A0A0A0A0A0A";
const TOKEN = Buffer.alloc(32, 7);

function decode(body: PlistDict): CheckinMessage {
  // Through the real codec, as a device's bytes arrive.
  const raw = Buffer.from(serializePlist(body));
  return decodeCheckin(parsePlistDict(raw), raw);
}

function refused(body: PlistDict, reason: RegExp): void {
  assert.throws(
    () => decode(body),
    (err: unknown) => err instanceof BadRequest && reason.test(err.message),
  );
}

test("a TokenUpdate decodes to its typed fields, with the exact bytes kept", () => {
  const body = {
    MessageType: "TokenUpdate",
    UDID,
    Topic: "com.apple.mgmt.x",
    Token: TOKEN,
    PushMagic: "magic",
    AwaitingConfiguration: true,
    Extra: "kept in raw",
  };
  const msg = decode(body);
  assert.equal(msg.messageType, "TokenUpdate");
  if (msg.messageType !== "TokenUpdate") return;
  assert.equal(msg.topic, "com.apple.mgmt.x");
  assert.deepEqual(msg.token, TOKEN);
  assert.equal(msg.pushMagic, "magic");
  assert.equal(msg.awaitingConfiguration, true);
  assert.equal(msg.unlockToken, undefined);
  assert.equal(msg.authToken, undefined);
  assert.deepEqual(msg.channel, { id: UDID, deviceId: UDID, type: "Device", isUserChannel: false });
  assert.deepEqual(parsePlistDict(msg.raw), body);
  // Only the fields of its type: nothing a device adds becomes a property.
  assert.deepEqual(Object.keys(msg).sort(), [
    "authToken",
    "awaitingConfiguration",
    "channel",
    "messageType",
    "notOnConsole",
    "pushMagic",
    "raw",
    "token",
    "topic",
    "unlockToken",
    "userLongName",
    "userShortName",
  ]);
});

test("each MessageType has its own fields", () => {
  const auth = decode({ MessageType: "Authenticate", UDID, Topic: "t", SerialNumber: "C02", Model: "Mac14,2" });
  assert.ok(
    auth.messageType === "Authenticate" &&
      auth.topic === "t" &&
      auth.serialNumber === "C02" &&
      auth.model === "Mac14,2" &&
      auth.imei === undefined,
  );
  const ua = decode({
    MessageType: "UserAuthenticate",
    UDID,
    UserID: USER,
    UserShortName: "ann",
    DigestResponse: "Digest x",
    AuthToken: "tok",
  });
  assert.ok(ua.messageType === "UserAuthenticate");
  assert.equal(ua.userId, USER);
  assert.equal(ua.userShortName, "ann");
  assert.equal(ua.digestResponse, "Digest x");
  assert.equal(ua.authToken, "tok");
  const gt = decode({ MessageType: "GetToken", UDID, TokenServiceType: "com.apple.maid", TokenParameters: { PhoneUDID: "p" } });
  assert.ok(gt.messageType === "GetToken" && gt.tokenServiceType === "com.apple.maid");
  assert.deepEqual(gt.tokenParameters, { PhoneUDID: "p" });
  const dm = decode({ MessageType: "DeclarativeManagement", UDID, Endpoint: "tokens", Data: Buffer.from("{}") });
  assert.ok(dm.messageType === "DeclarativeManagement" && dm.endpoint === "tokens" && dm.data?.toString() === "{}");
  const bt = decode({ MessageType: "SetBootstrapToken", UDID, BootstrapToken: Buffer.from("b") });
  assert.ok(bt.messageType === "SetBootstrapToken" && bt.bootstrapToken?.toString() === "b");
});

test("required keys, their types and the channel rules still answer 400 with the reason", () => {
  const tu = { MessageType: "TokenUpdate", UDID, Topic: "t", Token: TOKEN, PushMagic: "m" };
  refused({ MessageType: "TokenUpdate", UDID, Topic: "t", PushMagic: "m" }, /^TokenUpdate without Token$/);
  refused({ ...tu, Topic: "" }, /^TokenUpdate with an empty Topic$/);
  refused({ ...tu, Token: Buffer.alloc(31) }, /^TokenUpdate Token is 31 bytes; an APNs device token has 32$/);
  refused({ ...tu, Token: "abcd" }, /^Token is not a data$/);
  // A key is typed wherever it appears, not only in the messages that read it.
  refused({ MessageType: "CheckOut", UDID, Topic: 5 }, /^Topic is not a string$/);
  refused({ ...tu, AuthToken: Buffer.from("x") }, /^AuthToken is not a string$/);
  refused({ MessageType: "UserAuthenticate", UDID }, /^UserAuthenticate without UserID$/);
  refused(
    { MessageType: "Authenticate", UDID, UserID: USER, Topic: "t" },
    /^Authenticate is a device channel message but came on a user channel$/,
  );
  refused({ MessageType: "ReturnToService", EnrollmentID: "E1" }, /^ReturnToService is not available in a User Enrollment$/);
});

test("a MessageType or key named after an Object.prototype member finds nothing", () => {
  const xml = (pairs: string[][]) =>
    Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>${pairs.map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join("")}</dict></plist>`,
    );
  for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const unknown = xml([
      ["MessageType", name],
      ["UDID", UDID],
    ]);
    assert.throws(() => decodeCheckin(parsePlistDict(unknown), unknown), /unknown MessageType/);
    if (name === "__proto__") continue; // the plist parser refuses this key outright
    const raw = xml([
      ["MessageType", "CheckOut"],
      ["UDID", UDID],
      [name, "x"],
    ]);
    const msg = decodeCheckin(parsePlistDict(raw), raw);
    assert.equal(Object.hasOwn(msg, name), false, name);
    assert.equal(msg.messageType, "CheckOut");
  }
});

test("the decoder knows every MessageType the protocol lists", () => {
  assert.deepEqual([...CHECKIN_MESSAGE_TYPES].sort(), [
    "Authenticate",
    "CheckOut",
    "DeclarativeManagement",
    "GetBootstrapToken",
    "GetToken",
    "ReturnToService",
    "SetBootstrapToken",
    "TokenUpdate",
    "UserAuthenticate",
  ]);
});
