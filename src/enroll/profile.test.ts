import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { DeviceCa } from "./device-ca.ts";
import { issuePkcs12Identity } from "./pkcs12-build.ts";
import {
  buildEnrollmentProfile,
  CAPABILITY_BOOTSTRAP_TOKEN,
  CAPABILITY_PER_USER_CONNECTIONS,
  DEFAULT_IDENTIFIER_PREFIX,
  type EnrollmentProfileOptions,
} from "./profile.ts";
import { parsePlist, type PlistDict } from "../plist/index.ts";
import { createCa } from "../identity/testing/pki.ts";
import { readPkcs12 } from "../identity/pkcs12.ts";

const TOPIC = "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555";
let ca: DeviceCa;
let p12: Buffer;
let tlsRootDer: Buffer;

before(async () => {
  ca = await DeviceCa.create("Profile Test CA");
  p12 = await issuePkcs12Identity(ca, { commonName: "embedded", passphrase: "one-time-pass" });
  tlsRootDer = (await createCa({ commonName: "TLS Root" })).certDer;
});

function scepOptions(extra: Partial<EnrollmentProfileOptions> = {}): EnrollmentProfileOptions {
  return {
    serverUrl: "https://mdm.example.com/mdm",
    checkInUrl: "https://mdm.example.com/checkin",
    topic: TOPIC,
    identity: {
      kind: "scep",
      url: "https://mdm.example.com/scep",
      challenge: "s3cret-challenge",
      subjectCommonName: "Orchard device test",
    },
    caCertDer: ca.certDer,
    ...extra,
  };
}

/** Python's plistlib view of the profile, with data as base64 and ints kept distinct from bools. */
function python(profile: Buffer): any {
  const script = `
import plistlib, sys, json, base64
p = plistlib.loads(sys.stdin.buffer.read(), fmt=plistlib.FMT_XML)
def conv(v):
    if isinstance(v, bytes): return {"$data": base64.b64encode(v).decode()}
    if isinstance(v, bool): return {"$bool": v}
    if isinstance(v, int): return {"$int": v}
    if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
json.dump(conv(p), sys.stdout)
`;
  return JSON.parse(execFileSync("python3", ["-c", script], { input: profile }).toString());
}

function byType(payloads: PlistDict[], type: string): PlistDict[] {
  return payloads.filter((p) => p["PayloadType"] === type);
}

test("SCEP profile: Python's plistlib reads every required key with the right types", () => {
  const profile = buildEnrollmentProfile(scepOptions({ organization: "Orchard & Sons <Test>" }));
  const p = python(profile);
  assert.equal(p.PayloadType, "Configuration");
  assert.deepEqual(p.PayloadVersion, { $int: 1 });
  assert.equal(p.PayloadIdentifier, DEFAULT_IDENTIFIER_PREFIX);
  assert.equal(p.PayloadDisplayName, "Orchard MDM");
  assert.equal(p.PayloadOrganization, "Orchard & Sons <Test>");
  assert.equal(p.PayloadScope, "System");
  const types = p.PayloadContent.map((x: any) => x.PayloadType);
  assert.deepEqual(types, ["com.apple.security.root", "com.apple.security.scep", "com.apple.mdm"]);

  const [root, scep, mdm] = p.PayloadContent;
  for (const payload of p.PayloadContent) {
    assert.deepEqual(payload.PayloadVersion, { $int: 1 });
    assert.match(payload.PayloadUUID, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    assert.ok(payload.PayloadIdentifier.startsWith(`${DEFAULT_IDENTIFIER_PREFIX}.`));
  }
  assert.equal(mdm.ServerURL, "https://mdm.example.com/mdm");
  assert.equal(mdm.CheckInURL, "https://mdm.example.com/checkin");
  assert.equal(mdm.Topic, TOPIC);
  assert.equal(mdm.IdentityCertificateUUID, scep.PayloadUUID);
  assert.deepEqual(mdm.SignMessage, { $bool: true });
  assert.deepEqual(mdm.AccessRights, { $int: 8191 });
  assert.deepEqual(mdm.CheckOutWhenRemoved, { $bool: true });
  assert.deepEqual(mdm.ServerCapabilities, [CAPABILITY_PER_USER_CONNECTIONS, CAPABILITY_BOOTSTRAP_TOKEN]);
  assert.equal(mdm.UseDevelopmentAPNS, undefined);

  assert.deepEqual(scep.PayloadContent, {
    URL: "https://mdm.example.com/scep",
    Name: "Orchard",
    Subject: [[["CN", "Orchard device test"]]],
    Challenge: "s3cret-challenge",
    Keysize: { $int: 2048 },
    "Key Type": "RSA",
    "Key Usage": { $int: 5 },
    Retries: { $int: 3 },
    RetryDelay: { $int: 10 },
  });
  assert.deepEqual(root.PayloadContent, { $data: ca.certDer.toString("base64") });

  const uuids = [p.PayloadUUID, ...p.PayloadContent.map((x: any) => x.PayloadUUID)];
  assert.equal(new Set(uuids).size, uuids.length);
  const ids = [p.PayloadIdentifier, ...p.PayloadContent.map((x: any) => x.PayloadIdentifier)];
  assert.equal(new Set(ids).size, ids.length);
});

test("SCEP profile: our parser reads the same document", () => {
  const profile = buildEnrollmentProfile(scepOptions({ useDevelopmentApns: true }));
  const p = parsePlist(profile) as PlistDict;
  const payloads = p["PayloadContent"] as PlistDict[];
  const [mdm] = byType(payloads, "com.apple.mdm");
  const [scep] = byType(payloads, "com.apple.security.scep");
  const [root] = byType(payloads, "com.apple.security.root");
  assert.equal(mdm!["IdentityCertificateUUID"], scep!["PayloadUUID"]);
  assert.equal(mdm!["UseDevelopmentAPNS"], true);
  assert.ok((mdm!["ServerCapabilities"] as string[]).includes(CAPABILITY_PER_USER_CONNECTIONS));
  assert.deepEqual(root!["PayloadContent"], ca.certDer);
  assert.equal((scep!["PayloadContent"] as PlistDict)["CAFingerprint"], undefined);
  assert.ok(profile.toString("utf8").startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist'));
});

test("PKCS#12 profile: identity payload carries the file and password; MDM points at it", () => {
  const profile = buildEnrollmentProfile(scepOptions({ identity: { kind: "pkcs12", pkcs12: p12, passphrase: "one-time-pass" } }));
  const p = python(profile);
  const [pk] = p.PayloadContent.filter((x: any) => x.PayloadType === "com.apple.security.pkcs12");
  const [mdm] = p.PayloadContent.filter((x: any) => x.PayloadType === "com.apple.mdm");
  assert.deepEqual(pk.PayloadContent, { $data: p12.toString("base64") });
  assert.equal(pk.Password, "one-time-pass");
  assert.equal(pk.PayloadCertificateFileName, "orchard-identity.p12");
  assert.equal(mdm.IdentityCertificateUUID, pk.PayloadUUID);
  assert.equal(p.PayloadContent.filter((x: any) => x.PayloadType === "com.apple.security.scep").length, 0);
});

test("PKCS#12 profile: a passphrase that does not open the file is refused at build time", () => {
  assert.throws(
    () => buildEnrollmentProfile(scepOptions({ identity: { kind: "pkcs12", pkcs12: p12, passphrase: "wrong" } })),
    /passphrase/,
  );
  assert.throws(
    () => buildEnrollmentProfile(scepOptions({ identity: { kind: "pkcs12", pkcs12: Buffer.from("junk"), passphrase: "x" } })),
    /PKCS#12/,
  );
});

test("without caCertDer no root payload; extra trust certificates are added", () => {
  const bare = python(buildEnrollmentProfile(scepOptions({ caCertDer: undefined, checkInUrl: undefined })));
  assert.deepEqual(
    bare.PayloadContent.map((x: any) => x.PayloadType),
    ["com.apple.security.scep", "com.apple.mdm"],
  );
  assert.equal(bare.PayloadContent[1].CheckInURL, undefined);

  const withTls = python(buildEnrollmentProfile(scepOptions({ trustCertsDer: [tlsRootDer] })));
  const roots = withTls.PayloadContent.filter((x: any) => x.PayloadType === "com.apple.security.root");
  assert.deepEqual(
    roots.map((r: any) => r.PayloadContent.$data),
    [ca.certDer.toString("base64"), tlsRootDer.toString("base64")],
  );
  assert.equal(roots[1].PayloadDisplayName, "TLS Root");
});

test("fresh UUIDs per build, stable identifiers; options are honoured", () => {
  const o = scepOptions({
    identifierPrefix: "com.example.mdm",
    displayName: "Example",
    signMessage: false,
    accessRights: 1 | 16,
    checkOutWhenRemoved: false,
  });
  const a = python(buildEnrollmentProfile(o));
  const b = python(buildEnrollmentProfile(o));
  assert.notEqual(a.PayloadUUID, b.PayloadUUID);
  a.PayloadContent.forEach((x: any, i: number) => {
    assert.notEqual(x.PayloadUUID, b.PayloadContent[i].PayloadUUID);
    assert.equal(x.PayloadIdentifier, b.PayloadContent[i].PayloadIdentifier);
  });
  assert.equal(a.PayloadIdentifier, "com.example.mdm");
  assert.equal(a.PayloadDisplayName, "Example");
  const mdm = a.PayloadContent.at(-1);
  assert.deepEqual(mdm.SignMessage, { $bool: false });
  assert.deepEqual(mdm.AccessRights, { $int: 17 });
  assert.deepEqual(mdm.CheckOutWhenRemoved, { $bool: false });
});

test("default SCEP subject CN is random per profile", () => {
  const o = scepOptions({ identity: { kind: "scep", url: "https://mdm.example.com/scep", challenge: "c" } });
  const cn = (p: any) => p.PayloadContent.find((x: any) => x.PayloadType === "com.apple.security.scep").PayloadContent.Subject[0][0][1];
  const a = cn(python(buildEnrollmentProfile(o)));
  const b = cn(python(buildEnrollmentProfile(o)));
  assert.match(a, /^Orchard device [0-9a-f]{8}$/);
  assert.notEqual(a, b);
});

test("input validation", () => {
  const bad: [Partial<EnrollmentProfileOptions>, RegExp][] = [
    [{ serverUrl: "http://mdm.example.com/mdm" }, /https/],
    [{ checkInUrl: "ftp://mdm.example.com/checkin" }, /https/],
    [{ serverUrl: "not a url" }, /not a URL/],
    [{ serverUrl: "https://user:pw@mdm.example.com/" }, /credentials/],
    [{ topic: "" }, /topic is empty/],
    [{ topic: "com.example.push" }, /com\.apple\.mgmt/],
    [{ accessRights: 0 }, /AccessRights/],
    [{ accessRights: 8192 }, /AccessRights/],
    [{ accessRights: 2 }, /requires 1/],
    [{ accessRights: 1 | 128 }, /requires 64/],
    [{ accessRights: 1.5 }, /AccessRights/],
    [{ identity: { kind: "scep", url: "https://x.example/scep", challenge: "" } }, /challenge/],
    [{ identity: { kind: "scep", url: "http://x.example/scep", challenge: "c" } }, /https/],
    [{ identity: { kind: "scep", url: "https://x.example/scep", challenge: "c", keysize: 1024 as 2048 } }, /key size/],
    [{ identity: { kind: "other" } as never }, /identity must be/],
    [{ caCertDer: Buffer.from("nope") }, /not a DER certificate/],
    [{ serverCapabilities: ["per-user-connections"] }, /capability/],
    [{ identifierPrefix: "has space" }, /reverse-DNS/],
    [{ displayName: "" }, /displayName/],
  ];
  for (const [extra, message] of bad) {
    assert.throws(() => buildEnrollmentProfile(scepOptions(extra)), message, JSON.stringify(extra));
  }
});

test("a leaf certificate is refused as caCertDer", () => {
  const leafDer = readPkcs12(p12, "one-time-pass").certificates[0]!;
  assert.throws(() => buildEnrollmentProfile(scepOptions({ caCertDer: leafDer })), /not a CA certificate/);
});

test("allowHttp admits http URLs for tests", () => {
  const profile = buildEnrollmentProfile(
    scepOptions({
      allowHttp: true,
      serverUrl: "http://127.0.0.1:9000/mdm",
      checkInUrl: "http://127.0.0.1:9000/checkin",
      identity: { kind: "scep", url: "http://127.0.0.1:9000/scep", challenge: "c" },
    }),
  );
  const p = python(profile);
  assert.equal(p.PayloadContent.at(-1).ServerURL, "http://127.0.0.1:9000/mdm");
});
