// Micro-benchmark of the plist codec against the npm `plist` package.
// Run: node --import tsx bench/plist.ts
// Each case runs 5 timed rounds after a warm-up and prints the median ops/s by
// wall clock, and per CPU-second of this process (steadier on a busy machine).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import * as reference from "plist";
import { parsePlist, serializePlist, type PlistDict, type PlistValue } from "../src/plist/index.ts";

const FIXTURE = new URL("../test/fixtures/checkin/tokenupdate-macos-10.12.2-device.plist", import.meta.url);

function bench(name: string, iterations: number, fn: () => unknown): number {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn(); // warm-up for the JIT
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    for (let i = 0; i < iterations; i++) fn();
    const used = process.cpuUsage(cpuStart);
    wall.push(iterations / (Number(process.hrtime.bigint() - start) / 1e9));
    cpu.push(iterations / ((used.user + used.system) / 1e6));
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[2]!;
  const fmt = (n: number): string => Math.round(n).toLocaleString("en-US").padStart(11);
  const w = median(wall);
  console.log(`${name.padEnd(46)} ${fmt(w)} ops/s ${fmt(median(cpu))} ops/cpu-s`);
  return w;
}

/** A command result like a Mac's InstalledApplicationList answer, about 200 KB. */
function installedApplicationList(targetBytes: number): string {
  const apps: PlistDict[] = [];
  const result: PlistDict = {
    CommandUUID: "7B1F4D0A-8C53-4C43-9E5B-4C6F0D9A1E11",
    Status: "Acknowledged",
    UDID: "E3568F17-92ED-450A-8904-C3BF4CB7E9A5",
    InstalledApplicationList: apps,
  };
  for (let i = 0; ; i++) {
    apps.push({
      AdHocCodeSigned: false,
      AppStoreVendable: i % 3 === 0,
      BetaApp: false,
      BundleSize: 1_000_000 + i * 7919,
      DeviceBasedVPP: false,
      DynamicSize: i * 104_729,
      ExternalVersionIdentifier: 800_000_000 + i,
      HasUpdateAvailable: i % 11 === 0,
      Identifier: `com.example.vendor${i % 17}.app${i}`,
      Installing: false,
      IsAppClip: false,
      IsValidated: true,
      Name: `Example App ${i} & Friends`,
      ShortVersion: `${1 + (i % 9)}.${i % 13}.${i % 5}`,
      Version: String(1000 + i),
    });
    if (i % 20 === 0 && serializePlist(result).length >= targetBytes) return serializePlist(result);
  }
}

const tokenUpdateBytes = readFileSync(FIXTURE);
const tokenUpdate = tokenUpdateBytes.toString("utf8");
const appList = installedApplicationList(200 * 1024);
const appListBytes = Buffer.from(appList, "utf8");

// Both parsers must agree before their speed means anything.
const normalise = (v: unknown): unknown =>
  JSON.parse(
    JSON.stringify(v, (_k, x) => (x instanceof Uint8Array || x?.type === "Buffer" ? Buffer.from(x.data ?? x).toString("hex") : x)),
  );
assert.deepEqual(normalise(parsePlist(tokenUpdateBytes)), normalise(reference.parse(tokenUpdate)));
assert.deepEqual(normalise(parsePlist(appListBytes)), normalise(reference.parse(appList)));

const command: PlistValue = {
  CommandUUID: "0E4C4D61-7E52-4A3B-9E0D-6B0B2F8D0C77",
  Command: {
    RequestType: "InstallProfile",
    Payload: Buffer.alloc(4096, 0x5a),
  },
};
assert.deepEqual(normalise(reference.parse(serializePlist(command))), normalise(command));

console.log(
  `node ${process.version}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
const appCount = ((parsePlist(appListBytes) as PlistDict)["InstalledApplicationList"] as unknown[]).length;
console.log(`TokenUpdate ${tokenUpdateBytes.length} B; InstalledApplicationList ${appListBytes.length} B, ${appCount} apps`);
const ours = bench("parse TokenUpdate: orchard (Buffer in)", 100_000, () => parsePlist(tokenUpdateBytes));
bench("parse TokenUpdate: orchard (string in)", 100_000, () => parsePlist(tokenUpdate));
const theirs = bench("parse TokenUpdate: plist package (string in)", 5_000, () => reference.parse(tokenUpdate));
const oursBig = bench("parse 200 KB app list: orchard (Buffer in)", 100, () => parsePlist(appListBytes));
const theirsBig = bench("parse 200 KB app list: plist package", 10, () => reference.parse(appList));
const ser = bench("serialize InstallProfile (4 KB): orchard", 50_000, () => serializePlist(command));
const serRef = bench("serialize InstallProfile (4 KB): plist package", 2_000, () =>
  reference.build(command as Parameters<typeof reference.build>[0]),
);
console.log(
  `speed-up: TokenUpdate ${(ours / theirs).toFixed(1)}x, app list ${(oursBig / theirsBig).toFixed(1)}x, serialize ${(ser / serRef).toFixed(1)}x`,
);
