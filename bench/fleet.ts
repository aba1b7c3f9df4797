// The bench's devices: one test CA, one shared RSA key, and per device the
// requests SimDevice sends, recorded once and encoded per server.
import { createCa, generateKeyPair, issueDeviceIdentity, type CaIdentity } from "../src/identity/testing/pki.ts";
import { serializePlist } from "../src/plist/index.ts";
import { SimDevice } from "../src/sim/device.ts";
import { prepare, RecordingTransport, RequestTemplate, type PreparedRequest } from "../src/sim/prebuilt.ts";
import type { RequestOptions } from "../src/sim/transport.ts";

export const CERT_HEADER = "x-client-cert";
export const API_KEY = "bench";
/** Replaced by a fresh CommandUUID (same length) in every round trip. */
export const UUID_PLACEHOLDER = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX";

/** What a device sends, independent of the server it is sent to. */
export interface RecordedDevice {
  udid: string;
  authenticate: RequestOptions;
  tokenUpdate: RequestOptions;
  idle: RequestOptions;
  /** Acknowledged report for UUID_PLACEHOLDER. */
  ack: RequestOptions;
  /** Operator API: enqueue a DeviceInformation command with UUID_PLACEHOLDER for this device. */
  enqueue: RequestOptions;
}

/** A device's requests encoded for one server. */
export interface BenchDevice {
  udid: string;
  authenticate: PreparedRequest;
  tokenUpdate: PreparedRequest;
  idle: PreparedRequest;
  ack: RequestTemplate;
  enqueue: RequestTemplate;
}

export interface Fleet {
  ca: CaIdentity;
  devices: RecordedDevice[];
}

/** Fixed UDIDs, so a persistent --storage sees the same devices run after run. */
export function benchUdid(i: number): string {
  return `BE4C0000-0000-4000-8000-${i.toString(16).toUpperCase().padStart(12, "0")}`;
}

export async function recordFleet(count: number): Promise<Fleet> {
  const ca = await createCa({ commonName: "Orchard Bench Device CA" });
  const key = await generateKeyPair(); // shared: RSA key generation is slow
  const transport = new RecordingTransport();
  const auth = "Basic " + Buffer.from(`x:${API_KEY}`).toString("base64");
  const command = Buffer.from(
    serializePlist({
      CommandUUID: UUID_PLACEHOLDER,
      Command: { RequestType: "DeviceInformation", Queries: ["DeviceName", "OSVersion", "SerialNumber", "UDID"] },
    }),
  );
  const devices: RecordedDevice[] = [];
  for (let i = 0; i < count; i++) {
    const identity = await issueDeviceIdentity(ca, { commonName: `bench-device-${i}`, keyPair: key });
    const udid = benchUdid(i);
    const device = new SimDevice({ transport, identity, mode: { kind: "header", header: CERT_HEADER }, udid });
    devices.push({
      udid,
      authenticate: await transport.record(() => device.authenticate()),
      tokenUpdate: await transport.record(() => device.tokenUpdate()),
      idle: await transport.record(() => device.report("Idle")),
      ack: await transport.record(() => device.report("Acknowledged", { CommandUUID: UUID_PLACEHOLDER })),
      enqueue: {
        method: "PUT",
        path: `/v1/enqueue/${encodeURIComponent(udid)}?nopush=1`,
        headers: { authorization: auth, "content-type": "application/xml" },
        body: command,
      },
    });
  }
  return { ca, devices };
}

export function forServer(url: string, d: RecordedDevice): BenchDevice {
  const host = new URL(url).host;
  return {
    udid: d.udid,
    authenticate: prepare(host, d.authenticate),
    tokenUpdate: prepare(host, d.tokenUpdate),
    idle: prepare(host, d.idle),
    ack: new RequestTemplate(prepare(host, d.ack), UUID_PLACEHOLDER),
    enqueue: new RequestTemplate(prepare(host, d.enqueue), UUID_PLACEHOLDER),
  };
}
