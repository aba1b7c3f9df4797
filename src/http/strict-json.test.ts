import assert from "node:assert/strict";
import { test } from "node:test";
import { DuplicateKey, firstDuplicateKey, jsonSyntaxDetail, parseStrictJson } from "./strict-json.ts";

test("duplicate keys are found at any depth, after unescaping", () => {
  const cases: Array<[string, string]> = [
    ['{"a":1,"a":2}', "a"],
    ['{"a":1,"b":{"c":1},"a":2}', "a"],
    ['[{"x":[1,{"k":"v","k":"w"}]}]', "k"],
    ['{"a":{},"b":[],"a":0}', "a"],
    ['{"st\\u0061te":1,"state":2}', "state"],
    ['{"q\\"":1,"q\\"":2}', 'q"'],
    ['{"":1,"":2}', ""],
    [' { "a" : 1 , "a" : 1 } ', "a"],
  ];
  for (const [text, key] of cases) {
    assert.equal(firstDuplicateKey(text), key, text);
    assert.throws(
      () => parseStrictJson(text),
      (err: unknown) => err instanceof DuplicateKey && err.key === key,
    );
  }
});

test("equal keys in different objects, and key-like strings, are not duplicates", () => {
  for (const text of [
    '{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}',
    '{"a":"\\"a\\":1","b":"a"}',
    '[{}, {"a":1}, "a", {"a":2}]',
    '{"a":[],"b":{},"c":{"d":{}},"e":1}',
    '{"a\\\\":1,"a":2}',
    '"just a string"',
    "[1,2,3]",
    "{}",
  ]) {
    assert.equal(firstDuplicateKey(text), undefined, text);
    assert.deepEqual(parseStrictJson(text), JSON.parse(text));
  }
});

test("text that is not JSON is JSON.parse's SyntaxError", () => {
  assert.throws(() => parseStrictJson('{"a":1,"a"'), SyntaxError);
  assert.throws(() => parseStrictJson(""), SyntaxError);
});

test("what is wrong with text that is not JSON: V8's words and the line and column, never the text", () => {
  const detail = (text: string) => {
    try {
      JSON.parse(text);
    } catch (err) {
      return jsonSyntaxDetail(err, text);
    }
    throw new Error(`${text} parsed`);
  };
  assert.equal(detail('{"a":1,}'), "expected double-quoted property name at line 1, column 8");
  assert.equal(detail('{"a":1,\r\n "b":2,\r\n}'), "expected double-quoted property name at line 3, column 1");
  assert.equal(detail('{"a":"x"}}'), "unexpected non-whitespace character after JSON at line 1, column 10");
  assert.equal(detail('{"a":"x'), "unterminated string at line 1, column 8");
  assert.equal(detail("[1,"), "it ends before the JSON is complete");
  // V8 quotes the text in these: nothing of it is repeated.
  assert.equal(detail('{"password":secret}'), undefined);
  assert.equal(detail("secret"), undefined);
  assert.equal(jsonSyntaxDetail(new Error("not a SyntaxError"), "x"), undefined);
});
