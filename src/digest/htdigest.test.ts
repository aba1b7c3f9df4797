import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { computeHA1, formatHtdigestLine, parseHtdigest } from "./index.ts";

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

test("formatHtdigestLine matches MD5(user:realm:password) and round trips", () => {
  const line = formatHtdigestLine("user", "realm", "password");
  assert.equal(line, "user:realm:ebbc0ff9a121dbb6789bbe5f82174fa0");
  assert.equal(md5("user:realm:password"), "ebbc0ff9a121dbb6789bbe5f82174fa0");
  const net1 = formatHtdigestLine("net1", "fusion.home", "secret");
  const parsed = parseHtdigest(`${line}\n${net1}\n`);
  assert.deepEqual(parsed.errors, []);
  assert.deepEqual(parsed.entries, [
    { line: 1, username: "user", realm: "realm", ha1: md5("user:realm:password") },
    { line: 2, username: "net1", realm: "fusion.home", ha1: computeHA1("MD5", "net1", "fusion.home", "secret") },
  ]);
});

test("comments, blank lines, CRLF, BOM and uppercase hex", () => {
  const ha1 = md5("net1:fusion.home:secret");
  const text = `\uFEFF# Orchard network users\r\n\r\n   \n  # indented comment\nnet1:fusion.home:${ha1.toUpperCase()}  \r\n`;
  assert.deepEqual(parseHtdigest(text), { entries: [{ line: 5, username: "net1", realm: "fusion.home", ha1 }], errors: [] });
});

test("malformed lines are reported by number without content", () => {
  const good = formatHtdigestLine("ok", "r", "p");
  const text = [
    good, // 1
    "justone", // 2
    "a:b", // 3
    "a:b:c:d", // 4
    ":r:" + md5("x"), // 5
    "u::" + md5("x"), // 6
    "u:r:" + md5("x").slice(1), // 7
    "u:r:" + "g".repeat(32), // 8
    "u\u0001:r:" + md5("x"), // 9
    formatHtdigestLine("ok", "r", "other"), // 10: duplicate user+realm
    formatHtdigestLine("ok", "r2", "p"), // 11: same user, other realm is fine
  ].join("\n");
  const { entries, errors } = parseHtdigest(text);
  assert.deepEqual(errors, [
    { line: 2, reason: "field-count" },
    { line: 3, reason: "field-count" },
    { line: 4, reason: "field-count" },
    { line: 5, reason: "empty-username" },
    { line: 6, reason: "empty-realm" },
    { line: 7, reason: "bad-ha1" },
    { line: 8, reason: "bad-ha1" },
    { line: 9, reason: "bad-char" },
    { line: 10, reason: "duplicate" },
  ]);
  assert.deepEqual(
    entries.map((e) => [e.username, e.realm, e.ha1]),
    [
      ["ok", "r", md5("ok:r:p")],
      ["ok", "r2", md5("ok:r2:p")],
    ],
  );
  assert.ok(!JSON.stringify(errors).includes("justone"));
});

test("formatHtdigestLine refuses fields htdigest cannot hold", () => {
  assert.throws(() => formatHtdigestLine("a:b", "r", "p"), TypeError);
  assert.throws(() => formatHtdigestLine("a", "r:x", "p"), TypeError);
  assert.throws(() => formatHtdigestLine("", "r", "p"), TypeError);
  assert.throws(() => formatHtdigestLine("a\nb", "r", "p"), TypeError);
});
