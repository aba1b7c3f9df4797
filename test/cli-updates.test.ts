// `orchard updates`: the CLI over the OS update API, against a real server
// reading the made-up feed fixture.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext } from "./support/cli.ts";
import { testFleet } from "./support/fleet.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server?.stop());

async function orchard(...args: string[]) {
  const ctx = cliContext(server.url);
  const code = await runWith(ctx, "updates", args);
  return { code, out: ctx.stdout, err: ctx.stderr };
}

test("a policy put, shown and listed; the feed read and its releases", async () => {
  const put = await orchard("policy", "put", "every-mac", "--platform", "macOS", "--latest", "--deadline-days", "7");
  assert.equal(put.code, 0, put.err);
  assert.match(put.out, /^created update policy every-mac: 0 devices/);
  const show = await orchard("policy", "show", "every-mac");
  assert.match(show.out, /target:\s+latest/);
  assert.match(show.out, /7 days after release, 19:00:00/);
  assert.match((await orchard("policies")).out, /every-mac\s+macOS\s+all\s+latest/);
  const feed = await orchard("feed");
  assert.match(feed.out, /releases:\s+iOS 4, macOS 4, visionOS 1/);
  const releases = await orchard("releases", "--platform", "macOS");
  assert.match(releases.out, /macOS\s+15\.2\s+24C101\s+2024-12-11/);
  const refresh = await orchard("feed", "refresh");
  assert.equal(refresh.code, 0, refresh.err);
  assert.match(refresh.out, /no change/);
  const compliance = await orchard("compliance", "every-mac", "--json");
  assert.equal(JSON.parse(compliance.out).total, 0);
});

test("mistakes: usage errors exit 2, refused input exits 1 with the server's reason", async () => {
  assert.equal((await orchard("policy", "put", "x", "--platform", "macOS")).code, 2);
  assert.equal((await orchard("policy", "put", "x", "--platform", "macOS", "--latest", "--version", "15.2")).code, 2);
  const bad = await orchard("policy", "put", "x", "--platform", "macOS", "--version", "15.2", "--deadline", "tomorrow");
  assert.equal(bad.code, 1);
  assert.match(bad.err, /target_local_date_time/);
  const missing = await orchard("policy", "show", "nope");
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no update policy nope/);
});

test("settings keys Apple's schema does not know are saved and printed as warnings", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-cli-updates-"));
  try {
    const file = path.join(dir, "settings.json");
    fs.writeFileSync(file, JSON.stringify({ Deferals: { MajorPeriodInDays: 30 }, Foo: 1 }));
    const put = await orchard("policy", "put", "misspelt", "--platform", "iOS", "--latest", "--deadline-days", "7", "--settings", file);
    assert.equal(put.code, 0, put.err);
    assert.match(put.out, /^created update policy misspelt/);
    assert.deepEqual(put.err.split("\n").filter(Boolean), [
      "orchard: warning: settings.Deferals: unknown key, not in the schema of com.apple.configuration.softwareupdate.settings",
      "orchard: warning: settings.Foo: unknown key, not in the schema of com.apple.configuration.softwareupdate.settings",
    ]);
    const json = await orchard(
      "policy",
      "put",
      "misspelt",
      "--platform",
      "iOS",
      "--latest",
      "--deadline-days",
      "7",
      "--settings",
      file,
      "--json",
    );
    assert.equal(json.code, 0, json.err);
    assert.match(json.err, /warning: settings\.Foo/, "said with --json too, on stderr");
    assert.deepEqual(JSON.parse(json.out).policy.settings, { Deferals: { MajorPeriodInDays: 30 }, Foo: 1 });
    assert.equal((await orchard("policy", "remove", "misspelt")).code, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("policy put counts the policy's own devices, warns of a set no device holds and of a deadline past; policy show lists the ids", async () => {
  const fleet = await testFleet(server.url);
  try {
    const mac = await fleet.device({ platform: "macOS" });
    await mac.enroll();
    const all = await orchard("policy", "put", "all-macs", "--platform", "macOS", "--version", "15.2", "--deadline", "2099-01-09T19:00:00");
    assert.equal(all.code, 0, all.err);
    assert.match(all.out, /^created update policy all-macs: 1 device \(\d with a target\); all policies: 1 device,/);

    const pilot = ["policy", "put", "pilot-macs", "--platform", "macOS", "--version", "15.3"];
    const ids = await orchard(...pilot, "--deadline", "2099-01-09T19:00:00", "--ids", "UDID1,UDID2");
    assert.equal(ids.code, 0, ids.err);
    assert.match(ids.out, /^created update policy pilot-macs: 0 devices \(0 with a target\); all policies: 1 device,/);
    assert.equal(
      ids.err,
      "orchard: warning: enrollments.ids: 2 listed ids are no enrolled macOS device channel: kept, reaching nothing until one enrolls\n",
    );
    const show = await orchard("policy", "show", "pilot-macs");
    assert.match(show.out, /devices:\s+2 listed\n/);
    assert.match(show.out, /ids:\s+UDID1, UDID2\n/);
    assert.deepEqual(JSON.parse((await orchard("policy", "show", "pilot-macs", "--json")).out).listed_ids, ["UDID1", "UDID2"]);

    const set = await orchard(...pilot, "--deadline", "2099-01-09T19:00:00", "--set", "nosuchset");
    assert.equal(set.code, 0, set.err);
    assert.equal(
      set.err,
      'orchard: warning: enrollments.set "nosuchset": no such DDM set (no declarations, no device holds it): the policy reaches no device\n',
    );
    assert.match((await orchard("policy", "show", "pilot-macs")).out, /ids:\s+-\n/);

    const past = await orchard(...pilot, "--deadline", "2026-01-09T19:00:00", "--ids", mac.udid);
    assert.equal(past.code, 0, past.err);
    assert.match(past.out, /^replaced update policy pilot-macs: 1 device /);
    assert.equal(
      past.err,
      'orchard: warning: target_local_date_time "2026-01-09T19:00:00": this deadline has passed in every time zone: the policy\'s devices not on its target are overdue at once\n',
    );
    for (const name of ["pilot-macs", "all-macs"]) {
      const removed = await orchard("policy", "remove", name);
      assert.match(removed.out, new RegExp(`^removed update policy ${name}; all policies: `));
    }
  } finally {
    fleet.close();
  }
});
