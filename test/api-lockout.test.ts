// The operator API's key guard under a guesser: wrong keys are throttled per
// address (and in all), the right key always passes, and X-Forwarded-For
// cannot choose whom is throttled (issue #11 item 7).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConfigError, parseServeArgs } from "../src/config.ts";
import { addressKey, ApiFailureLimiter, GLOBAL_BURST } from "../src/http/limits.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const basic = (credentials: string) => "Basic " + Buffer.from(credentials).toString("base64");

function apiCall(server: TestServer, authorization: string | null, forwardedFor?: string) {
  const headers: Record<string, string> = {};
  if (authorization !== null) headers.authorization = authorization;
  if (forwardedFor !== undefined) headers["x-forwarded-for"] = forwardedFor;
  return fetch(server.url + "/v1/enrollments", { headers });
}

describe("the API key under a guesser at the operator's address", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--api-max-failures", "3", "--api-failure-window", "5m"]);
  });
  after(async () => {
    await server.stop();
  });

  test("the right key works on every try while wrong keys from the same address get 429 past the limit", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 48; i++) {
      const wrong = await apiCall(server, basic(`x:wrong-key-${i}`));
      statuses.push(wrong.status);
      if (wrong.status === 429) assert.ok(Number(wrong.headers.get("retry-after")) >= 1);
      const admin = await apiCall(server, basic("admin:test-api-key-0123456789abcdef"));
      assert.equal(admin.status, 200, `the operator's call after wrong key ${i + 1}`);
    }
    assert.deepEqual(statuses.slice(0, 3), [401, 401, 401]);
    assert.ok(
      statuses.slice(3).every((s) => s === 429),
      statuses.join(","),
    );
    const limited = await apiCall(server, basic("x:one-more"));
    assert.match((await limited.json()).error, /too many failed API key attempts/);
    // A log line at most once a second, with the count, not one per refused guess.
    const refusals = server.logs.filter((l) => l.includes("too many failed API key attempts"));
    assert.ok(refusals.length >= 1 && refusals.length < 10, `${refusals.length} lines for 46 refusals`);
    const counted = refusals.reduce((n, l) => n + (JSON.parse(l) as { refused: number }).refused, 0);
    assert.ok(counted >= 1 && counted <= 46, String(counted));
  });

  test("an API key or enrollment token shorter than 24 characters is refused at start: its length is what stops guessing", () => {
    for (const flag of ["--api-key", "--enrollment-token"]) {
      assert.throws(
        () => parseServeArgs([flag, "abc"], {}),
        (err: Error) => err instanceof ConfigError && new RegExp(`${flag} must be at least 24 characters`).test(err.message),
      );
      assert.doesNotThrow(() => parseServeArgs([flag, "0123456789abcdef01234567"], {}));
    }
    assert.throws(() => parseServeArgs([], { ORCHARD_API_KEY: "short-key" }), ConfigError);
  });

  test("a request without a key is 401 with the Basic challenge, throttled or not: it guesses nothing", async () => {
    const res = await apiCall(server, null);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Basic/);
  });

  test("Basic credentials without ':' or not base64 are 400 with a reason, never taken as the key", async () => {
    const noColon = await apiCall(server, basic("test-api-key-0123456789abcdef"));
    assert.equal(noColon.status, 400);
    assert.match((await noColon.json()).error, /expected user:password/);
    const notBase64 = await apiCall(server, "Basic ***not-base64***");
    assert.equal(notBase64.status, 400);
    assert.match((await notBase64.json()).error, /not base64/);
    const notUtf8 = await apiCall(server, "Basic " + Buffer.from([0x78, 0x3a, 0xff, 0xfe]).toString("base64"));
    assert.equal(notUtf8.status, 400);
    assert.match((await notUtf8.json()).error, /not UTF-8/);
    assert.equal(
      (await apiCall(server, "basic " + Buffer.from(":test-api-key-0123456789abcdef").toString("base64"))).status,
      200,
      "scheme in any case, empty user",
    );
  });
});

describe("behind a proxy: the client address is the right-most untrusted hop", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--api-max-failures", "2", "--trust-proxy", "127.0.0.1"]);
  });
  after(async () => {
    await server.stop();
  });

  test("an attacker naming the victim in X-Forwarded-For is throttled itself; the victim is not", async () => {
    // The proxy appends the address it saw to what the client sent ($proxy_add_x_forwarded_for).
    const attacker = "203.0.113.9, 198.51.100.66";
    for (let i = 0; i < 2; i++) assert.equal((await apiCall(server, basic("x:wrong"), attacker)).status, 401);
    for (let i = 0; i < 5; i++) assert.equal((await apiCall(server, basic("x:wrong"), attacker)).status, 429);
    assert.equal((await apiCall(server, basic("x:typo"), "203.0.113.9")).status, 401, "the victim's own wrong key is still heard");
    assert.equal((await apiCall(server, basic("x:test-api-key-0123456789abcdef"), "203.0.113.9")).status, 200);
    assert.equal(
      (await apiCall(server, basic("x:test-api-key-0123456789abcdef"), attacker)).status,
      200,
      "the right key passes at the throttled address",
    );
  });

  test("IPv6 clients count per /64", async () => {
    for (let i = 0; i < 2; i++) assert.equal((await apiCall(server, basic("x:wrong"), `2001:db8:1:2::${i + 1}`)).status, 401);
    assert.equal((await apiCall(server, basic("x:wrong"), "2001:db8:1:2:ffff::9")).status, 429);
    assert.equal((await apiCall(server, basic("x:wrong"), "2001:db8:1:3::1")).status, 401);
  });
});

describe("X-Forwarded-For from a peer that is not a trusted proxy is ignored", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--api-max-failures", "2", "--trust-proxy", "192.0.2.1"]);
  });
  after(async () => {
    await server.stop();
  });

  test("wrong keys from 127.0.0.1 count against 127.0.0.1 whatever X-Forwarded-For says", async () => {
    assert.equal((await apiCall(server, basic("x:wrong"), "203.0.113.1")).status, 401);
    assert.equal((await apiCall(server, basic("x:wrong"), "203.0.113.2")).status, 401);
    assert.equal((await apiCall(server, basic("x:wrong"), "203.0.113.3")).status, 429);
  });
});

describe("--trust-proxy", () => {
  test("true is refused with a reason that says to name the proxies, as flag and as ORCHARD_TRUST_PROXY", () => {
    for (const value of ["true", "1", "yes"]) {
      assert.throws(
        () => parseServeArgs(["--trust-proxy", value], {}),
        (err: Error) => err instanceof ConfigError && /name your proxies/.test(err.message),
      );
    }
    assert.throws(() => parseServeArgs([], { ORCHARD_TRUST_PROXY: "true" }), ConfigError);
  });

  test("addresses and CIDR ranges are checked; false is off", () => {
    assert.deepEqual(parseServeArgs(["--trust-proxy", "127.0.0.1, 10.0.0.0/8,::1"], {}).trustProxy, ["127.0.0.1", "10.0.0.0/8", "::1"]);
    assert.equal(parseServeArgs(["--trust-proxy", "false"], {}).trustProxy, false);
    for (const bad of ["10.0.0.0/33", "::1/129", "999.1.1.1", "10.0.0.0/8/1", "proxy.example"]) {
      assert.throws(() => parseServeArgs(["--trust-proxy", bad], {}), ConfigError, bad);
    }
  });
});

describe("ApiFailureLimiter", () => {
  test("all addresses together get GLOBAL_BURST x max failures, then one address's pace", () => {
    const limiter = new ApiFailureLimiter(5, 60_000);
    const t0 = 1_000_000;
    let n = 0;
    for (let a = 0; limiter.blockedFor(`198.51.100.${a}`, t0) === 0; a++) {
      for (let i = 0; i < 5 && limiter.blockedFor(`198.51.100.${a}`, t0) === 0; i++, n++) limiter.fail(`198.51.100.${a}`, t0);
    }
    assert.equal(n, GLOBAL_BURST * 5);
    assert.ok(limiter.blockedFor("203.0.113.1", t0) > 0, "a fresh address is throttled too");
    assert.equal(limiter.blockedFor("203.0.113.1", t0 + 12_000), 0, "one failure's worth refills in window / max");
    limiter.fail("203.0.113.1", t0 + 12_000);
    assert.ok(limiter.blockedFor("203.0.113.2", t0 + 12_000) > 0);
  });

  test("per address: a fixed window from the first failure; the map stays bounded", () => {
    const limiter = new ApiFailureLimiter(2, 1000, 3);
    limiter.fail("a", 0);
    limiter.fail("a", 10);
    assert.equal(limiter.blockedFor("a", 500), 1);
    assert.equal(limiter.blockedFor("a", 1000), 0);
    for (const a of ["b", "c", "d", "e"]) limiter.fail(a, 2000);
    assert.ok((limiter as unknown as { failures: Map<string, unknown> }).failures.size <= 3);
  });

  test("addressKey: IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64", () => {
    assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("2001:db8:0:1::5"), "2001:db8:0:1::/64");
    assert.equal(addressKey("2001:0db8:0000:0001:aaaa:bbbb:cccc:dddd"), "2001:db8:0:1::/64");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("not an address"), "not an address");
  });
});
