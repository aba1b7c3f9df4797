import assert from "node:assert/strict";
import { before, test } from "node:test";
import { OrchardError } from "../errors.ts";
import { createCa, issueDeviceIdentity } from "../identity/testing/pki.ts";
import { serializePlist } from "../plist/index.ts";
import { buildEnrollmentProfile } from "./profile.ts";
import { signProfile } from "./sign-profile.ts";
import { inspectStoredProfile } from "./stored-profile.ts";

let profile: Buffer;
let signed: Buffer;

before(async () => {
  profile = buildEnrollmentProfile({
    serverUrl: "https://mdm.example.com/mdm",
    topic: "com.apple.mgmt.External.test",
    identity: { kind: "scep", url: "https://mdm.example.com/scep", challenge: "c" },
  });
  const ca = await createCa({ commonName: "Profile CA" });
  const signer = await issueDeviceIdentity(ca, { commonName: "Profile Signer", extendedKeyUsages: null });
  signed = await signProfile(profile, { certPem: signer.certPem, keyPem: signer.keyPem });
});

const plist = (dict: Record<string, unknown>) => Buffer.from(serializePlist(dict as never));
const minimal = { PayloadType: "Configuration", PayloadIdentifier: "com.example.wifi", PayloadUUID: "U-1", PayloadVersion: 1 };

test("a plain profile: its identifier and display name", () => {
  const facts = inspectStoredProfile(profile);
  assert.equal(facts.signed, false);
  assert.match(facts.payloadIdentifier, /\S/);
  assert.deepEqual(inspectStoredProfile(plist({ ...minimal, PayloadDisplayName: "Wi-Fi" })), {
    signed: false,
    payloadIdentifier: "com.example.wifi",
    payloadDisplayName: "Wi-Fi",
  });
  assert.equal(inspectStoredProfile(plist(minimal)).payloadDisplayName, null);
});

test("a CMS-signed profile: read from inside the signature", () => {
  const facts = inspectStoredProfile(signed);
  assert.equal(facts.signed, true);
  assert.equal(facts.payloadIdentifier, inspectStoredProfile(profile).payloadIdentifier);
});

function refused(bytes: Buffer, reason: RegExp): void {
  assert.throws(
    () => inspectStoredProfile(bytes),
    (err: unknown) => err instanceof OrchardError && err.status === 400 && err.code === "invalid_profile" && reason.test(err.message),
  );
}

test("what is not a profile is refused with the reason", () => {
  refused(Buffer.alloc(0), /empty/);
  refused(Buffer.from("hello"), /not an XML plist/);
  refused(Buffer.from("bplist00\0\0\0"), /binary plist: convert it/);
  refused(plist({ ...minimal, PayloadType: "com.apple.wifi.managed" }), /PayloadType must be "Configuration"/);
  refused(plist({ ...minimal, PayloadIdentifier: undefined }), /PayloadIdentifier is missing/);
  refused(plist({ ...minimal, PayloadUUID: "" }), /PayloadUUID is missing/);
  refused(plist({ ...minimal, PayloadVersion: "1" }), /PayloadVersion/);
  refused(Buffer.from(serializePlist(["a"] as never)), /not a dictionary/);
  // DER that is not a SignedData, and a SignedData cut short.
  refused(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]), /not a CMS-signed profile/);
  refused(signed.subarray(0, signed.length - 10), /not a CMS-signed profile/);
});
