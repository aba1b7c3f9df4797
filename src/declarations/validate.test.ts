import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createDeclarationValidator,
  type DeclarationValidation,
  declarationFamily,
  declarationType,
  formatDeclarationError,
  MAX_ERRORS,
  type SchemaData,
  UNKNOWN_TYPE_WARNING,
  validateDeclaration,
} from "./index.ts";

/** A declaration of a type with its payload, as an operator would send it. */
function decl(type: string, payload: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Type: type, Identifier: "0D1B3C44-4C3F-4A55-9E1F-7B1A2E3B4C5D", Payload: payload, ...extra };
}

/** The errors, each as "path: message". */
function errorsOf(r: DeclarationValidation): string[] {
  return r.errors.map(formatDeclarationError);
}

function assertValid(d: unknown): void {
  const r = validateDeclaration(d);
  assert.deepEqual(r, { errors: [], warnings: [] });
}

// --- Real declarations, accepted as they are -------------------------------

test("real declarations of several types are valid, with no warning", () => {
  assertValid(
    decl(
      "com.apple.configuration.passcode.settings",
      {
        RequirePasscode: true,
        RequireAlphanumericPasscode: true,
        MinimumLength: 8,
        MaximumFailedAttempts: 10,
        MaximumInactivityInMinutes: 5,
        PasscodeReuseLimit: 3,
        CustomRegex: { Regex: "^.{12,}$", Description: { default: "At least 12 characters", "en-US": "At least 12 characters" } },
      },
      { ServerToken: "anything: the server sets it" },
    ),
  );
  assertValid(
    decl("com.apple.configuration.softwareupdate.enforcement.specific", {
      TargetOSVersion: "15.2",
      TargetBuildVersion: "24C101",
      TargetLocalDateTime: "2024-12-20T18:00:00",
      DetailsURL: "https://it.example.com/updates/15.2",
    }),
  );
  assertValid(
    decl("com.apple.configuration.softwareupdate.settings", {
      Notifications: false,
      Deferrals: { CombinedPeriodInDays: 30, MajorPeriodInDays: 90, MinorPeriodInDays: 1 },
      RecommendedCadence: "Newest",
      AutomaticActions: { Download: "AlwaysOn", InstallOSUpdates: "Allowed" },
    }),
  );
  assertValid(
    decl("com.apple.activation.simple", {
      StandardConfigurations: ["passcode", "status-subscriptions", "legacy-wifi"],
      Predicate: "@status(device.operating-system.family) == 'macOS'",
    }),
  );
  assertValid(
    decl("com.apple.configuration.management.status-subscriptions", {
      StatusItems: [{ Name: "device.operating-system.version" }, { Name: "management.declarations" }, { Name: "passcode.is-compliant" }],
    }),
  );
  assertValid(
    decl("com.apple.asset.data", {
      Reference: {
        DataURL: "https://mdm.example.com/ddm/assets/logo.png",
        ContentType: "image/png",
        Size: 48213,
        "Hash-SHA-256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      },
      Authentication: { Type: "MDM" },
    }),
  );
  assertValid(decl("com.apple.configuration.legacy", { ProfileURL: "https://mdm.example.com/ddm/profiles/wifi.mobileconfig" }));
  assertValid(decl("com.apple.configuration.management.test", { Echo: "hello", ReturnStatus: "Installed" }));
  assertValid(
    decl("com.apple.configuration.account.ldap", {
      HostName: "ldap.example.com",
      Port: 636,
      SearchSettings: [{ SearchBase: "ou=people,dc=example,dc=com", Scope: "Subtree" }, { SearchBase: "dc=example,dc=com" }],
    }),
  );
  // ANY keys: a dictionary of extensions by name; properties of any value.
  assertValid(
    decl("com.apple.configuration.safari.extensions.settings", {
      ManagedExtensions: {
        "com.example.blocker (ABCDE12345)": { State: "AlwaysOn", AllowedDomains: ["example.com"] },
        "*": { State: "Allowed" },
      },
    }),
  );
  assertValid(decl("com.apple.management.properties", { team: "design", floor: 3, beta: true, tags: ["a"], nested: { x: 1 } }));
});

// --- Each kind of error, naming the key -------------------------------------

test("a missing required key is an error naming it", () => {
  const r = validateDeclaration(decl("com.apple.configuration.softwareupdate.enforcement.specific", { TargetOSVersion: "15.2" }));
  assert.deepEqual(errorsOf(r), ["Payload.TargetLocalDateTime: required key missing"]);
  assert.deepEqual(errorsOf(validateDeclaration(decl("com.apple.activation.simple", {}))), [
    "Payload.StandardConfigurations: required key missing",
  ]);
  // A key the prototype has is not the declaration's.
  const inherited = Object.create({ ProfileURL: "https://mdm.example.com/p" });
  assert.deepEqual(errorsOf(validateDeclaration(decl("com.apple.configuration.legacy", inherited))), [
    "Payload.ProfileURL: required key missing",
  ]);
});

test("a value of the wrong type is an error: integer is not real, nor a string, nor a boolean", () => {
  const passcode = (p: unknown) => errorsOf(validateDeclaration(decl("com.apple.configuration.passcode.settings", p)));
  assert.deepEqual(passcode({ MinimumLength: "8" }), ["Payload.MinimumLength: expected integer, got string"]);
  assert.deepEqual(passcode({ MinimumLength: 8.5 }), ["Payload.MinimumLength: expected integer, got real"]);
  assert.deepEqual(passcode({ RequirePasscode: 1 }), ["Payload.RequirePasscode: expected boolean, got integer"]);
  assert.deepEqual(passcode({ RequirePasscode: null }), ["Payload.RequirePasscode: expected boolean, got null"]);
  assert.deepEqual(passcode({ CustomRegex: "^.{12,}$" }), ["Payload.CustomRegex: expected dictionary, got string"]);
  assert.deepEqual(passcode({ CustomRegex: ["^.{12,}$"] }), ["Payload.CustomRegex: expected dictionary, got array"]);
  assert.deepEqual(errorsOf(validateDeclaration(decl("com.apple.activation.simple", { StandardConfigurations: "a" }))), [
    "Payload.StandardConfigurations: expected array, got string",
  ]);
});

test("a value not in the allowed list is an error listing them", () => {
  const r = validateDeclaration(decl("com.apple.asset.data", { Reference: { DataURL: "https://x/y" }, Authentication: { Type: "Basic" } }));
  assert.deepEqual(errorsOf(r), ['Payload.Authentication.Type: expected one of "MDM", "None", got "Basic"']);
  // Case matters, as on the device.
  const cadence = validateDeclaration(decl("com.apple.configuration.softwareupdate.settings", { RecommendedCadence: "newest" }));
  assert.deepEqual(errorsOf(cadence), ['Payload.RecommendedCadence: expected one of "All", "Oldest", "Newest", got "newest"']);
});

test("a number out of range is an error with the bounds", () => {
  const passcode = (p: unknown) => errorsOf(validateDeclaration(decl("com.apple.configuration.passcode.settings", p)));
  assert.deepEqual(passcode({ MaximumFailedAttempts: 20 }), ["Payload.MaximumFailedAttempts: must be between 2 and 11, got 20"]);
  assert.deepEqual(passcode({ MaximumFailedAttempts: 1 }), ["Payload.MaximumFailedAttempts: must be between 2 and 11, got 1"]);
  assert.deepEqual(passcode({ MinimumLength: -1 }), ["Payload.MinimumLength: must be between 0 and 16, got -1"]);
  // The bounds themselves are in.
  assert.deepEqual(passcode({ MaximumFailedAttempts: 2, MinimumLength: 16, MaximumPasscodeAgeInDays: 730 }), []);
});

test("nested dictionaries and arrays are checked, and the path names the item", () => {
  const settings = validateDeclaration(
    decl("com.apple.configuration.softwareupdate.settings", { Deferrals: { MajorPeriodInDays: "30", MinorPeriodInDays: 91 } }),
  );
  assert.deepEqual(errorsOf(settings), [
    "Payload.Deferrals.MajorPeriodInDays: expected integer, got string",
    "Payload.Deferrals.MinorPeriodInDays: must be between 1 and 90, got 91",
  ]);
  const subs = validateDeclaration(
    decl("com.apple.configuration.management.status-subscriptions", {
      StatusItems: [{ Name: "device.model.family" }, {}, { Name: 7 }, "passcode.is-present"],
    }),
  );
  assert.deepEqual(errorsOf(subs), [
    "Payload.StatusItems[1].Name: required key missing",
    "Payload.StatusItems[2].Name: expected string, got integer",
    "Payload.StatusItems[3]: expected dictionary, got string",
  ]);
  const activation = validateDeclaration(decl("com.apple.activation.simple", { StandardConfigurations: ["a", 2] }));
  assert.deepEqual(errorsOf(activation), ["Payload.StandardConfigurations[1]: expected string, got integer"]);
  // An allowed-values list on an array's items.
  const exchange = validateDeclaration(
    decl("com.apple.configuration.account.exchange", { UserIdentityAssetReference: "id", EnabledProtocolTypes: ["EAS", "IMAP"] }),
  );
  assert.ok(
    errorsOf(exchange).includes('Payload.EnabledProtocolTypes[1]: expected one of "EAS", "EWS", got "IMAP"'),
    errorsOf(exchange).join("\n"),
  );
  // ANY keys are named as they are, quoted when they are not plain names.
  const safari = validateDeclaration(
    decl("com.apple.configuration.safari.extensions.settings", {
      ManagedExtensions: { "com.example.blocker (ABCDE12345)": { State: "On" }, plain_name: { DeniedDomains: [1] } },
    }),
  );
  assert.deepEqual(errorsOf(safari), [
    'Payload.ManagedExtensions["com.example.blocker (ABCDE12345)"].State: expected one of "Allowed", "AlwaysOn", "AlwaysOff", got "On"',
    "Payload.ManagedExtensions.plain_name.DeniedDomains[0]: expected string, got integer",
  ]);
  const regex = validateDeclaration(
    decl("com.apple.configuration.passcode.settings", { CustomRegex: { Regex: "x", Description: { fr: 1 } } }),
  );
  assert.deepEqual(errorsOf(regex), ["Payload.CustomRegex.Description.fr: expected string, got integer"]);
});

test("unknown keys are warnings, never errors, at any depth", () => {
  const r = validateDeclaration(
    decl("com.apple.configuration.softwareupdate.settings", { Deferrals: { MaxUserDeferrals: 3 }, Colour: "green" }, { Extra: 1 }),
  );
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, [
    "Extra: unknown key, not one of Type, Identifier, ServerToken, Payload",
    "Payload.Deferrals.MaxUserDeferrals: unknown key, not in the schema of com.apple.configuration.softwareupdate.settings",
    "Payload.Colour: unknown key, not in the schema of com.apple.configuration.softwareupdate.settings",
  ]);
});

// --- Types ------------------------------------------------------------------

test("an Apple-looking type the schema does not know is accepted with a warning, not validated", () => {
  for (const type of [
    "com.apple.configuration.softwareupdate.enforcement.latest",
    "com.apple.activation.conditional",
    "com.apple.asset.something-new",
    "com.apple.management.new-thing",
  ]) {
    const r = validateDeclaration(decl(type, { Anything: ["goes", 1] }));
    assert.deepEqual(r.errors, [], type);
    assert.deepEqual(r.warnings, [`Type ${JSON.stringify(type)}: ${UNKNOWN_TYPE_WARNING}`], type);
  }
  assert.equal(UNKNOWN_TYPE_WARNING, "type not in the schema this server knows (iOS 18.2/macOS 15.2 seed); not validated");
  // Its base keys are still checked.
  assert.deepEqual(errorsOf(validateDeclaration(decl("com.apple.configuration.new", "x"))), ["Payload: expected dictionary, got string"]);
});

test("a type outside Apple's four families is an error", () => {
  for (const type of [
    "com.example.configuration.foo",
    "com.apple.configuration",
    "com.apple.configuration.",
    "com.apple.configurations.passcode.settings",
    "com.apple.profile.legacy",
    "COM.APPLE.CONFIGURATION.LEGACY",
    "",
  ]) {
    const r = validateDeclaration(decl(type, {}));
    assert.equal(r.errors.length, 1, type);
    assert.equal(r.errors[0]!.path, "Type");
    assert.match(r.errors[0]!.message, /^unknown declaration type .*: a Type is com\.apple\.activation\.\*/);
  }
  assert.deepEqual(errorsOf(validateDeclaration(decl("com.example.x", {}))), [
    'Type: unknown declaration type "com.example.x": a Type is com.apple.activation.*, com.apple.configuration.*, com.apple.asset.* or com.apple.management.*',
  ]);
});

test("the types' families and titles are known", () => {
  assert.deepEqual(declarationType("com.apple.configuration.passcode.settings"), {
    type: "com.apple.configuration.passcode.settings",
    family: "configuration",
    title: "Passcode:Settings",
  });
  assert.equal(declarationType("com.apple.configuration.nope"), undefined);
  assert.equal(declarationType("constructor"), undefined);
  assert.equal(declarationType("__proto__"), undefined);
  assert.equal(declarationFamily("com.apple.asset.data"), "asset");
  assert.equal(declarationFamily("com.apple.management.brand-new"), "management");
  assert.equal(declarationFamily("com.example.asset.data"), undefined);
});

// --- The declaration's own shape ---------------------------------------------

test("not an object, or missing or bad base keys, is an error", () => {
  for (const [value, kind] of [
    [null, "null"],
    [[], "array"],
    ["{}", "string"],
    [42, "integer"],
    [undefined, "undefined"],
  ] as const) {
    assert.deepEqual(validateDeclaration(value).errors, [{ path: "", message: `a declaration is a JSON object, got ${kind}` }]);
  }
  assert.deepEqual(errorsOf(validateDeclaration({})), [
    "Type: required key missing",
    "Identifier: required key missing",
    "Payload: required key missing",
  ]);
  assert.deepEqual(errorsOf(validateDeclaration({ Type: "com.apple.configuration.legacy", Payload: { ProfileURL: "https://x" } })), [
    "Identifier: required key missing",
  ]);
  assert.deepEqual(errorsOf(validateDeclaration(decl("com.apple.configuration.legacy", { ProfileURL: "https://x" }, { Identifier: "" }))), [
    "Identifier: must not be empty",
  ]);
  assert.deepEqual(
    errorsOf(validateDeclaration({ Type: 7, Identifier: ["x"], Payload: [], ServerToken: 1 })),
    ["Type: expected string, got integer", "Identifier: expected string, got array", "Payload: expected dictionary, got array"],
    "ServerToken is ignored, whatever it is",
  );
  assert.equal(formatDeclarationError({ path: "", message: "m" }), "m");
});

test("an Identifier over 64 octets is a warning (Apple: should not exceed)", () => {
  const ok = validateDeclaration(decl("com.apple.configuration.legacy", { ProfileURL: "https://x" }, { Identifier: "a".repeat(64) }));
  assert.deepEqual(ok.warnings, []);
  // 22 three-octet characters: 22 characters, 66 octets.
  const long = validateDeclaration(decl("com.apple.configuration.legacy", { ProfileURL: "https://x" }, { Identifier: "€".repeat(22) }));
  assert.deepEqual(long.errors, []);
  assert.deepEqual(long.warnings, ["Identifier: longer than 64 octets, which Apple says it should not exceed"]);
});

test("prototype keys and types are plain unknown names: no error, no pollution", () => {
  const text =
    '{"Type":"com.apple.configuration.passcode.settings","Identifier":"p","__proto__":{"x":1},' +
    '"Payload":{"__proto__":{"MinimumLength":"x"},"constructor":1,"toString":"s","hasOwnProperty":2,"MinimumLength":4}}';
  const r = validateDeclaration(JSON.parse(text));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, [
    "__proto__: unknown key, not one of Type, Identifier, ServerToken, Payload",
    "Payload.__proto__: unknown key, not in the schema of com.apple.configuration.passcode.settings",
    "Payload.constructor: unknown key, not in the schema of com.apple.configuration.passcode.settings",
    "Payload.toString: unknown key, not in the schema of com.apple.configuration.passcode.settings",
    "Payload.hasOwnProperty: unknown key, not in the schema of com.apple.configuration.passcode.settings",
  ]);
  assert.equal(({} as Record<string, unknown>)["x"], undefined);
  assert.equal(({} as Record<string, unknown>)["MinimumLength"], undefined);
  for (const type of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
    assert.deepEqual(
      validateDeclaration(decl(type, {})).errors.map((e) => e.path),
      ["Type"],
      type,
    );
  }
  // Inside an Apple family, such a name is only an unknown type.
  const newer = validateDeclaration(decl("com.apple.configuration.constructor", { __proto__: null }));
  assert.deepEqual(newer.errors, []);
  assert.equal(newer.warnings.length, 1);
  // A payload without a prototype is a dictionary like any other.
  const bare = Object.assign(Object.create(null), { ProfileURL: "https://x" });
  assertValid(decl("com.apple.configuration.legacy", bare));
  // A required key named like an Object.prototype member is not found on the prototype.
  const dict = JSON.parse(
    '{"Type":"com.apple.configuration.management.status-subscriptions","Identifier":"s","Payload":{"constructor":[]}}',
  );
  assert.deepEqual(errorsOf(validateDeclaration(dict)), ["Payload.StatusItems: required key missing"]);
});

test("a huge wrong array stops at MAX_ERRORS and says so", () => {
  const items = Array.from({ length: 10_000 }, () => ({}));
  const r = validateDeclaration(decl("com.apple.configuration.management.status-subscriptions", { StatusItems: items }));
  assert.equal(r.errors.length, MAX_ERRORS);
  assert.equal(r.errors[0]!.path, "Payload.StatusItems[0].Name");
  assert.deepEqual(r.warnings, [`more errors not shown: the check stopped after ${MAX_ERRORS}`]);
  const keys = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`K${i}`, i]));
  const w = validateDeclaration(decl("com.apple.configuration.legacy", { ProfileURL: "https://x", ...keys }));
  assert.equal(w.warnings.length, 51);
  assert.equal(w.warnings.at(-1), "150 more warnings not shown");
});

test("long strings are cut in messages", () => {
  const r = validateDeclaration(decl(`com.example.${"x".repeat(10_000)}`, {}));
  assert.ok(r.errors[0]!.message.length < 300, r.errors[0]!.message);
});

// --- Schema features Apple's declarations use rarely or not yet -------------

test("a validator for a given schema: real, data, date, any, open dictionaries, array of arrays", () => {
  const schema: SchemaData = {
    source: "test",
    release: "iOS 99/macOS 99",
    statusItems: [],
    requestTypes: [],
    declarations: [
      {
        type: "com.apple.configuration.probe",
        family: "configuration",
        title: "Probe",
        payload: {
          type: "dictionary",
          keys: [
            { key: "Ratio", type: "real", min: 0, max: 1 },
            { key: "Blob", type: "data" },
            { key: "When", type: "date" },
            { key: "Whatever", type: "any" },
            { key: "Open", type: "dictionary", open: true },
            { key: "Grid", type: "array", items: { type: "array", items: { type: "integer", values: [0, 1] } } },
            { key: "Floor", type: "integer", min: 3 },
            { key: "Ceiling", type: "integer", max: 3 },
          ],
        },
      },
    ],
  };
  const v = createDeclarationValidator(schema);
  const probe = (p: unknown) => v(decl("com.apple.configuration.probe", p));
  assert.deepEqual(
    probe({ Ratio: 0.5, Blob: "AAEC", When: "2024-01-01T00:00:00Z", Whatever: [1], Open: { a: { b: 1 } }, Grid: [[0, 1], []] }),
    {
      errors: [],
      warnings: [],
    },
  );
  assert.deepEqual(probe({ Ratio: 1 }).errors, [], "an integer is a real");
  assert.deepEqual(errorsOf(probe({ Ratio: 1.5, Blob: "not base64!", When: 5, Whatever: null, Grid: [[0, 2], 1], Floor: 2, Ceiling: 4 })), [
    "Payload.Ratio: must be between 0 and 1, got 1.5",
    "Payload.Blob: expected data (a base64 string), got string",
    "Payload.When: expected date (a string), got integer",
    "Payload.Whatever: expected a value, got null",
    "Payload.Grid[0][1]: expected one of 0, 1, got 2",
    "Payload.Grid[1]: expected array, got integer",
    "Payload.Floor: must be at least 3, got 2",
    "Payload.Ceiling: must be at most 3, got 4",
  ]);
  assert.deepEqual(errorsOf(probe({ Ratio: "0.5" })), ["Payload.Ratio: expected real, got string"]);
  assert.deepEqual(v(decl("com.apple.configuration.other", {})).warnings, [
    'Type "com.apple.configuration.other": type not in the schema this server knows (iOS 99/macOS 99 seed); not validated',
  ]);
  // The default validator does not know the probe type.
  assert.equal(validateDeclaration(decl("com.apple.configuration.probe", { Ratio: 2 })).errors.length, 0);
});
