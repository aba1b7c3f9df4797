import { issueDeviceIdentity, type CaIdentity, type KeyPair } from "../../src/identity/testing/pki.ts";
import type { PlistDict } from "../../src/plist/types.ts";
import { SimDevice, type IdentityMode } from "../../src/sim/device.ts";
import { Transport } from "../../src/sim/transport.ts";
import { testDeviceCa } from "./device-ca.ts";

/** The test device CA (trusted by startTestServer) and a shared key for quick test devices (RSA key generation is slow). */
export interface TestFleet {
  ca: CaIdentity;
  key: KeyPair;
  transport: Transport;
  device(opts?: { mode?: IdentityMode; udid?: string; platform?: "macOS" | "iOS"; facts?: PlistDict }): Promise<SimDevice>;
  close(): void;
}

export async function testFleet(baseUrl: string): Promise<TestFleet> {
  const { ca, key } = await testDeviceCa();
  const transport = new Transport(baseUrl);
  let n = 0;
  return {
    ca,
    key,
    transport,
    async device(opts = {}) {
      const identity = await issueDeviceIdentity(ca, { commonName: `device-${++n}`, keyPair: key });
      return new SimDevice({
        transport,
        identity,
        mode: opts.mode ?? { kind: "header", header: "x-client-cert" },
        udid: opts.udid,
        platform: opts.platform,
        facts: opts.facts,
      });
    },
    close: () => transport.close(),
  };
}
