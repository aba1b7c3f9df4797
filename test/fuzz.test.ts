// Hostile input against a real server: grammar-aware mutations of every
// message type and of the real device fixtures, random bytes, wrong content
// types and paths, broken and foreign identities (headers and Mdm-Signature),
// malformed DigestResponse strings. For every input: no 5xx (and never a 401
// to a device), no unhandled rejection, no error-level log line, memory
// bounded, and the store unchanged for every refused (4xx) request.
//
// `npm test` runs a bounded pass (a few seconds per backend). `npm run fuzz`
// runs long: FUZZ_SECONDS (default 300) or FUZZ_ITERATIONS, per backend;
// FUZZ_SEED reproduces a run (the seed is printed, and named in every failure),
// FUZZ_BACKEND=sqlite|postgres runs one backend.
import assert from "node:assert/strict";
import { randomInt, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { after, before, test } from "node:test";
import { mintNonce } from "../src/digest/index.ts";
import {
  createCa,
  escapedPemHeader,
  generateKeyPair,
  issueDeviceIdentity,
  rfc9440Header,
  signMdmBody,
  type DeviceIdentity,
} from "../src/identity/testing/pki.ts";
import { parsePlistDict } from "../src/plist/index.ts";
import { buildCsr, buildPkiRequest, commonNameSubject, selfSignedSigner } from "../src/scep/testing/client.ts";
import { Transport, type Response } from "../src/sim/transport.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import {
  malformedDigestResponses,
  mutateBytes,
  mutateDict,
  mutateXml,
  plistText,
  randomValue,
  refusalChanges,
  Rng,
  snapshot,
  type FuzzDict,
  writeCounter,
  type Snapshot,
} from "./support/fuzz.ts";
import { CHECKIN_TYPE, COMMAND_TYPE, commandPlist, FIXTURES, sleep } from "./support/mdm.ts";
import { forEachBackend, type Backend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const LONG = process.env.FUZZ_SECONDS !== undefined || process.env.FUZZ_ITERATIONS !== undefined;
const SECONDS = Number(process.env.FUZZ_SECONDS ?? (LONG ? 0 : 4));
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? (LONG ? 0 : 0)) || undefined;
const DEFAULT_ITERATIONS: Record<Backend, number> = { sqlite: 1000, postgres: 500 };
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const REALM = "fuzz.test";
const PASSWORD = "fuzz-password";

process.stdout.write(`# fuzz seed ${SEED} (FUZZ_SEED=${SEED} reproduces this run)\n`);

// Any unhandled rejection anywhere in this process (the server runs in it) fails the suite.
const unhandled: unknown[] = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** A fake Declarative Management service for --dm-url, so DDM check-ins go the whole way. */
function startDdmService(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const body = Buffer.from(JSON.stringify({ Declarations: { Activations: [], Configurations: [] }, DeclarationsToken: "t" }));
      res.writeHead(req.method === "PUT" ? 204 : 200, { "content-type": "application/json" });
      res.end(req.method === "PUT" ? undefined : body);
    });
  });
  // Longer than any run's pause: a keep-alive connection closed by the service just as
  // Orchard reuses it would be the service's failure (503), not the input's.
  server.keepAliveTimeout = 600_000;
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`,
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

interface Input {
  kind: string;
  method?: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** A DigestResponse that must not log anyone in: 200 with an empty AuthToken, or 400. */
  malformedDigest?: boolean;
}

interface Identities {
  main: DeviceIdentity;
  otherCa: DeviceIdentity;
  expired: DeviceIdentity;
  notYetValid: DeviceIdentity;
  serverAuthOnly: DeviceIdentity;
  chained: DeviceIdentity;
  intermediate: DeviceIdentity;
  fleetCa: DeviceIdentity;
  fixtures: Map<string, DeviceIdentity>;
}

await forEachBackend("fuzz", (backend) => {
  // FUZZ_BACKEND=sqlite|postgres runs one of them (to reproduce a seed quickly).
  if (process.env.FUZZ_BACKEND && process.env.FUZZ_BACKEND !== backend) return;
  let server: TestServer;
  let transport: Transport;
  let caDir = "";
  let ddm: { url: string; close(): Promise<void> };
  let ids: Identities;
  let scepMessage: Buffer;
  const udid = `FUZZ-${randomUUID().toUpperCase()}`;
  const chainedUdid = `FUZZ-CHAIN-${randomUUID().toUpperCase()}`;
  const user = { userId: randomUUID().toUpperCase(), shortName: "fuzzuser", longName: "Fuzz User" };
  let authToken = "";
  let commandUuids: string[] = [];
  const fixtures = fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".plist"))
    .map((f) => ({ name: f, text: fs.readFileSync(path.join(FIXTURES, f), "utf8") }));
  const fixtureUdid = (text: string) => /<key>UDID<\/key>\s*<string>([^<]+)<\/string>/.exec(text)![1]!;

  before(async () => {
    ddm = await startDdmService();
    // The CA first, so that the server can trust it (--ca): certificates that do not chain to it get 400.
    const key = await generateKeyPair();
    const ca = await createCa({ commonName: "Orchard Fuzz Device CA", keyPair: key });
    caDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-fuzz-ca-"));
    fs.writeFileSync(path.join(caDir, "ca.pem"), ca.certPem);
    server = await startTestServer(
      [
        "--ca",
        path.join(caDir, "ca.pem"),
        "--digest-realm",
        REALM,
        "--userauth-max-failures",
        "1000000000",
        // Thousands of UserAuthenticate messages from a few Macs: the per-Mac limit would answer most of them 410.
        "--userauth-max-messages",
        "0",
        "--dm-url",
        ddm.url,
        "--api-max-failures",
        "1000000000",
      ],
      backend,
    );
    transport = new Transport(server.url);
    const day = 86_400_000;
    const otherRoot = await createCa({ commonName: "Not Our CA", keyPair: key });
    const intermediate = await createCa({ commonName: "Fuzz Intermediate", issuer: ca, keyPair: key });
    // A well-formed SCEP PKCSReq to the server's device CA, for enrollmentInput to mangle.
    const signer = { cert: await selfSignedSigner(key), key: key.privateKey };
    const csrDer = buildCsr({ key, subjectDer: commonNameSubject("fuzz-scep"), challenge: "not-a-challenge-0123456789" });
    scepMessage = buildPkiRequest({ messageType: 19, csrDer, signer, recipient: server.deviceCa.cert }).der;
    ids = {
      main: await issueDeviceIdentity(ca, { commonName: "fuzz-main", keyPair: key }),
      otherCa: await issueDeviceIdentity(otherRoot, { commonName: "fuzz-foreign", keyPair: key }),
      expired: await issueDeviceIdentity(ca, {
        commonName: "fuzz-expired",
        keyPair: key,
        notBefore: new Date(Date.now() - 20 * day),
        notAfter: new Date(Date.now() - day),
      }),
      notYetValid: await issueDeviceIdentity(ca, {
        commonName: "fuzz-future",
        keyPair: key,
        notBefore: new Date(Date.now() + day),
        notAfter: new Date(Date.now() + 20 * day),
      }),
      serverAuthOnly: await issueDeviceIdentity(ca, {
        commonName: "fuzz-server-eku",
        keyPair: key,
        extendedKeyUsages: ["1.3.6.1.5.5.7.3.1"],
      }),
      chained: await issueDeviceIdentity(intermediate, { commonName: "fuzz-chained", keyPair: key }),
      intermediate,
      fleetCa: ca,
      fixtures: new Map(),
    };
    for (const f of fixtures) {
      const id = fixtureUdid(f.text);
      if (!ids.fixtures.has(id)) ids.fixtures.set(id, await issueDeviceIdentity(ca, { commonName: `fixture-${id}`, keyPair: key }));
    }
    // The real fixtures, unchanged, enroll their devices (CheckOut last, then undone).
    const order = [...fixtures].sort((a, b) => rank(a.name) - rank(b.name));
    for (const f of order) {
      const r = await send({
        kind: "fixture",
        path: "/checkin",
        headers: { ...header(ids.fixtures.get(fixtureUdid(f.text))!), "content-type": CHECKIN_TYPE },
        body: Buffer.from(f.text),
      });
      assert.equal(r.status, 200, `${f.name}: ${r.status} ${r.body}`);
    }
    assert.equal((await server.api("PUT", `/v1/users/${user.shortName}`, { password: PASSWORD, guid: user.userId })).status, 201);
    await maintain();
  });

  after(async () => {
    transport?.close();
    await server?.stop();
    await ddm?.close();
    if (caDir) fs.rmSync(caDir, { recursive: true, force: true });
  });

  const rank = (name: string) =>
    name.startsWith("authenticate") ? 0 : name.startsWith("tokenupdate") ? (name.includes("user") ? 2 : 1) : 3;
  const header = (id: DeviceIdentity): Record<string, string> => ({ "x-client-cert": escapedPemHeader(id.certPem) });

  async function send(input: Input): Promise<Response & { text: string }> {
    const res = await transport.send({ method: input.method ?? "PUT", path: input.path, headers: input.headers, body: input.body });
    return { ...res, text: res.body.toString("utf8") };
  }

  const checkin = (fields: FuzzDict): FuzzDict => ({ UDID: udid, ...fields });
  const userKeys = (withToken = true): FuzzDict => ({
    UserID: user.userId,
    UserShortName: user.shortName,
    UserLongName: user.longName,
    ...(withToken && authToken ? { AuthToken: authToken } : {}),
  });

  /** Valid requests that keep the main device enrolled, logged in, with commands queued: all must be 200. */
  async function maintain(): Promise<void> {
    const ok = async (what: string, dict: FuzzDict, p = "/checkin", type = CHECKIN_TYPE) => {
      const r = await send({
        kind: what,
        path: p,
        headers: { ...header(ids.main), "content-type": type },
        body: Buffer.from(plistText(dict)),
      });
      assert.equal(r.status, 200, `seed ${SEED}: maintenance ${what} answered ${r.status} ${r.text}`);
      return r;
    };
    await ok("Authenticate", checkin({ MessageType: "Authenticate", Topic: "com.apple.mgmt.External.fuzz", SerialNumber: "FUZZSERIAL" }));
    await ok(
      "TokenUpdate",
      checkin({
        MessageType: "TokenUpdate",
        Topic: "com.apple.mgmt.External.fuzz",
        Token: Buffer.alloc(32, 7),
        PushMagic: "MAGIC",
        UnlockToken: Buffer.alloc(64, 9),
      }),
    );
    const first = await ok("UserAuthenticate 1", checkin({ MessageType: "UserAuthenticate", ...userKeys(false) }));
    const { nonce } = challengeParams(parsePlistDict(first.body).DigestChallenge as string);
    const second = await ok(
      "UserAuthenticate 2",
      checkin({
        MessageType: "UserAuthenticate",
        ...userKeys(false),
        DigestResponse: digestResponse({ username: user.shortName, password: PASSWORD, realm: REALM, nonce: nonce! }),
      }),
    );
    authToken = parsePlistDict(second.body).AuthToken as string;
    assert.ok(authToken.length > 0, "the maintenance login got an AuthToken");
    await ok(
      "user TokenUpdate",
      checkin({
        MessageType: "TokenUpdate",
        Topic: "com.apple.mgmt.External.fuzz",
        Token: Buffer.alloc(32, 8),
        PushMagic: "UMAGIC",
        ...userKeys(),
      }),
    );
    commandUuids = [];
    for (const target of [udid, `${udid}:${user.userId}`]) {
      const uuid = `FUZZ-CMD-${randomUUID()}`;
      const r = await server.api("PUT", `/v1/enqueue/${encodeURIComponent(target)}?nopush=1`, commandPlist("DeviceInformation", uuid));
      assert.equal(r.status, 200, r.text);
      commandUuids.push(uuid);
    }
  }

  /** Every message type, on the device and the user channel, as a valid base to mutate. */
  function baseMessages(rng: Rng): Array<{ path: string; type: string; dict: FuzzDict }> {
    const uuid = commandUuids.length > 0 ? rng.pick(commandUuids) : "NONE";
    const c = (dict: FuzzDict) => ({ path: "/checkin", type: CHECKIN_TYPE, dict: checkin(dict) });
    const r = (dict: FuzzDict) => ({ path: "/mdm", type: COMMAND_TYPE, dict: checkin(dict) });
    return [
      c({
        MessageType: "Authenticate",
        Topic: "com.apple.mgmt.External.fuzz",
        SerialNumber: "FUZZSERIAL",
        Model: "Mac14,2",
        OSVersion: "14.6",
      }),
      c({
        MessageType: "TokenUpdate",
        Topic: "com.apple.mgmt.External.fuzz",
        Token: Buffer.alloc(32, 7),
        PushMagic: "MAGIC",
        UnlockToken: Buffer.alloc(64, 9),
        AwaitingConfiguration: false,
      }),
      c({
        MessageType: "TokenUpdate",
        Topic: "com.apple.mgmt.External.fuzz",
        Token: Buffer.alloc(32, 8),
        PushMagic: "UMAGIC",
        NotOnConsole: false,
        ...userKeys(),
      }),
      c({ MessageType: "CheckOut", Topic: "com.apple.mgmt.External.fuzz" }),
      c({ MessageType: "UserAuthenticate", ...userKeys(false) }),
      c({
        MessageType: "UserAuthenticate",
        ...userKeys(false),
        DigestResponse: `Digest username="${user.shortName}",realm="${REALM}",nonce="AAAA", uri="/",response="${"0".repeat(32)}"`,
      }),
      c({ MessageType: "GetBootstrapToken" }),
      c({ MessageType: "SetBootstrapToken", BootstrapToken: Buffer.alloc(48, 3) }),
      c({ MessageType: "SetBootstrapToken" }),
      c({ MessageType: "GetToken", TokenServiceType: "com.apple.maid", TokenParameters: { PhoneUDID: "X", SecurityToken: "Y" } }),
      c({ MessageType: "DeclarativeManagement", Endpoint: "tokens" }),
      c({ MessageType: "DeclarativeManagement", Endpoint: "declaration-items" }),
      c({ MessageType: "DeclarativeManagement", Endpoint: "status", Data: Buffer.from('{"StatusItems":{}}') }),
      c({ MessageType: "ReturnToService" }),
      r({ Status: "Idle" }),
      r({ Status: "Idle", ...userKeys() }),
      r({
        Status: "Acknowledged",
        CommandUUID: uuid,
        QueryResponses: { DeviceName: "fuzz", OSVersion: "14.6", IsSupervised: true, BatteryLevel: 0.5 },
      }),
      r({
        Status: "Error",
        CommandUUID: uuid,
        ErrorChain: [{ ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "nope" }],
      }),
      r({ Status: "CommandFormatError", CommandUUID: uuid }),
      r({ Status: "NotNow", CommandUUID: uuid }),
      r({ Status: "Acknowledged", CommandUUID: uuid, ...userKeys() }),
    ];
  }

  const CONTENT_TYPES = [
    CHECKIN_TYPE,
    COMMAND_TYPE,
    "application/xml",
    "text/plain",
    "application/json",
    "",
    "application/x-apple-aspen-mdm-checkin; charset=UTF-16",
    "APPLICATION/X-APPLE-ASPEN-MDM",
    "multipart/form-data; boundary=x",
    "*/*",
  ];
  const PATHS = [
    "/checkin",
    "/mdm",
    "/checkin?x=1",
    "/mdm?",
    "/mdm/",
    "/MDM",
    "/checkin/../mdm",
    "/%6Ddm",
    "//mdm",
    "/mdm#x",
    "/v1/enqueue/x",
    "/",
  ];

  /** One hostile input, chosen and built from the seeded generator. */
  async function generate(rng: Rng): Promise<Input> {
    const bases = baseMessages(rng);
    const base = rng.pick(bases);
    const headers = (type: string, id: DeviceIdentity = ids.main) => ({ ...header(id), "content-type": type });
    return rng.weighted<() => Promise<Input>>([
      [
        30,
        async () => {
          const dict = mutateDict(base.dict, rng);
          return {
            kind: `mutated ${base.dict.MessageType ?? base.dict.Status}`,
            path: base.path,
            headers: headers(base.type),
            body: Buffer.from(plistText(dict)),
          };
        },
      ],
      [
        20,
        async () => ({
          kind: `xml-mutated ${base.dict.MessageType ?? base.dict.Status}`,
          path: base.path,
          headers: headers(base.type),
          body: mutateXml(plistText(base.dict), rng),
        }),
      ],
      [
        12,
        async () => {
          const f = rng.pick(fixtures);
          return {
            kind: `fixture ${f.name}`,
            path: "/checkin",
            headers: headers(CHECKIN_TYPE, ids.fixtures.get(fixtureUdid(f.text))!),
            body: rng.chance(0.2) ? mutateBytes(Buffer.from(f.text), rng) : mutateXml(f.text, rng),
          };
        },
      ],
      [
        5,
        async () => ({
          kind: "random bytes",
          path: rng.pick(["/checkin", "/mdm"]),
          headers: headers(rng.pick(CONTENT_TYPES)),
          body: rng.bytes(rng.size()),
        }),
      ],
      [
        6,
        async () => {
          // A valid message with a wrong content type, path or method.
          const h: Record<string, string> = headers(rng.pick(CONTENT_TYPES));
          if (rng.chance(0.2)) delete h["content-type"];
          return {
            kind: "content type / path",
            method: rng.chance(0.15) ? rng.pick(["POST", "GET", "DELETE", "PATCH"]) : "PUT",
            path: rng.pick(PATHS),
            headers: h,
            body: Buffer.from(plistText(base.dict)),
          };
        },
      ],
      [9, () => signatureInput(rng, base)],
      [6, async () => certHeaderInput(rng, base)],
      [9, () => digestInput(rng)],
      [6, async () => apiInput(rng)],
      [4, async () => enrollmentInput(rng)],
      [
        3,
        async () => {
          // A message whose every value is replaced, one type at a time.
          const dict: FuzzDict = {};
          for (const k of Object.keys(base.dict)) dict[k] = k === "UDID" ? udid : randomValue(rng);
          return { kind: "retyped values", path: base.path, headers: headers(base.type), body: Buffer.from(plistText(dict)) };
        },
      ],
    ])();
  }

  /** Mdm-Signature: truncated, over-long, garbage, bit-flipped, over another body, by a foreign signer. */
  async function signatureInput(rng: Rng, base: { path: string; type: string; dict: FuzzDict }): Promise<Input> {
    const body = Buffer.from(plistText(base.dict));
    const signer = rng.weighted<DeviceIdentity>([
      [6, ids.main],
      [1, ids.otherCa],
      [1, ids.expired],
      [1, ids.serverAuthOnly],
      [1, ids.chained],
    ]);
    const sig = await signMdmBody(signer, body, {
      digest: rng.pick(["SHA-1", "SHA-256"] as const),
      signedAttributes: rng.chance(0.3),
      extraCertificates: signer === ids.chained && rng.chance(0.7) ? [ids.intermediate.cert] : [],
    });
    const kind = rng.pick([
      "valid",
      "truncated",
      "over-long",
      "garbage",
      "bit-flip",
      "body-one-byte",
      "whitespace",
      "empty",
      "too-long",
      "not-base64",
    ]);
    let value = sig;
    let sent = body;
    switch (kind) {
      case "truncated":
        value = sig.slice(0, rng.int(sig.length));
        break;
      case "over-long":
        value = sig + rng.bytes(1 + rng.int(64)).toString("base64");
        break;
      case "garbage":
        value = rng.bytes(rng.size() + 1).toString("base64");
        break;
      case "bit-flip": {
        const der = Buffer.from(sig, "base64");
        const at = rng.int(der.length);
        der[at] = der[at]! ^ (1 << rng.int(8));
        value = der.toString("base64");
        break;
      }
      case "body-one-byte": {
        sent = Buffer.from(body);
        const at = rng.int(sent.length);
        sent[at] = sent[at]! === 0x20 ? 0x09 : sent[at]! ^ 0x01;
        break;
      }
      case "whitespace":
        value = sig.replace(/(.{64})/g, "$1 ");
        break;
      case "empty":
        value = "";
        break;
      case "too-long":
        value = "A".repeat(64 * 1024 + 4);
        break;
      case "not-base64":
        value = sig.slice(0, 100) + "!*" + sig.slice(100);
        break;
    }
    const h: Record<string, string> = { "content-type": base.type, "mdm-signature": value };
    if (signer === ids.chained) {
      // The chained identity speaks for its own device; its plain valid case is accepted.
      sent = Buffer.from(sent.toString("latin1").replaceAll(udid, chainedUdid), "latin1");
      if (kind === "valid" || kind === "whitespace")
        h["mdm-signature"] = await signMdmBody(signer, sent, { extraCertificates: [ids.intermediate.cert] });
    }
    return { kind: `signature ${kind} by ${signer.commonName}`, path: base.path, headers: h, body: sent };
  }

  /** The proxy's certificate header: foreign, expired, not yet valid, a CA, the wrong EKU, or broken. */
  function certHeaderInput(rng: Rng, base: { path: string; type: string; dict: FuzzDict }): Input {
    const id = rng.pick([ids.otherCa, ids.expired, ids.notYetValid, ids.serverAuthOnly, ids.fleetCa, ids.chained, ids.intermediate]);
    const pem = id.certPem;
    const value = rng.pick([
      escapedPemHeader(pem),
      rfc9440Header(id.certDer),
      escapedPemHeader(pem.slice(0, rng.int(pem.length))),
      escapedPemHeader(pem.replace(/[A-Za-z]/, "*")),
      `:${rng.bytes(rng.size() + 1).toString("base64")}:`,
      "%E0%A4%A",
      "-----BEGIN CERTIFICATE----- -----END CERTIFICATE-----",
      "x".repeat(64 * 1024 + 1),
      ":",
      "::",
    ]);
    // These identities speak for their own device: once a signature carried the chained
    // one's intermediate, the server trusts that leaf (rightly), and its Authenticate re-binds.
    const body = Buffer.from(plistText(base.dict).replaceAll(udid, chainedUdid));
    return { kind: `cert header ${id.commonName}`, path: base.path, headers: { "content-type": base.type, "x-client-cert": value }, body };
  }

  /** A fresh challenge, answered with a malformed or wrong DigestResponse. */
  async function digestInput(rng: Rng): Promise<Input> {
    const first = await send({
      kind: "UserAuthenticate 1",
      path: "/checkin",
      headers: { ...header(ids.main), "content-type": CHECKIN_TYPE },
      body: Buffer.from(plistText(checkin({ MessageType: "UserAuthenticate", ...userKeys(false) }))),
    });
    assert.equal(first.status, 200, `seed ${SEED}: a step-1 UserAuthenticate answered ${first.status} ${first.text}`);
    authToken = ""; // step 1 ended the token
    const nonce = challengeParams(parsePlistDict(first.body).DigestChallenge as string).nonce!;
    const secret = await server.store.settings.getOrCreate("digest-nonce-secret", () => Buffer.alloc(32));
    const wrongs = [
      ...malformedDigestResponses({ username: user.shortName, realm: REALM, nonce }, rng),
      digestResponse({ username: user.shortName, password: "wrong", realm: REALM, nonce }),
      digestResponse({ username: "nobody", password: PASSWORD, realm: REALM, nonce }),
      digestResponse({ username: user.shortName, password: PASSWORD, realm: "other", nonce }),
      digestResponse({ username: user.shortName, password: PASSWORD, realm: REALM, nonce, method: "GET" }),
      digestResponse({
        username: user.shortName,
        password: PASSWORD,
        realm: REALM,
        nonce: mintNonce({ secret, udid, userId: user.userId, now: Date.now() - 3_600_000 }),
      }),
      digestResponse({
        username: user.shortName,
        password: PASSWORD,
        realm: REALM,
        nonce: mintNonce({ secret, udid, userId: user.userId, now: Date.now() + 3_600_000 }),
      }),
      digestResponse({
        username: user.shortName,
        password: PASSWORD,
        realm: REALM,
        nonce: mintNonce({ secret, udid: "OTHER-MAC", userId: user.userId, now: Date.now() }),
      }),
      digestResponse({
        username: user.shortName,
        password: PASSWORD,
        realm: REALM,
        nonce: mintNonce({ secret, udid, userId: "OTHER-USER", now: Date.now() }),
      }),
    ];
    const response = rng.pick(wrongs);
    return {
      kind: "DigestResponse",
      path: "/checkin",
      headers: { ...header(ids.main), "content-type": CHECKIN_TYPE },
      body: Buffer.from(plistText(checkin({ MessageType: "UserAuthenticate", ...userKeys(false), DigestResponse: response }))),
      malformedDigest: true,
    };
  }

  /** The operator API: odd paths, parameters, query strings and bodies, mostly with the right key. */
  function apiInput(rng: Rng): Input {
    const id = () =>
      rng.pick([
        `NOPE-${rng.int(1000)}`,
        "%ZZ",
        "%00",
        "a%2Fb",
        encodeURIComponent(rng.bytes(8).toString("latin1")),
        "x".repeat(rng.pick([100, 5000])),
        "a,b,,c",
        ",",
        "%E2%80%AE",
        "..",
      ]);
    const shortName = () => rng.pick(["fuzz-" + rng.int(1000), "%3A", "a%2Fb", "x".repeat(300), "%C0%AF", "__proto__", "%20"]);
    const query = () => {
      const keys = ["limit", "cursor", "type", "enabled", "serial", "device", "enrollment", "since", "nopush", "__proto__", "x"];
      const values = ["", "0", "-1", "1001", "abc", "1e3", "Device", "User", "2026-13-40", "%FF", "a&b", "x".repeat(3000)];
      return Array.from({ length: rng.int(4) }, () => `${rng.pick(keys)}=${rng.pick(values)}`).join("&");
    };
    const [method, p] = rng.pick<[string, () => string]>([
      ["GET", () => "/v1/enrollments"],
      ["GET", () => `/v1/enrollments/${id()}`],
      ["GET", () => `/v1/queue/${id()}`],
      ["DELETE", () => `/v1/queue/${id()}`],
      ["GET", () => `/v1/commands/${id()}`],
      ["GET", () => "/v1/events"],
      ["PUT", () => `/v1/enqueue/${id()}`],
      ["GET", () => "/v1/users"],
      ["GET", () => `/v1/users/${shortName()}`],
      ["PUT", () => `/v1/users/${shortName()}`],
      ["DELETE", () => `/v1/users/${shortName()}`],
      ["POST", () => "/v1/users/import"],
      ["GET", () => "/v1/user-sessions"],
      ["PATCH", () => "/v1/enrollments"],
      ["PUT", () => `/v1/ddm/assets/${id()}`],
      ["GET", () => `/v1/ddm/assets/${id()}/data`],
      ["DELETE", () => `/v1/ddm/assets/${id()}`],
      ["PUT", () => `/v1/ddm/profiles/${id()}`],
      ["GET", () => `/v1/ddm/profiles/${id()}`],
    ]);
    const q = query();
    const body = rng.weighted<() => Buffer>([
      [
        3,
        () =>
          Buffer.from(
            JSON.stringify(
              Object.fromEntries(
                Array.from({ length: rng.int(4) }, () => [
                  rng.pick(["password", "guid", "full_name", "state", "__proto__", "x"]),
                  rng.pick<unknown>(["", "pw", 5, null, [], {}, true, "managed", "declined", "x".repeat(2000)]),
                ]),
              ),
            ),
          ),
      ],
      [
        2,
        () =>
          Buffer.from(
            plistText(mutateDict({ Command: { RequestType: "DeviceInformation" }, CommandUUID: `FUZZ-API-${rng.int(1e9)}` }, rng)),
          ),
      ],
      [
        2,
        () =>
          Buffer.from(
            rng.pick([
              "[]",
              "null",
              "1",
              '"x"',
              "{",
              "[".repeat(100000),
              '{"password":"a","password":"b"}',
              "fuzz:fuzz.test:0123456789abcdef0123456789abcdef\nbad line\n:::\n",
            ]),
          ),
      ],
      [1, () => rng.bytes(rng.size())],
      [1, () => Buffer.alloc(0)],
    ])();
    const headers: Record<string, string> = {
      authorization: rng.chance(0.9)
        ? "Basic " + Buffer.from("fuzz:test-api-key-0123456789abcdef").toString("base64")
        : rng.pick(["Basic", "Basic !!!", "Bearer x", "Basic " + Buffer.from("x:wrong").toString("base64")]),
    };
    if (rng.chance(0.7))
      headers["content-type"] = rng.pick([
        "application/json",
        "application/xml",
        "text/plain",
        "application/octet-stream",
        "application/json; charset=latin1",
      ]);
    return {
      kind: `api ${method} ${p().split("/")[2]}`,
      method,
      path: `${p()}${q ? "?" + q : ""}`,
      headers,
      body: method === "GET" || method === "DELETE" ? Buffer.alloc(0) : body,
    };
  }

  /** SCEP and enrollment profiles: mangled pkiMessages, bad operations and queries, wrong tokens. */
  function enrollmentInput(rng: Rng): Input {
    const message = () =>
      rng.weighted<() => Buffer>([
        [4, () => mutateBytes(scepMessage, rng)],
        [2, () => scepMessage.subarray(0, rng.int(scepMessage.length))],
        [1, () => rng.bytes(rng.size())],
        [1, () => Buffer.concat([scepMessage, rng.bytes(rng.int(64))])],
        [1, () => Buffer.alloc(0)],
      ])();
    const b64 = (b: Buffer) =>
      rng.pick([
        b.toString("base64"),
        encodeURIComponent(b.toString("base64")),
        b.toString("base64url"),
        b.toString("hex"),
        "%%%",
        "x".repeat(rng.pick([10, 200_000])),
      ]);
    const operation = () => rng.pick(["GetCACaps", "GetCACert", "PKIOperation", "GetNextCACert", "getcacaps", "", "%00", "x".repeat(300)]);
    const token = () => rng.pick(["", "x", "enrollment-token-fuzz-0", "%FF%FE", "test-api-key-0123456789abcdef", "a".repeat(5000)]);
    return rng.weighted<() => Input>([
      [
        4,
        () => ({
          kind: "scep POST",
          method: "POST",
          path: `/scep?operation=${rng.chance(0.85) ? "PKIOperation" : operation()}`,
          headers: { "content-type": rng.pick(["application/x-pki-message", "application/octet-stream", "text/plain"]) },
          body: message(),
        }),
      ],
      [
        3,
        () => ({
          kind: "scep GET",
          method: "GET",
          path: `/scep?operation=${operation()}${rng.chance(0.7) ? `&message=${b64(message())}` : ""}${rng.chance(0.2) ? "&operation=GetCACert" : ""}`,
          headers: {},
          body: Buffer.alloc(0),
        }),
      ],
      [
        2,
        () => ({
          kind: "enroll",
          method: rng.chance(0.9) ? "GET" : rng.pick(["POST", "PUT"]),
          path: `/enroll?${rng.pick(["token", "identity", "topic", "cn", "x"])}=${rng.pick(["pkcs12", "scep", "jks", "%00", "a%0Ab", "x".repeat(100)])}&token=${token()}`,
          headers: rng.chance(0.3)
            ? {
                authorization: rng.pick([
                  "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64"),
                  "Basic !!!",
                  "Bearer x",
                ]),
              }
            : {},
          body: Buffer.alloc(0),
        }),
      ],
    ])();
  }

  interface Stats {
    inputs: number;
    byStatus: Map<number, number>;
    byKind: Map<string, number>;
    rssStart: number;
    rssMax: number;
    heapAfterWarmup: number;
    heapEnd: number;
    /** Refusals after which not a single row was written (the store's write counter did not move). */
    unwritten: number;
    /** Milliseconds spent making inputs, sending them, checking the store. */
    ms: { generate: number; send: number; check: number; maintain: number };
  }

  /** Runs inputs until the budget ends; throws (naming the seed) at the first broken rule. */
  async function run(rng: Rng, budget: { iterations: number; seconds: number }): Promise<Stats> {
    const stats: Stats = {
      inputs: 0,
      byStatus: new Map(),
      byKind: new Map(),
      rssStart: process.memoryUsage().rss,
      rssMax: 0,
      heapAfterWarmup: 0,
      heapEnd: 0,
      unwritten: 0,
      ms: { generate: 0, send: 0, check: 0, maintain: 0 },
    };
    let t = performance.now();
    const lap = (k: keyof Stats["ms"]) => {
      const now = performance.now();
      stats.ms[k] += now - t;
      t = now;
    };
    const started = Date.now();
    let prior: Snapshot | undefined;
    for (let i = 0; ; i++) {
      if (budget.iterations > 0 && i >= budget.iterations) break;
      if (budget.seconds > 0 && Date.now() - started > budget.seconds * 1000) break;
      if (i > 0 && i % 40 === 0) {
        t = performance.now();
        await maintain();
        prior = undefined;
        checkLogs();
        lap("maintain");
      }
      if (i === 100) {
        gc();
        stats.heapAfterWarmup = process.memoryUsage().heapUsed;
      }
      t = performance.now();
      const input = await generate(rng);
      if (input.malformedDigest) prior = undefined; // its step 1 changed the store
      const before = prior ?? (await snapshot(server.store));
      lap("generate");
      const where = () => {
        // The whole input goes to a file, and the server's error lines into the message.
        const file = path.join(os.tmpdir(), `orchard-fuzz-${SEED}-${backend}-${i}.json`);
        fs.writeFileSync(file, JSON.stringify({ ...input, body: input.body.toString("base64") }));
        const errors = server.logs
          .filter((l) => /"level":(50|60)/.test(l))
          .slice(-2)
          .map((l) => l.slice(0, 600));
        return `seed ${SEED}, input ${i} (${input.kind}, ${input.method ?? "PUT"} ${input.path.slice(0, 200)}, ${input.body.length} bytes: ${JSON.stringify(input.body.subarray(0, 160).toString("latin1"))}; all of it in ${file})${errors.length ? `; server errors: ${errors.join(" | ")}` : ""}`;
      };
      let res: Response & { text: string };
      try {
        res = await send(input);
      } catch (err) {
        throw new Error(`${where()}: the request failed: ${String(err)}`);
      }
      lap("send");
      stats.inputs++;
      stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
      const kind = input.kind.split(" ")[0]!;
      stats.byKind.set(kind, (stats.byKind.get(kind) ?? 0) + 1);
      // where() writes the input to a file: only on a failure.
      if (res.status >= 500) assert.fail(`${where()}: answered ${res.status} ${res.text}`);
      // A device never gets 401; the API and /enroll (a browser, the CLI) do when unauthorized.
      if (res.status === 401 && !input.path.startsWith("/v1/") && !input.path.startsWith("/enroll"))
        assert.fail(`${where()}: a device got 401`);
      if (input.malformedDigest && res.status === 200) {
        const token = parsePlistDict(res.body).AuthToken;
        if (token !== "") assert.fail(`${where()}: a malformed or wrong DigestResponse logged the user in`);
      }
      if (res.status >= 400) {
        // A device's refusal is one short line (the API's enqueue 404 lists the ids it was given).
        if (!input.path.startsWith("/v1/") && res.body.length >= 1024)
          assert.fail(`${where()}: a long error body: ${res.text.slice(0, 300)}`);
        if ((await writeCounter(server.store)) === before.writes) {
          stats.unwritten++; // nothing written at all: the snapshot still holds
          prior = before;
        } else {
          const after = await snapshot(server.store);
          const changes = await refusalChanges(server.store, before, after);
          if (changes.length > 0)
            assert.fail(
              `${where()}: refused with ${res.status} (${res.text.trim().slice(0, 300)}) but the store changed: ${changes.join("; ")}`,
            );
          prior = after;
        }
      } else {
        prior = undefined;
      }
      lap("check");
      if (i % 50 === 0) stats.rssMax = Math.max(stats.rssMax, process.memoryUsage().rss);
    }
    gc();
    stats.heapEnd = process.memoryUsage().heapUsed;
    stats.rssMax = Math.max(stats.rssMax, process.memoryUsage().rss);
    return stats;
  }

  /** No error-level lines (a 5xx or a failed reply logs one); keeps the capture small on long runs. */
  function checkLogs(): void {
    const errors = server.logs.filter((l) => /"level":(50|60)/.test(l));
    assert.deepEqual(errors.slice(0, 3), [], `seed ${SEED}: error-level log lines`);
    server.logs.length = 0;
  }

  test("every malformed DigestResponse kind gets 200 with an empty AuthToken, never a login", async () => {
    const rng = new Rng(SEED);
    const first = await send({
      kind: "step 1",
      path: "/checkin",
      headers: { ...header(ids.main), "content-type": CHECKIN_TYPE },
      body: Buffer.from(plistText(checkin({ MessageType: "UserAuthenticate", ...userKeys(false) }))),
    });
    const nonce = challengeParams(parsePlistDict(first.body).DigestChallenge as string).nonce!;
    let n = 0;
    for (const response of malformedDigestResponses({ username: user.shortName, realm: REALM, nonce }, rng)) {
      const r = await send({
        kind: "digest",
        path: "/checkin",
        headers: { ...header(ids.main), "content-type": CHECKIN_TYPE },
        body: Buffer.from(plistText(checkin({ MessageType: "UserAuthenticate", ...userKeys(false), DigestResponse: response }))),
      });
      assert.ok(r.status === 200 || r.status === 400, `${JSON.stringify(response.slice(0, 80))}: ${r.status} ${r.text}`);
      if (r.status === 200) assert.equal(parsePlistDict(r.body).AuthToken, "", JSON.stringify(response.slice(0, 80)));
      n++;
    }
    assert.ok(n > 60);
    await maintain();
  });

  test(`seeded mutations, identities and digests: no 5xx, refusals change nothing`, { timeout: LONG ? Infinity : 120_000 }, async () => {
    const rng = new Rng(SEED ^ (backend === "postgres" ? 0x5bd1e995 : 0));
    const iterations = ITERATIONS ?? (LONG ? 0 : DEFAULT_ITERATIONS[backend]);
    const stats = await run(rng, { iterations, seconds: SECONDS });
    await sleep(1200); // deferred writes (last-seen) land, and nothing fails late
    checkLogs();
    assert.deepEqual(unhandled, [], `seed ${SEED}: unhandled rejections`);
    assert.equal((await fetch(server.url + "/healthz")).status, 200);
    await maintain();
    const mb = (n: number) => Math.round(n / 1048576);
    const statuses = [...stats.byStatus]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s}:${n}`)
      .join(" ");
    const kinds = [...stats.byKind].map(([k, n]) => `${k}:${n}`).join(" ");
    process.stdout.write(
      `# fuzz [${backend}] seed ${SEED}: ${stats.inputs} inputs; statuses ${statuses}; kinds ${kinds}; ${stats.unwritten} refusals wrote nothing at all; ` +
        `rss ${mb(stats.rssStart)}->${mb(stats.rssMax)} MB max; heap after warm-up ${mb(stats.heapAfterWarmup)} MB, at end ${mb(stats.heapEnd)} MB; ms ${JSON.stringify(Object.fromEntries(Object.entries(stats.ms).map(([k, v]) => [k, Math.round(v)])))}\n`,
    );
    // The run is time-boxed: on a loaded machine fewer inputs fit; require a floor, not a rate.
    assert.ok(stats.inputs >= Math.min(iterations || 50, 50), "enough inputs ran");
    assert.ok(
      [...stats.byStatus.keys()].some((s) => s === 200) && [...stats.byStatus.keys()].some((s) => s === 400),
      "both accepted and refused inputs",
    );
    // Memory: the heap after GC must not grow with the number of inputs.
    if (stats.heapAfterWarmup > 0)
      assert.ok(stats.heapEnd - stats.heapAfterWarmup < 64 * 1048576, `heap grew ${mb(stats.heapEnd - stats.heapAfterWarmup)} MB`);
    assert.ok(stats.rssMax - stats.rssStart < 512 * 1048576, `rss grew ${mb(stats.rssMax - stats.rssStart)} MB`);
  });

  test("malformed HTTP on a raw socket: a 4xx or a closed connection, never a 5xx, and the server lives", async () => {
    const { port } = new URL(server.url);
    const secret = "Basic c2VjcmV0LWluLWEtYmFkLXJlcXVlc3Q=";
    const cases = [
      "GARBAGE\r\n\r\n",
      "PUT /mdm HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "PUT /mdm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
      "PUT /mdm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "PUT /checkin HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\nContent-Length: 0\r\n\r\n",
      `PUT /mdm HTTP/1.1\r\nHost: x\r\nAuthorization: ${secret}\r\nBad Header Line\r\n\r\n`,
      "PUT /mdm HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "PUT /mdm HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "PUT /mdm HTTP/9.9\r\nHost: x\r\n\r\n",
      "PUT /mdm\r\n\r\n",
      `PUT /mdm HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(700 * 1024)}\r\n\r\n`,
      "PUT /checkin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nnope",
      "PUT /checkin HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n",
      "PUT /mdm HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\u00ff\u00fe\u0000",
    ];
    const before = await snapshot(server.store);
    for (const c of cases) {
      const reply = await new Promise<string>((resolve) => {
        const socket = net.connect(Number(port), "127.0.0.1");
        let got = "";
        socket.on("data", (d) => (got += d.toString("latin1")));
        socket.on("error", () => resolve(got));
        socket.on("close", () => resolve(got));
        socket.write(Buffer.from(c, "latin1"));
        setTimeout(() => socket.end(), 300);
      });
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
      assert.ok(status === 0 || (status >= 100 && status < 500), `${JSON.stringify(c.slice(0, 60))} answered ${reply.slice(0, 80)}`);
    }
    assert.deepEqual(await refusalChanges(server.store, before, await snapshot(server.store)), []);
    assert.ok(!server.logs.some((l) => l.includes("c2VjcmV0LWluLWEtYmFkLXJlcXVlc3Q")), "a malformed request's headers never reach the log");
    assert.ok(
      server.logs.some((l) => l.includes("malformed HTTP request")),
      "malformed requests are logged",
    );
    assert.equal((await fetch(server.url + "/healthz")).status, 200);
  });
});
