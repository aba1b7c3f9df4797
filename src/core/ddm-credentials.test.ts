// Credential templates: checked with a 400 naming the key, rendered per device, and the JSON Apple's schema describes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BadRequest } from "../errors.ts";
import {
  credentialVariables,
  MissingVariable,
  parseCredentialTemplate,
  renderCredential,
  scepCredentialDocument,
} from "./ddm-credentials.ts";

const TEMPLATE = {
  subject: [
    ["CN", "{{serial_number}}"],
    ["2.5.4.5", "{{udid}}"],
  ],
  subject_alt_names: { dns_name: "{{udid}}.example.test", rfc822_name: "it@example.test" },
};

test("a template gets its defaults and renders for a device; the JSON is Apple's com.apple.credential.scep", () => {
  const t = parseCredentialTemplate(TEMPLATE);
  assert.deepEqual(
    { key_size: t.key_size, key_usage: t.key_usage, ekus: t.extended_key_usages, days: t.days, ca: t.ca },
    { key_size: 2048, key_usage: 5, ekus: ["clientAuth"], days: 365, ca: "orchard" },
  );
  const r = renderCredential(t, { udid: "UDID-1", serial_number: "C02X" });
  assert.deepEqual(r.subject, [
    ["CN", "C02X"],
    ["2.5.4.5", "UDID-1"],
  ]);
  assert.deepEqual(r.extendedKeyUsages, ["1.3.6.1.5.5.7.3.2"]);
  assert.deepEqual(scepCredentialDocument(r, "https://mdm.example.test/scep/credential", "c0ffee"), {
    Type: "com.apple.credential.scep",
    Payload: {
      URL: "https://mdm.example.test/scep/credential",
      Challenge: "c0ffee",
      Subject: [[["CN", "C02X"]], [["2.5.4.5", "UDID-1"]]],
      Keysize: 2048,
      "Key Type": "RSA",
      "Key Usage": 5,
      SubjectAltName: { dNSName: "UDID-1.example.test", rfc822Name: "it@example.test" },
    },
  });
  assert.throws(() => renderCredential(t, { udid: "UDID-1", serial_number: null }), MissingVariable);
});

test("bad templates: a 400 naming the key", () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /a JSON object/],
    [{ ...TEMPLATE, extra: 1 }, /unknown key "extra"/],
    [{ ...TEMPLATE, subject: [] }, /subject: 1 to 16/],
    [{ ...TEMPLATE, subject: [["XX", "a"]] }, /attribute "XX"/],
    [{ ...TEMPLATE, subject: [["CN", "{{user}}"]] }, /unknown variable \{\{user\}\}/],
    [{ ...TEMPLATE, subject: [["CN", "a\u0000"]] }, /control character/],
    [{ ...TEMPLATE, subject_alt_names: { ip: "1.2.3.4" } }, /unknown key "ip"/],
    [{ ...TEMPLATE, key_size: 1024 }, /key_size/],
    [{ ...TEMPLATE, key_usage: 2 }, /key_usage/],
    [{ ...TEMPLATE, extended_key_usages: ["codeSigningMaybe"] }, /extended_key_usages/],
    [{ ...TEMPLATE, days: 0 }, /days/],
    [{ ...TEMPLATE, ca: "other" }, /ca: only "orchard"/],
  ];
  for (const [json, message] of cases) {
    assert.throws(
      () => parseCredentialTemplate(json),
      (err: unknown) => err instanceof BadRequest && err.code === "invalid_credential" && message.test(err.message),
      String(message),
    );
  }
});

test("a device fact the device itself claims is only letters, digits and '-': no wildcard, no other name, in its certificate", () => {
  const t = parseCredentialTemplate({ ...TEMPLATE, extended_key_usages: ["clientAuth", "serverAuth"] });
  // SerialNumber comes from the device's Authenticate: a device could claim "*" and get *.example.test.
  for (const serial of ["*", "a.b", "x@evil.test", "C02X\u0000", "C02X ", "a".repeat(65)]) {
    assert.throws(
      () => renderCredential(t, { udid: "UDID-1", serial_number: serial }),
      (err: unknown) => err instanceof MissingVariable && err.variable === "serial_number",
      JSON.stringify(serial),
    );
  }
  assert.throws(() => renderCredential(t, { udid: "*", serial_number: "C02X" }), MissingVariable);
  assert.equal(renderCredential(t, { udid: "0000FE00-1111", serial_number: "C02XK1ABJG5J" }).subject[0]![1], "C02XK1ABJG5J");
});

test("a serial number another enrolled device reported too is withheld, unless ADE binds it to this device's certificate", () => {
  const t = parseCredentialTemplate(TEMPLATE);
  const facts = { serialNumber: "C02XK1ABJG5J", serialBoundByAde: false, serialAlsoEnrolledAs: "OTHER-UDID" };
  assert.throws(
    () => renderCredential(t, credentialVariables("UDID-1", facts)),
    (err: unknown) => err instanceof MissingVariable && err.variable === "serial_number" && !err.message.includes("OTHER-UDID"),
  );
  const bound = renderCredential(t, credentialVariables("UDID-1", { ...facts, serialBoundByAde: true }));
  assert.equal(bound.subject[0]![1], "C02XK1ABJG5J");
  const alone = renderCredential(t, credentialVariables("UDID-1", { ...facts, serialAlsoEnrolledAs: undefined }));
  assert.equal(alone.subject[0]![1], "C02XK1ABJG5J");
  // A template naming only the UDID renders whatever the serial number.
  const byUdid = parseCredentialTemplate({ ...TEMPLATE, subject: [["CN", "{{udid}}"]], subject_alt_names: {} });
  assert.equal(renderCredential(byUdid, credentialVariables("UDID-1", facts)).subject[0]![1], "UDID-1");
});
