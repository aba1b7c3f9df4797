import assert from "node:assert/strict";
import { test } from "node:test";
import { BadRequest } from "../errors.ts";
import { buildSignedData } from "../identity/cms.ts";
import { createCa, issueDeviceIdentity } from "../identity/testing/pki.ts";
import { serializePlist } from "../plist/index.ts";
import { compareVersions, platformOfProduct, readMachineInfo } from "./machine-info.ts";

const apple = await createCa({ commonName: "Test Apple iPhone Device CA" });
const device = await issueDeviceIdentity(apple, { commonName: "device", extendedKeyUsages: null });
const info = {
  UDID: "0000-1111-2222",
  SERIAL: "C02ABC123",
  PRODUCT: "MacBookPro18,2",
  VERSION: "25A300",
  OS_VERSION: "26.0",
  MDM_CAN_REQUEST_PSSO_CONFIG: true,
};
const sign = (content: Buffer, who = device) =>
  buildSignedData({ content, signerCert: who.cert, signerKey: who.key, digest: "sha256", attributes: [] });
const rejects = (p: Promise<unknown>, why: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof BadRequest && e.code === "invalid_machine_info" && why.test(e.message));

test("without an Apple CA the signature is checked, not its chain; the plist's keys are read", async () => {
  const self = await createCa({ commonName: "self-signed device" });
  const r = await readMachineInfo(sign(Buffer.from(serializePlist(info)), self), undefined, []);
  assert.equal(r.chained, false);
  assert.equal(r.info.serial, "C02ABC123");
  assert.equal(r.info.udid, "0000-1111-2222");
  assert.equal(r.info.osVersion, "26.0");
  assert.equal(r.info.canRequestPsso, true);
  assert.equal(r.info.canRequestSoftwareUpdate, false);
  // With the CA: chained, and the self-signed one refused.
  assert.equal((await readMachineInfo(sign(Buffer.from(serializePlist(info))), undefined, [apple.cert])).chained, true);
  await rejects(readMachineInfo(sign(Buffer.from(serializePlist(info)), self), undefined, [apple.cert]), /does not chain/);
});

test("bad MachineInfo: a missing key, a wrong type, a serial that is not one, not a plist, not base64 in the header", async () => {
  const { SERIAL: _s, ...noSerial } = info;
  await rejects(readMachineInfo(sign(Buffer.from(serializePlist(noSerial))), undefined, []), /SERIAL must be/);
  await rejects(readMachineInfo(sign(Buffer.from(serializePlist({ ...info, PRODUCT: 7 }))), undefined, []), /PRODUCT must be/);
  await rejects(readMachineInfo(sign(Buffer.from(serializePlist({ ...info, SERIAL: "../x" }))), undefined, []), /SERIAL must be letters/);
  await rejects(readMachineInfo(sign(Buffer.from("not a plist")), undefined, []), /not a plist/);
  await rejects(readMachineInfo(Buffer.alloc(0), "%%%", []), /not base64/);
  await rejects(readMachineInfo(Buffer.alloc(0), undefined, []), /empty/);
});

test("versions compare numerically; products name their platform", () => {
  assert.equal(compareVersions("14.10", "14.9"), 1);
  assert.equal(compareVersions("15", "15.0"), 0);
  assert.equal(compareVersions("13.6.1", "14.0"), -1);
  assert.equal(platformOfProduct("MacBookPro18,3"), "macos");
  assert.equal(platformOfProduct("Mac14,2"), "macos");
  assert.equal(platformOfProduct("iPhone15,2"), "ios");
  assert.equal(platformOfProduct("iPad13,1"), "ipados");
  assert.equal(platformOfProduct("AppleTV11,1"), "tvos");
  assert.equal(platformOfProduct("Something"), undefined);
});

test("a carried certificate Node cannot read is refused (400), never a 500, and before anything is verified", async () => {
  // The Apple CA's certificate with its key's algorithm made unknown: Node parses it, and throws only when asked for
  // its key; pkijs reads it all the same.
  const rsaEncryption = Buffer.from("06092a864886f70d010101", "hex");
  const raw = Buffer.from(apple.cert.raw);
  const at = raw.indexOf(rsaEncryption);
  assert.ok(at > 0);
  raw[at + rsaEncryption.length - 1] = 0x7f;
  const der = buildSignedData({
    content: Buffer.from(serializePlist(info)),
    signerCert: device.cert,
    signerKey: device.key,
    digest: "sha256",
    attributes: [],
    certificates: [device.cert.raw, raw],
  });
  await rejects(readMachineInfo(der, undefined, []), /a carried certificate cannot be read/);
});
