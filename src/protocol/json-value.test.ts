import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalJson } from "./ddm-tokens.ts";
import { checkJsonValue, MAX_JSON_DEPTH } from "./json-value.ts";

const nested = (levels: number, inner: unknown = 1): unknown => {
  let v = inner;
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
};

test("checkJsonValue: MAX_JSON_DEPTH levels of objects and arrays pass, one more is a 400; no recursion", () => {
  assert.doesNotThrow(() => checkJsonValue(nested(MAX_JSON_DEPTH), "x"));
  assert.throws(() => checkJsonValue(nested(MAX_JSON_DEPTH + 1), "x"), { status: 400, message: /x nests deeper than 32 levels/ });
  const deep = JSON.parse(`${"[".repeat(200_000)}${"]".repeat(200_000)}`);
  assert.doesNotThrow(() => checkJsonValue(deep, "x", 1_000_000), "an explicit stack, not the call stack");
  assert.throws(() => checkJsonValue(deep, "x"), { status: 400 });
});

test("checkJsonValue: NUL and lone surrogates in keys and strings are a 400; paired surrogates pass", () => {
  for (const bad of [{ "a\u0000": 1 }, ["a\u0000"], { a: "\ud800" }, { "\udc00": 1 }, "x\u0000"]) {
    assert.throws(() => checkJsonValue(bad, "v", undefined, "invalid_declaration"), { status: 400, code: "invalid_declaration" });
  }
  assert.doesNotThrow(() => checkJsonValue({ "😀": ["😀", 1, null, true] }, "v"));
});

test("canonicalJson keeps its recursion bounded whatever the caller", () => {
  assert.equal(canonicalJson(nested(4)), '{"a":[{"a":[1]}]}');
  assert.throws(() => canonicalJson(nested(MAX_JSON_DEPTH + 1)), { status: 400 });
});
