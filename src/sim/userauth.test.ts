import assert from "node:assert/strict";
import { test } from "node:test";
import { buildChallenge, computeHA1, parseDigestResponse, verifyDigestResponse } from "../digest/index.ts";
import { createCa, issueDeviceIdentity } from "../identity/testing/pki.ts";
import { parsePlistDict, serializePlist } from "../plist/index.ts";
import { SimDevice } from "./device.ts";
import { prepare, RecordingTransport } from "./prebuilt.ts";
import { SplicedRequest } from "./splice.ts";
import { AUTH_TOKEN_RE, DigestAnswerer, parseChallenge, plistStringReader, xmlText } from "./userauth.ts";

test("the RFC 2069-style vector (no qop)", () => {
  const a = new DigestAnswerer({ username: "Mufasa", password: "CircleOfLife", method: "GET", uri: "/dir/index.html" });
  const r = a.respond({ nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", realm: "testrealm@host.com" });
  assert.match(r, /,response="1949323746fe6a43ef61f9606e7febea"$/);
  assert.ok(
    r.startsWith('Digest username="Mufasa",realm="testrealm@host.com",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html"'),
  );
});

test("answers to Orchard's own challenges verify with src/digest, with and without qop", () => {
  for (const qop of [false, true]) {
    const challenge = buildChallenge({ nonce: "n0nce-" + String(qop), realm: "bench.realm", qop });
    const params = parseChallenge(challenge)!;
    assert.equal(params.realm, "bench.realm");
    const answer = new DigestAnswerer({ username: "net1", password: "secret" }).respond(params);
    const response = parseDigestResponse(answer);
    assert.equal(response.uri, "/");
    const ha1 = computeHA1("MD5", "net1", "bench.realm", "secret");
    assert.deepEqual(verifyDigestResponse({ response, ha1, methods: ["PUT"] }), { ok: true, method: "PUT" });
    assert.deepEqual(verifyDigestResponse({ response, ha1, methods: ["GET"] }), { ok: false });
    const wrong = parseDigestResponse(new DigestAnswerer({ username: "net1", password: "nope" }).respond(params));
    assert.deepEqual(verifyDigestResponse({ response: wrong, ha1, methods: ["PUT"] }), { ok: false });
  }
});

test("parseChallenge: bare and quoted values, spaces, not a digest", () => {
  assert.deepEqual(parseChallenge('Digest realm = "a b" , nonce=xyz,algorithm=MD5, qop="auth"'), {
    realm: "a b",
    nonce: "xyz",
    algorithm: "MD5",
    qop: "auth",
  });
  assert.equal(parseChallenge("Basic realm=x"), undefined);
  assert.equal(parseChallenge(""), undefined);
});

test("plistStringReader reads string values, empty ones, and entities", () => {
  const body = Buffer.from(serializePlist({ DigestChallenge: 'Digest nonce="a&b<c>",realm="r"', AuthToken: "", Count: 3 }));
  assert.equal(plistStringReader("DigestChallenge")(body), 'Digest nonce="a&b<c>",realm="r"');
  assert.equal(plistStringReader("AuthToken")(body), "");
  assert.equal(plistStringReader("AuthToken")(Buffer.from("<dict><key>AuthToken</key>\n\t<string/></dict>")), "");
  assert.equal(plistStringReader("Count")(body), undefined);
  assert.equal(plistStringReader("Missing")(body), undefined);
  assert.equal(plistStringReader("K")(Buffer.from("<key>K</key><string>&#x41;&#66;</string>")), "AB");
  assert.match("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", AUTH_TOKEN_RE);
  assert.doesNotMatch("", AUTH_TOKEN_RE);
});

test("SplicedRequest: any length in place of the placeholder, Content-Length kept right", async () => {
  const ca = await createCa({ commonName: "Splice CA" });
  const identity = await issueDeviceIdentity(ca, { commonName: "splice" });
  const transport = new RecordingTransport();
  const device = new SimDevice({ transport, identity, mode: { kind: "header", header: "x-client-cert" } });
  const recorded = await transport.record(() => device.checkin("UserAuthenticate", { UserID: "U1", DigestResponse: "@@PLACEHOLDER@@" }));
  const spliced = new SplicedRequest(prepare("127.0.0.1:1", recorded), "@@PLACEHOLDER@@");
  for (const value of [
    "",
    "short",
    'Digest username="u",realm="r",nonce="' + "n".repeat(300) + '", uri="/",response="x"',
    xmlText("a<b&c"),
  ]) {
    const p = spliced.prepared(value);
    const wire = p.wire.toString("utf8");
    const headEnd = wire.indexOf("\r\n\r\n");
    const length = Number(/\r\ncontent-length: (\d+)\r\n\r\n/.exec(wire)![1]);
    assert.equal(length, p.wire.length - headEnd - 4);
    assert.ok(wire.includes("\r\nx-client-cert: "));
    assert.deepEqual(p.options.body, p.wire.subarray(headEnd + 4));
    const dict = parsePlistDict(p.options.body!);
    assert.equal(dict.DigestResponse, value === xmlText("a<b&c") ? "a<b&c" : value);
    assert.equal(dict.MessageType, "UserAuthenticate");
  }
  assert.throws(() => new SplicedRequest(prepare("h", recorded), "absent"), /not found/);
});
