import assert from "node:assert/strict";
import { test } from "node:test";
import { OrchardError } from "../errors.ts";
import { timeParam } from "./time-param.ts";

test("RFC 3339 times are read to the millisecond, with their zone; a full-date is midnight UTC", () => {
  assert.equal(timeParam(undefined, "since"), undefined);
  for (const [value, iso] of [
    ["2026-12-03T12:00:00Z", "2026-12-03T12:00:00.000Z"],
    ["2026-12-03T12:00:00.123456Z", "2026-12-03T12:00:00.123Z"],
    ["2026-12-03t12:00z", "2026-12-03T12:00:00.000Z"],
    ["2026-12-03T12:00:00+02:30", "2026-12-03T09:30:00.000Z"],
    ["2026-12-03T00:30:00-01:00", "2026-12-03T01:30:00.000Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
    ["2026-12-03", "2026-12-03T00:00:00.000Z"],
    ["0050-01-01T00:00:00Z", "0050-01-01T00:00:00.000Z"],
  ]) {
    assert.equal(new Date(timeParam(value, "since")!).toISOString(), iso, value);
    // What Date.parse makes of them too (it reads these right).
    assert.equal(timeParam(value, "since"), Date.parse(value.toUpperCase()), value);
  }
});

test("a day or time that does not exist is refused naming the parameter, not rolled over as Date does", () => {
  for (const value of [
    "2026-02-30T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-04-31T10:00:00Z",
    "2026-02-30",
    "2026-01-01T24:00:00Z",
    "2026-01-01T23:59:60Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-01-01T10:00:00+24:00",
    "2026-01-01T10:00:00+02:60",
  ]) {
    assert.throws(
      () => timeParam(value, "until"),
      (e: unknown) =>
        e instanceof OrchardError &&
        e.status === 400 &&
        e.code === "invalid_parameter" &&
        e.message === `until must be an RFC 3339 time such as 2026-12-03T12:00:00Z: ${value} names a day or time that does not exist`,
      value,
    );
  }
});

test("what is not an RFC 3339 time is refused without echoing it", () => {
  for (const value of ["yesterday", "March 2, 2026", "2026-1-5", "2026-12-03T12:00:00", "2026-12-03 12:00:00Z", "1765000000", ""]) {
    assert.throws(
      () => timeParam(value, "since"),
      (e: unknown) => e instanceof OrchardError && e.message === "since must be an RFC 3339 time such as 2026-12-03T12:00:00Z",
      value,
    );
  }
});
