// The device transport's flags (src/http/ holds the limits; config.ts, above
// it, parses them): --max-connections and --unidentified-body-budget.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseServeArgs } from "../src/config.ts";

test("--max-connections and --unidentified-body-budget: flags, environment, defaults", () => {
  const base = parseServeArgs([], {});
  assert.equal(base.limits.maxConnections, undefined);
  assert.equal(base.limits.unidentifiedBodyBudget, 64 * 1024 * 1024);
  const set = parseServeArgs(["--max-connections", "500", "--unidentified-body-budget", "8mb"], {});
  assert.equal(set.limits.maxConnections, 500);
  assert.equal(set.limits.unidentifiedBodyBudget, 8 * 1024 * 1024);
  const env = parseServeArgs([], { ORCHARD_MAX_CONNECTIONS: "42", ORCHARD_UNIDENTIFIED_BODY_BUDGET: "1mb" });
  assert.equal(env.limits.maxConnections, 42);
  assert.equal(env.limits.unidentifiedBodyBudget, 1024 * 1024);
  assert.throws(() => parseServeArgs(["--max-connections", "0"], {}), ConfigError);
  assert.throws(() => parseServeArgs(["--max-connections", "many"], {}), ConfigError);
  assert.throws(() => parseServeArgs(["--unidentified-body-budget", "0"], {}), ConfigError);
});
