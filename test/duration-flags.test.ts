// Durations as serve flags take them: a number needs its unit, 0 alone
// excepted. `--event-retention 90`, read as 90 seconds beside a default
// written 90d, deleted a whole audit log at the first sweep.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseServeArgs } from "../src/config.ts";
import { durationMs } from "../src/duration.ts";

test("a duration is a number with its unit; 0 alone needs none", () => {
  assert.equal(durationMs("90d"), 90 * 86_400_000);
  assert.equal(durationMs("1.5h"), 5_400_000);
  assert.equal(durationMs("250ms"), 250);
  assert.equal(durationMs(" 300s "), 300_000);
  assert.equal(durationMs("0"), 0);
  assert.equal(durationMs("0s"), 0);
  for (const bad of ["90", "1.5", "", "d", "90 d", "-1s", "5w"]) assert.equal(durationMs(bad), undefined, bad);
});

test("a retention, an interval or a timeout given as a bare number is refused, saying why", () => {
  for (const flag of ["--event-retention", "--audit-retention", "--result-retention", "--session-idle-timeout", "--digest-nonce-ttl"]) {
    assert.throws(
      () => parseServeArgs([flag, "90"], {}),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `${flag} 90: expected a duration such as 300s, 5m, 1h or 90d (with its unit: a bare number could be seconds or days)`,
      flag,
    );
  }
  const set = parseServeArgs(["--event-retention", "90d", "--audit-retention", "365d", "--ade-sync-interval", "0"], {});
  assert.equal(set.eventRetentionMs, 90 * 86_400_000);
  assert.equal(set.operators.auditRetentionMs, 365 * 86_400_000);
  assert.equal(set.ade.syncIntervalMs, 0, "0 turns the ABM sync schedule off, as before");
});
