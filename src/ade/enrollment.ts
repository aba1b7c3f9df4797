// The enrollment URL's decision for one signed MachineInfo: refuse a device
// no ABM server assigns to Orchard (403), ask for an OS update or Platform SSO
// (403 in Apple's JSON shapes) when the server's settings say so and the
// device says it can, or go on to the enrollment profile. The profile itself
// (SCEP challenge bound to the serial, the MDM payload) is made by http/.
import type { X509Certificate } from "node:crypto";
import { Forbidden } from "../errors.ts";
import type { Store } from "../store/index.ts";
import type { AdeLog } from "./service.ts";
import { compareVersions, platformOfProduct, readMachineInfo, type MachineInfo } from "./machine-info.ts";
import { readSettings, type MinimumOs } from "./settings.ts";

export type EnrollDecision =
  | { kind: "profile"; machine: MachineInfo; server: string; appleCaVerified: boolean }
  /** A 403 whose JSON body Apple's Setup Assistant acts on. */
  | { kind: "refuse"; reason: "os_update" | "platform_sso"; body: Record<string, unknown> }
  /** The caller's `admit` said no (too many answers for this serial): nothing was written. */
  | { kind: "limited"; serial: string };

/** Whether to answer this MachineInfo at all (a limit per serial); asked before anything is written. */
export type AdmitMachine = (m: { serial: string; udid: string; chained: boolean }) => boolean;

export class AdeEnrollment {
  constructor(
    private readonly o: {
      store: Store;
      /** --ade-device-ca: MachineInfo signers must chain to one of these; none: the signature alone is checked. */
      appleCas: readonly X509Certificate[];
    },
  ) {}

  /** True when the signer's chain to Apple's device CA is checked. */
  get checksAppleCa(): boolean {
    return this.o.appleCas.length > 0;
  }

  /**
   * Reads and checks a MachineInfo (body, or the x-apple-aspen-deviceinfo
   * header) and decides the answer. `platformSsoDone`: the request carries
   * the identity provider's bearer token, so it is Platform SSO's second
   * request (the token is not verified: docs/automated-enrollment.md).
   */
  async decide(
    body: Buffer,
    header: string | undefined,
    log: AdeLog,
    now = Date.now(),
    admit: AdmitMachine = () => true,
    platformSsoDone = false,
  ): Promise<EnrollDecision> {
    const { info, chained } = await readMachineInfo(body, header, this.o.appleCas);
    const server = await this.o.store.ade.assignedServer(info.serial);
    if (server !== undefined && !admit({ serial: info.serial, udid: info.udid, chained })) return { kind: "limited", serial: info.serial };
    if (server === undefined) {
      log.warn(
        { serialNumber: info.serial, product: info.product },
        "ADE enrollment URL: a serial number no ABM server assigns to Orchard",
      );
      throw new Forbidden(
        `serial number ${info.serial} is not assigned to Orchard in Apple Business Manager (or not synced yet: orchard ade sync)`,
        "ade_not_assigned",
      );
    }
    const settings = readSettings((await this.o.store.ade.server(server))?.enrollmentSettings ?? null);
    const platform = platformOfProduct(info.product);
    const minimum: MinimumOs | undefined =
      platform === "macos" || platform === "ios"
        ? settings.minimumOs[platform]
        : platform === "ipados"
          ? (settings.minimumOs.ipados ?? settings.minimumOs.ios)
          : undefined;
    if (minimum && (info.osVersion === undefined || compareVersions(info.osVersion, minimum.osVersion) < 0)) {
      if (info.canRequestSoftwareUpdate) {
        const detail = {
          server,
          serial_number: info.serial,
          product: info.product,
          os_version: info.osVersion ?? null,
          required_os_version: minimum.osVersion,
          required_build_version: minimum.buildVersion ?? null,
        };
        await this.o.store.events.add({ type: "ade.os_update_required", enrollmentId: info.udid, detail }, now);
        log.info(detail, "ADE enrollment URL: the device is below the minimum OS: asked to update first");
        return {
          kind: "refuse",
          reason: "os_update",
          body: {
            code: "com.apple.softwareupdate.required",
            description: `${platform} ${minimum.osVersion} or later is required to enroll (this device runs ${info.osVersion ?? "an older version"})`,
            details: { OSVersion: minimum.osVersion, ...(minimum.buildVersion ? { BuildVersion: minimum.buildVersion } : {}) },
          },
        };
      }
      log.warn(
        { serialNumber: info.serial, osVersion: info.osVersion, required: minimum.osVersion },
        "ADE device below the minimum OS cannot be asked to update (no MDM_CAN_REQUEST_SOFTWARE_UPDATE): its profile is served",
      );
    }
    // The second request may still say MDM_CAN_REQUEST_PSSO_CONFIG (it is what the Mac can do): its bearer token
    // is what says the sign-in happened, or the Mac would be sent to sign in again and again.
    if (settings.platformSso && info.canRequestPsso && !platformSsoDone && platform === "macos") {
      const detail = { server, serial_number: info.serial };
      await this.o.store.events.add({ type: "ade.platform_sso_required", enrollmentId: info.udid, detail }, now);
      log.info(detail, "ADE enrollment URL: Platform SSO required before enrollment");
      const p = settings.platformSso;
      return {
        kind: "refuse",
        reason: "platform_sso",
        body: {
          Code: "com.apple.psso.required",
          Details: { ProfileURL: p.profileUrl, Package: { ManifestURL: p.packageManifestUrl }, AuthURL: p.authUrl },
        },
      };
    }
    return { kind: "profile", machine: info, server, appleCaVerified: chained };
  }

  /** The profile went out: the device's row starts at profile_served, with its event, in one transaction. */
  async served(d: Extract<EnrollDecision, { kind: "profile" }>, now = Date.now()): Promise<void> {
    const m = d.machine;
    await this.o.store.transaction(async (tx) => {
      await tx.adeEnrollments.served(
        {
          serialNumber: m.serial,
          serverName: d.server,
          udid: m.udid,
          product: m.product,
          osVersion: m.osVersion,
          buildVersion: m.buildVersion,
        },
        now,
      );
      await tx.events.add(
        {
          type: "ade.enrollment_profile_served",
          enrollmentId: m.udid,
          detail: {
            server: d.server,
            serial_number: m.serial,
            product: m.product,
            os_version: m.osVersion ?? null,
            build_version: m.buildVersion,
            apple_ca_verified: d.appleCaVerified,
          },
        },
        now,
      );
    });
  }
}
