import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeStatusReport, kindOfType, MAX_STATUS_REPORT_BYTES, MAX_STATUS_VALUES, parseEndpoint } from "./ddm.ts";
import { canonicalJson, declarationsToken, serverToken, setToken, tokensResponse } from "./ddm-tokens.ts";

describe("DDM Endpoint", () => {
  test("the four endpoints; a declaration's kind and identifier", () => {
    assert.deepEqual(parseEndpoint("tokens"), { kind: "tokens" });
    assert.deepEqual(parseEndpoint("/declaration-items"), { kind: "declaration-items" });
    assert.deepEqual(parseEndpoint("status"), { kind: "status" });
    assert.deepEqual(parseEndpoint("declaration/asset/com.example.a:b"), {
      kind: "declaration",
      declarationKind: "asset",
      identifier: "com.example.a:b",
    });
  });

  test("anything else is a 400 naming it", () => {
    for (const [endpoint, reason] of [
      ["", /not a valid path/],
      ["tokens/", /not a valid path/],
      ["declaration/configuration/../x", /not a valid path/],
      ["declaration/./x/y", /not a valid path/],
      ["declaration/configuration", /unknown DeclarativeManagement Endpoint/],
      ["declaration/constructor/x", /no declaration kind "constructor"/],
      ["__proto__", /unknown DeclarativeManagement Endpoint/],
      ["tokens\u0000", /control character/],
      ["x".repeat(2000), /longer than/],
    ] as const) {
      assert.throws(
        () => parseEndpoint(endpoint),
        (err: Error & { status?: number }) => err.status === 400 && reason.test(err.message),
        endpoint,
      );
    }
  });

  test("a Type's kind", () => {
    assert.equal(kindOfType("com.apple.configuration.passcode.settings"), "configuration");
    assert.equal(kindOfType("com.apple.management.properties"), "management");
    assert.equal(kindOfType("com.apple.configuration."), undefined);
    assert.equal(kindOfType("com.example.configuration.x"), undefined);
  });
});

describe("DDM status report", () => {
  test("declarations from their arrays, values by path, root errors", () => {
    const r = decodeStatusReport(
      Buffer.from(
        JSON.stringify({
          StatusItems: {
            management: {
              declarations: { activations: [{ identifier: "a", active: true, valid: "valid", "server-token": "t" }], assets: [] },
              "client-capabilities": { "supported-versions": ["1.0.0"] },
            },
            device: { "operating-system": { version: "15.1", supplemental: {} }, "x-count": 3 },
          },
          Errors: [{ StatusItem: "test.error-value", Reasons: [] }],
          FullReport: true,
        }),
      ),
    );
    assert.equal(r.fullReport, true);
    assert.deepEqual(r.declarations, [
      { identifier: "a", kind: "activation", active: true, valid: "valid", serverToken: "t", reasons: null },
    ]);
    assert.deepEqual(r.values, [
      { path: "management.client-capabilities.supported-versions", value: ["1.0.0"] },
      { path: "device.operating-system.version", value: "15.1" },
      { path: "device.operating-system.supplemental", value: {} },
      { path: "device.x-count", value: 3 },
    ]);
    assert.deepEqual(r.errors, [{ statusItem: "test.error-value", error: { StatusItem: "test.error-value", Reasons: [] } }]);
  });

  test("refused whole: no Data, too large, not JSON, wrong shapes, too many values", () => {
    const bad = (data: Buffer | undefined, reason: RegExp, status = 400) =>
      assert.throws(
        () => decodeStatusReport(data),
        (err: Error & { status?: number }) => err.status === status && reason.test(err.message),
        String(reason),
      );
    bad(undefined, /without Data/);
    bad(Buffer.alloc(MAX_STATUS_REPORT_BYTES + 1, 0x20), /larger than/, 413);
    bad(Buffer.from("{"), /not JSON/);
    bad(Buffer.from('{"StatusItems":[]}'), /no StatusItems/);
    bad(Buffer.from('{"StatusItems":{},"Errors":{}}'), /Errors is not an array/);
    bad(Buffer.from('{"StatusItems":{},"Errors":[{}]}'), /Errors\[0\] has no StatusItem/);
    bad(Buffer.from('{"StatusItems":{},"FullReport":"yes"}'), /FullReport/);
    bad(
      Buffer.from(
        '{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"x","active":1,"valid":"valid","server-token":"t"}]}}}}',
      ),
      /active/,
    );
    const many = Object.fromEntries(Array.from({ length: MAX_STATUS_VALUES + 1 }, (_, i) => [`k${i}`, i]));
    bad(Buffer.from(JSON.stringify({ StatusItems: many })), /more than/);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    bad(Buffer.from(JSON.stringify({ StatusItems: deep })), /deeper/);
  });
});

describe("DDM tokens", () => {
  test("canonical JSON sorts keys at every depth; tokens follow content only", () => {
    assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: null }), '{"a":null,"b":[{"c":2,"d":1}]}');
    const d = { Type: "com.apple.configuration.x", Identifier: "i", Payload: { A: 1, B: 2 } };
    assert.equal(serverToken(d, 0), serverToken({ ...d, Payload: { B: 2, A: 1 } }, 0));
    assert.notEqual(serverToken(d, 0), serverToken({ ...d, Payload: { A: 1, B: 3 } }, 0));
    assert.notEqual(serverToken(d, 0), serverToken(d, 1));
    const items = [
      { identifier: "b", serverToken: "2" },
      { identifier: "a", serverToken: "1" },
    ];
    assert.equal(setToken(items), setToken([...items].reverse()));
    assert.equal(
      declarationsToken([
        { name: "x", token: "1" },
        { name: "y", token: "2" },
      ]),
      declarationsToken([
        { name: "y", token: "2" },
        { name: "x", token: "1" },
      ]),
    );
    assert.deepEqual(tokensResponse("t", Date.UTC(2026, 0, 2, 3, 4, 5, 678)), {
      SyncTokens: { DeclarationsToken: "t", Timestamp: "2026-01-02T03:04:05Z" },
    });
  });
});
