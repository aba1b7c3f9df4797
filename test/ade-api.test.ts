// The ADE API end to end: a real server pointed at the Apple API stand-in
// (--ade-url), driven over HTTP as an operator would; every answer checked
// against the OpenAPI document.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { SCHEMA_SOURCE } from "../src/declarations/index.ts";
import { OPENAPI } from "../src/http/openapi.ts";
import { splitWarnings } from "../src/http/warning-header.ts";
import { runWith } from "../src/cli/client-commands.ts";
import { AdeStandin } from "./support/ade-standin.ts";
import { cliContext } from "./support/cli.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };
const doc = OPENAPI as unknown as Doc;
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: "orchard", components: OPENAPI.components });

function documented(method: string, route: string, r: { status: number; json: unknown; text: string }): void {
  const response = doc.paths[route]?.[method.toLowerCase()]?.responses[String(r.status)];
  assert.ok(response, `${method} ${route} answered ${r.status}, not documented: ${r.text}`);
  const schema = response.content?.["application/json"]?.schema;
  assert.ok(schema, `${method} ${route} ${r.status} has no JSON schema`);
  const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"orchard#/components/')));
  assert.ok(validate(r.json), `${method} ${route} ${r.status}: ${ajv.errorsText(validate.errors)}\n${r.text}`);
}

await forEachBackend("the ADE API", (backend) => {
  let server: TestServer;
  let standin: AdeStandin;
  before(async () => {
    standin = await new AdeStandin().start();
    server = await startTestServer(
      ["--ade-url", standin.url, "--ade-sync-interval", "0", "--public-url", "https://mdm.example.org"],
      backend,
    );
  });
  after(async () => {
    await server.stop();
    await standin.stop();
  });

  test("add a server, upload its token, define a default profile, sync, list devices, assign; errors documented", async () => {
    const added = await server.api("PUT", "/v1/ade/servers/main", { common_name: "Orchard test" });
    assert.equal(added.status, 201, added.text);
    documented("PUT", "/v1/ade/servers/{name}", added);
    const dup = await server.api("PUT", "/v1/ade/servers/main", {});
    assert.equal(dup.status, 409);
    documented("PUT", "/v1/ade/servers/{name}", dup);

    const noToken = await server.api("POST", "/v1/ade/servers/main/sync");
    assert.equal(noToken.json.code, "ade_no_token");
    documented("POST", "/v1/ade/servers/{name}/sync", noToken);

    const bad = await server.api("PUT", "/v1/ade/servers/main/token", "not a token");
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_ade_token");
    documented("PUT", "/v1/ade/servers/{name}/token", bad);
    const uploaded = await server.api("PUT", "/v1/ade/servers/main/token", standin.issueToken(added.json.certificate_pem));
    assert.equal(uploaded.status, 200, uploaded.text);
    documented("PUT", "/v1/ade/servers/{name}/token", uploaded);
    assert.equal(uploaded.json.server_uuid, standin.serverUuid);
    assert.ok(uploaded.json.token_expiry);

    const profile = await server.api("PUT", "/v1/ade/servers/main/profiles/lab?default=1", {
      is_supervised: true,
      await_device_configured: true,
      skip_setup_items: ["Location"],
      department: "IT",
    });
    assert.equal(profile.status, 201, profile.text);
    documented("PUT", "/v1/ade/servers/{name}/profiles/{profile}", profile);
    assert.equal(profile.json.profile.url, "https://mdm.example.org/ade/enroll");
    assert.equal(profile.json.default, true);
    const badProfile = await server.api("PUT", "/v1/ade/servers/main/profiles/x", { skip_setup_items: ["Nope"] });
    assert.equal(badProfile.json.code, "invalid_ade_profile");
    documented("PUT", "/v1/ade/servers/{name}/profiles/{profile}", badProfile);

    const serials = standin.addDevices(25);
    const sync = await server.api("POST", "/v1/ade/servers/main/sync");
    assert.equal(sync.status, 200, sync.text);
    documented("POST", "/v1/ade/servers/{name}/sync", sync);
    assert.deepEqual({ fetched: sync.json.fetched, assigned: sync.json.assigned }, { fetched: 25, assigned: 25 });

    const page = await server.api("GET", "/v1/ade/devices?server=main&limit=10");
    documented("GET", "/v1/ade/devices", page);
    assert.equal(page.json.devices.length, 10);
    assert.equal(page.json.devices[0].profile_status, "assigned");
    const next = await server.api("GET", `/v1/ade/devices?server=main&limit=10&cursor=${encodeURIComponent(page.json.next_cursor)}`);
    assert.equal(next.json.devices[0].serial_number, serials[10]);
    documented("GET", "/v1/ade/devices", await server.api("GET", "/v1/ade/devices?enrolled=maybe"));

    await server.api("PUT", "/v1/ade/servers/main/profiles/kiosk", { is_supervised: true });
    const assign = await server.api("POST", "/v1/ade/servers/main/profiles/kiosk/assign", { serials: [serials[0]] });
    assert.equal(assign.status, 200, assign.text);
    documented("POST", "/v1/ade/servers/{name}/profiles/{profile}/assign", assign);
    assert.deepEqual(assign.json.devices, { [serials[0]!]: "SUCCESS" });

    standin.failNext("/devices/sync", 503, { body: "SERVICE_UNAVAILABLE" });
    const upstream = await server.api("POST", "/v1/ade/servers/main/sync");
    assert.equal(upstream.status, 502);
    assert.equal(upstream.json.code, "ade_upstream");
    documented("POST", "/v1/ade/servers/{name}/sync", upstream);
    // Apple failing is not Orchard's bug: no error-level line with a stack for it (walkthrough).
    assert.ok(!server.logs.some((l) => l.includes('"level":50') && l.includes("ade_upstream")), "no error line for a 502");

    documented("GET", "/v1/ade/servers", await server.api("GET", "/v1/ade/servers"));
    documented("GET", "/v1/ade/servers/{name}", await server.api("GET", "/v1/ade/servers/main"));
    documented("GET", "/v1/ade/servers/{name}", await server.api("GET", "/v1/ade/servers/nope"));
    documented("GET", "/v1/ade/servers/{name}/profiles", await server.api("GET", "/v1/ade/servers/main/profiles"));
    documented(
      "PUT",
      "/v1/ade/servers/{name}/default-profile",
      await server.api("PUT", "/v1/ade/servers/main/default-profile", { profile: "kiosk" }),
    );
    documented("DELETE", "/v1/ade/servers/{name}/profiles/{profile}", await server.api("DELETE", "/v1/ade/servers/main/profiles/kiosk"));
    assert.equal((await server.api("GET", "/v1/ade/servers/main")).json.default_profile, null);

    // The ABM token's expiry is a metric beside the certificates'.
    const metrics = await server.api("GET", "/v1/metrics");
    assert.match(metrics.text, /orchard_certificate_expiry_days\{certificate="abm_token",topic="main"\} 36\d\./);

    // No secret of the token or of Apple's sessions in the server's log.
    const logs = server.logs.join("\n");
    for (const secret of [standin.consumerSecret, standin.accessSecret, standin.accessToken, ...standin.sessionsIssued]) {
      assert.ok(!logs.includes(secret), "a secret reached the log");
    }
  });

  test("the CLI: servers add (certificate written), token upload, profiles, sync, devices", async () => {
    const ctx = cliContext(server.url, { cwd: fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-cli-")) });
    const run = async (...args: string[]) => {
      const c = cliContext(server.url, { cwd: ctx.cwd });
      const code = await runWith(c, "ade", args);
      return { code, out: c.stdout, err: c.stderr };
    };
    const add = await run("servers", "add", "cli", "--out", "cli.pem");
    assert.equal(add.code, 0, add.err);
    const pem = fs.readFileSync(path.join(ctx.cwd, "cli.pem"), "utf8");
    assert.match(pem, /BEGIN CERTIFICATE/);
    fs.writeFileSync(path.join(ctx.cwd, "cli.p7m"), standin.issueToken(pem));
    const token = await run("token", "upload", "cli", "cli.p7m");
    assert.equal(token.code, 0, token.err);
    assert.match(token.out, /token of ABM server cli stored, valid until/);
    fs.writeFileSync(path.join(ctx.cwd, "lab.json"), JSON.stringify({ is_supervised: true, skip_setup_items: ["Siri"] }));
    assert.equal((await run("profiles", "put", "cli", "lab", "lab.json", "--default")).code, 0);
    standin.addDevices(3); // the stand-in's earlier devices have a profile already: left alone
    const sync = await run("sync", "cli");
    assert.equal(sync.code, 0, sync.err);
    assert.match(sync.out, /fetched 28 devices\nassigned the default profile to 3 devices/);
    const devices = await run("devices", "--server", "cli", "--all");
    assert.equal(devices.code, 0, devices.err);
    assert.match(devices.out, /SERIAL/);
    const list = await run("servers", "list");
    assert.match(list.out, /cli/);
    const show = await run("servers", "show", "cli", "--json");
    assert.equal(JSON.parse(show.out).name, "cli");
    const profiles = await run("profiles", "list", "cli");
    assert.match(profiles.out, /lab/);
    assert.equal((await run("servers", "remove", "cli")).code, 0);
    assert.equal((await run("servers", "show", "cli")).code, 1);
    assert.equal((await run("nonsense")).code, 2);
  });

  test("enrollment settings and ADE enrollments: answers and errors documented; the CLI", async () => {
    const put = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", {
      minimum_os: { macos: { os_version: "15.4", build_version: "24E248" }, ios: { os_version: "18.0" } },
      initial_commands: [
        '<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>',
      ],
      initial_ddm_sets: ["baseline"],
    });
    assert.equal(put.status, 200, put.text);
    documented("PUT", "/v1/ade/servers/{name}/enrollment-settings", put);
    assert.equal(put.json.release_on_failure, true);
    // A set with no declarations is stored, and said (most often a misspelt name).
    assert.match(put.headers.get("orchard-warning") ?? "", /initial_ddm_sets: set "baseline": holds no declarations/);
    assert.ok(server.logs.some((l) => l.includes("DDM set named that holds no declarations")));
    const get = await server.api("GET", "/v1/ade/servers/main/enrollment-settings");
    documented("GET", "/v1/ade/servers/{name}/enrollment-settings", get);
    assert.deepEqual(get.json, put.json);
    for (const bad of [
      { nope: 1 },
      { minimum_os: { macos: { os_version: "fifteen" } } },
      {
        initial_commands: [
          '<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceConfigured</string></dict></dict></plist>',
        ],
      },
      { platform_sso: { profile_url: "http://insecure.example", package_manifest_url: "https://x", auth_url: "https://y" } },
      { release_on_failure: "no" },
    ]) {
      const r = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.json.code, "invalid_ade_settings");
      documented("PUT", "/v1/ade/servers/{name}/enrollment-settings", r);
    }
    const missing = await server.api("PUT", "/v1/ade/servers/nope/enrollment-settings", {});
    assert.equal(missing.status, 404);
    documented("PUT", "/v1/ade/servers/{name}/enrollment-settings", missing);

    const list = await server.api("GET", "/v1/ade/enrollments?server=main");
    documented("GET", "/v1/ade/enrollments", list);
    assert.deepEqual(list.json.enrollments, []);
    const badState = await server.api("GET", "/v1/ade/enrollments?state=sleeping");
    assert.equal(badState.status, 400);
    documented("GET", "/v1/ade/enrollments", badState);
    const none = await server.api("GET", "/v1/ade/enrollments/C02NOPE");
    assert.equal(none.status, 404);
    documented("GET", "/v1/ade/enrollments/{serial}", none);
    const release = await server.api("POST", "/v1/ade/enrollments/C02NOPE/release");
    assert.equal(release.status, 404);
    documented("POST", "/v1/ade/enrollments/{serial}/release", release);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-settings-"));
    const declaration = { Type: "com.apple.configuration.management.test", Identifier: "ade.baseline.test", Payload: { Echo: "x" } };
    assert.equal((await server.api("PUT", "/v1/declarations", declaration)).status, 204);
    assert.equal((await server.api("PUT", "/v1/set-declarations/baseline?declaration=ade.baseline.test")).status, 204);
    fs.writeFileSync(
      path.join(dir, "settings.json"),
      JSON.stringify({ release_on_failure: false, initial_ddm_sets: ["baseline", "baselin"] }),
    );
    const ctx = cliContext(server.url, { cwd: dir });
    assert.equal(await runWith(ctx, "ade", ["settings", "put", "main", "settings.json"]), 0, ctx.stderr);
    assert.match(ctx.stdout, /minimum OS none; Platform SSO off; 0 initial commands, 2 DDM sets; a failed step holds the device/);
    // Only the set that holds nothing is warned of.
    assert.equal(
      ctx.stderr,
      'orchard: warning: initial_ddm_sets: set "baselin": holds no declarations; a device gets nothing from it until it does\n',
    );
    const show = cliContext(server.url, { cwd: dir });
    assert.equal(await runWith(show, "ade", ["settings", "show", "main"]), 0);
    assert.equal(JSON.parse(show.stdout).release_on_failure, false);
    const empty = cliContext(server.url, { cwd: dir });
    assert.equal(await runWith(empty, "ade", ["enrollments"]), 0);
    assert.match(empty.stdout, /no ADE device has reached the enrollment URL/);
    const rel = cliContext(server.url, { cwd: dir });
    assert.equal(await runWith(rel, "ade", ["release", "C02NOPE"]), 1);
  });

  test("an initial command whose RequestType Apple's schema does not know is stored with a warning, as enqueue's; the CLI prints it", async () => {
    const command = (type: string) =>
      `<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>${type}</string></dict></dict></plist>`;
    const put = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", {
      initial_commands: [command("ProfileList"), command("DeviceInfomation")],
      release_on_failure: false,
    });
    assert.equal(put.status, 200, put.text);
    documented("PUT", "/v1/ade/servers/{name}/enrollment-settings", put);
    assert.equal(put.json.initial_commands.length, 2, "stored all the same");
    assert.deepEqual(splitWarnings(put.headers.get("orchard-warning")), [
      `initial_commands[1]: RequestType "DeviceInfomation": not a command Apple's schema knows (${SCHEMA_SOURCE.release}); ` +
        "stored all the same: a device that does not know it answers with an error, and is held in Setup Assistant (release_on_failure is false)",
    ]);
    assert.ok(server.logs.some((l) => l.includes("ADE initial command Apple's schema does not know") && l.includes("DeviceInfomation")));
    // Only known commands: no warning.
    const known = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", { initial_commands: [command("ProfileList")] });
    assert.deepEqual([known.status, known.headers.get("orchard-warning")], [200, null]);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-settings-"));
    fs.writeFileSync(
      path.join(dir, "settings.json"),
      JSON.stringify({ initial_commands: [command("SecurityInfo"), command("ProfilList")] }),
    );
    const ctx = cliContext(server.url, { cwd: dir });
    assert.equal(await runWith(ctx, "ade", ["settings", "put", "main", "settings.json"]), 0, ctx.stderr);
    assert.match(ctx.stdout, /2 initial commands/);
    assert.equal(
      ctx.stderr,
      `orchard: warning: initial_commands[1]: RequestType "ProfilList": not a command Apple's schema knows (${SCHEMA_SOURCE.release}); ` +
        "stored all the same: a device that does not know it answers with an error, and is released all the same (release_on_failure)\n",
    );
  });
});
