import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { readFeed } from "./feed-source.ts";

// A mirror that asks for a user and password: fetch refuses a URL holding them, and its refusal quoted the
// whole URL, password included, into the log line, the update.feed_failed event and the API (walkthrough).
test("a mirror's user and password in the URL go as Basic authentication; no error says them", async () => {
  const seen: Array<string | undefined> = [];
  const mirror = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    if (req.headers.authorization !== `Basic ${Buffer.from("mirror:S3cret pw").toString("base64")}`) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end('{"PublicAssetSets":{}}');
  });
  await new Promise<void>((resolve) => mirror.listen(0, "127.0.0.1", resolve));
  const port = (mirror.address() as AddressInfo).port;
  try {
    assert.equal(await readFeed(`http://mirror:S3cret%20pw@127.0.0.1:${port}/pmv.json`), '{"PublicAssetSets":{}}');
    assert.equal(seen.length, 1);
    await assert.rejects(readFeed(`http://mirror:wrong@127.0.0.1:${port}/pmv.json`), /^Error: HTTP 401$/);
    // A % that starts no escape is taken as typed (decoding it threw, outside the refusal's words: review).
    await assert.rejects(readFeed(`http://mirror:50%off@127.0.0.1:${port}/pmv.json`), /^Error: HTTP 401$/);
    assert.equal(seen.at(-1), `Basic ${Buffer.from("mirror:50%off").toString("base64")}`);
  } finally {
    await new Promise((resolve) => mirror.close(resolve));
  }
  // Nothing listens there now: the refusal names the reason, not the password or the query's token.
  const err = await readFeed(`http://mirror:S3cret@127.0.0.1:${port}/pmv.json?token=T0ken`).catch((e: Error) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, /^cannot reach it: /);
  assert.doesNotMatch(err.message, /S3cret|T0ken/);
});
