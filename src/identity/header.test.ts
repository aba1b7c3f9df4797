import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { certFromHeader, certFingerprint, IdentityError, MAX_CERT_HEADER_LENGTH } from "./index.ts";
import { createCa, escapedPemHeader, issueDeviceIdentity, rfc9440Header, type DeviceIdentity } from "./testing/pki.ts";

let device: DeviceIdentity;

before(async () => {
  const ca = await createCa({ commonName: "Header Test CA", keyAlgorithm: "ECDSA" });
  device = await issueDeviceIdentity(ca, { commonName: "header-device" });
});

function badHeader(value: string): void {
  assert.throws(
    () => certFromHeader(value),
    (err: unknown) => {
      assert.ok(err instanceof IdentityError, `expected IdentityError, got ${String(err)}`);
      assert.equal(err.reason, "bad-header");
      return true;
    },
  );
}

test("nginx $ssl_client_escaped_cert (URL-escaped PEM)", () => {
  const escaped = escapedPemHeader(device.certPem);
  assert.ok(escaped.startsWith("-----BEGIN%20CERTIFICATE-----%0AMII"), escaped.slice(0, 40));
  assert.equal(certFingerprint(certFromHeader(escaped)), device.fingerprint);
  // nginx may leave + / = unescaped; '+' must stay '+', not become a space.
  const loose = escaped.replace(/%2B/g, "+").replace(/%2F/g, "/").replace(/%3D/g, "=");
  assert.ok(loose.includes("+") || loose.includes("/"));
  assert.equal(certFingerprint(certFromHeader(loose)), device.fingerprint);
});

test("RFC 9440 :base64-DER: form", () => {
  const value = rfc9440Header(device.certDer);
  assert.match(value, /^:MII[A-Za-z0-9+/=]+:$/);
  assert.equal(certFingerprint(certFromHeader(value)), device.fingerprint);
});

test("plain PEM, with CRLF line ends too", () => {
  assert.equal(certFingerprint(certFromHeader(device.certPem)), device.fingerprint);
  assert.equal(certFingerprint(certFromHeader(device.certPem.replace(/\n/g, "\r\n"))), device.fingerprint);
});

test("a repeated header is parsed once", () => {
  const value = rfc9440Header(device.certDer);
  assert.equal(certFromHeader(value), certFromHeader(value));
});

test("a header that ends like a cached one is read on its own", async () => {
  const other = await issueDeviceIdentity(await createCa({ commonName: "Other CA", keyAlgorithm: "ECDSA" }), { commonName: "other" });
  const value = rfc9440Header(device.certDer);
  assert.equal(certFingerprint(certFromHeader(value)), device.fingerprint);
  // The same last characters, another certificate before them: the cached one must not be returned.
  const tail = value.slice(-100);
  const otherValue = rfc9440Header(other.certDer);
  badHeader(`:AAAA${tail}`);
  assert.equal(certFingerprint(certFromHeader(otherValue)), other.fingerprint);
  assert.equal(certFingerprint(certFromHeader(value)), device.fingerprint);
});

test("garbage is refused as bad-header", () => {
  const b64 = device.certDer.toString("base64");
  badHeader("");
  badHeader("hello");
  badHeader("::");
  badHeader(":not base64!:");
  badHeader(`:${randomBytes(300).toString("base64")}:`);
  badHeader(`:${b64.slice(0, 200)}:`); // truncated DER
  badHeader("-----BEGIN%20CERTIFICATE-----%0A%E0%A4%A"); // broken escape
  badHeader(escapedPemHeader(`-----BEGIN CERTIFICATE-----\n${randomBytes(300).toString("base64")}\n-----END CERTIFICATE-----\n`));
  badHeader("-----BEGIN CERTIFICATE-----\nMIIB\n"); // no END line
  badHeader(b64); // bare base64 is not one of the accepted forms
  badHeader(":" + "A".repeat(MAX_CERT_HEADER_LENGTH) + ":");
});
