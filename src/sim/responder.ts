import type { PlistDict, PlistValue } from "../plist/index.ts";
import type { Rng } from "./rng.ts";

/**
 * What a simulated device answers to the commands a server sends: plausible
 * results for the common queries (DeviceInformation, ProfileList,
 * InstalledApplicationList, SecurityInfo, CertificateList, ...), Acknowledged
 * for the other commands a device knows, and for a RequestType it does not
 * know an Error with an ErrorChain, as a real device answers it.
 */

export type Platform = "macOS" | "iOS";

/** A network or local user of a simulated Mac. */
export interface SimUserProfile {
  guid: string;
  shortName: string;
  fullName: string;
  network: boolean;
}

/** Everything a simulated device knows about itself, fixed when the fleet is made. */
export interface DeviceProfile {
  udid: string;
  serialNumber: string;
  platform: Platform;
  /** Model, ModelName, ProductName, OSVersion, BuildVersion, DeviceName: what Authenticate sent. */
  facts: PlistDict;
  wifiMac: string;
  bluetoothMac: string;
  /** Gigabytes. */
  capacity: number;
  available: number;
  /** 0..1; undefined on a desktop Mac. */
  batteryLevel?: number;
  imei?: string;
  supervised: boolean;
  identity: { commonName: string; der: Buffer };
  ca: { commonName: string; der: Buffer };
  users: SimUserProfile[];
}

export interface CommandAnswer {
  status: "Acknowledged" | "Error";
  /** Keys added to the report beside Status, UDID and CommandUUID. */
  fields: PlistDict;
}

/** The MCMDMErrorDomain code a device answers to a RequestType it does not know. */
export const UNKNOWN_COMMAND_ERROR_CODE = 12021;

/** Commands a device carries out (or pretends to) and answers Acknowledged without a payload. */
const ACKNOWLEDGED = new Set([
  "InstallProfile",
  "RemoveProfile",
  "InstallProvisioningProfile",
  "RemoveProvisioningProfile",
  "InstallApplication",
  "InstallEnterpriseApplication",
  "RemoveApplication",
  "ApplyRedemptionCode",
  "ValidateApplications",
  "InstallMedia",
  "RemoveMedia",
  "Settings",
  "DeviceLock",
  "EraseDevice",
  "ClearPasscode",
  "ClearRestrictionsPassword",
  "RestartDevice",
  "ShutDownDevice",
  "ScheduleOSUpdate",
  "ScheduleOSUpdateScan",
  "DeviceConfigured",
  "DeclarativeManagement",
  "EnableLostMode",
  "DisableLostMode",
  "PlayLostModeSound",
  "EnableRemoteDesktop",
  "DisableRemoteDesktop",
  "SetRecoveryLock",
  "SetFirmwarePassword",
  "RotateFileVaultKey",
  "SetAutoAdminPassword",
  "LogOutUser",
  "DeleteUser",
  "UnlockUserAccount",
  "AccountConfiguration",
  "RequestMirroring",
  "StopMirroring",
  "RefreshCellularPlans",
  "SetBootstrapToken",
]);

/** The answer to one command as the server sent it (`{CommandUUID, Command: {RequestType, ...}}`). */
export function answerCommand(message: PlistDict, d: DeviceProfile, rng: Rng, user?: SimUserProfile): CommandAnswer {
  const command = isDict(message.Command) ? message.Command : {};
  const type = typeof command.RequestType === "string" ? command.RequestType : "";
  switch (type) {
    case "DeviceInformation":
      return ok({ QueryResponses: deviceInformation(d, stringList(command.Queries), rng) });
    case "ProfileList":
      return ok({ ProfileList: profileList(d, user) });
    case "InstalledApplicationList":
      return ok({ InstalledApplicationList: installedApplications(d, command) });
    case "SecurityInfo":
      return ok({ SecurityInfo: securityInfo(d) });
    case "CertificateList":
      return ok({ CertificateList: certificateList(d) });
    case "ProvisioningProfileList":
      return ok({ ProvisioningProfileList: [] });
    case "ManagedApplicationList":
      return ok({ ManagedApplicationList: {} });
    case "ManagedMediaList":
      return ok({ Books: [] });
    case "Restrictions":
      return ok({ GlobalRestrictions: {}, ProfileRestrictions: {} });
    case "AvailableOSUpdates":
      return ok({ AvailableOSUpdates: [] });
    case "OSUpdateStatus":
      return ok({ OSUpdateStatus: [] });
    case "UserList":
      if (d.platform === "macOS") return ok({ Users: userList(d) });
      break;
    case "VerifyFirmwarePassword":
    case "VerifyRecoveryLock":
      return ok({ PasswordVerified: false });
    default:
      if (ACKNOWLEDGED.has(type)) return ok({});
  }
  const description = type === "" ? "The command has no RequestType." : `The request type “${type}” is not supported.`;
  return {
    status: "Error",
    fields: {
      ErrorChain: [
        {
          ErrorCode: UNKNOWN_COMMAND_ERROR_CODE,
          ErrorDomain: "MCMDMErrorDomain",
          LocalizedDescription: description,
          USEnglishDescription: description,
        },
      ],
    },
  };
}

function ok(fields: PlistDict): CommandAnswer {
  return { status: "Acknowledged", fields };
}

function isDict(v: PlistValue | undefined): v is PlistDict {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date);
}

function stringList(v: PlistValue | undefined): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
}

/** Queried when a DeviceInformation command names no Queries. */
const DEFAULT_QUERIES = [
  "UDID",
  "DeviceName",
  "OSVersion",
  "BuildVersion",
  "ModelName",
  "Model",
  "ProductName",
  "SerialNumber",
  "DeviceCapacity",
  "AvailableDeviceCapacity",
  "WiFiMAC",
  "BluetoothMAC",
  "IsSupervised",
];

/** Answers the queries the device knows; like a real device, it leaves out the ones it does not. */
function deviceInformation(d: DeviceProfile, queries: string[] | undefined, rng: Rng): PlistDict {
  const out: PlistDict = {};
  for (const q of queries ?? DEFAULT_QUERIES) {
    const v = query(d, q, rng);
    if (v !== undefined) out[q] = v;
  }
  return out;
}

function query(d: DeviceProfile, q: string, rng: Rng): PlistValue | undefined {
  const mac = d.platform === "macOS";
  switch (q) {
    case "UDID":
      return d.udid;
    case "SerialNumber":
      return d.serialNumber;
    case "DeviceName":
    case "OSVersion":
    case "BuildVersion":
    case "ModelName":
    case "Model":
    case "ProductName":
      return d.facts[q];
    case "DeviceCapacity":
      return real(d.capacity);
    case "AvailableDeviceCapacity":
      // It moves a little between answers, as free space does.
      return real(d.available - rng.next());
    case "BatteryLevel":
      return d.batteryLevel === undefined ? undefined : real(d.batteryLevel);
    case "WiFiMAC":
      return d.wifiMac;
    case "BluetoothMAC":
      return d.bluetoothMac;
    case "IsSupervised":
      return d.supervised;
    case "IsActivationLockEnabled":
    case "IsCloudBackupEnabled":
    case "IsDoNotDisturbInEffect":
    case "IsMDMLostModeEnabled":
    case "AwaitingConfiguration":
    case "iTunesStoreAccountIsActive":
      return false;
    case "IsDeviceLocatorServiceEnabled":
      return true;
    case "IMEI":
      return d.imei;
    case "ModemFirmwareVersion":
      return d.imei ? "2.20.03" : undefined;
    case "HostName":
    case "LocalHostName":
      return mac ? `sim-${d.serialNumber.toLowerCase()}${q === "HostName" ? ".local" : ""}` : undefined;
    case "SystemIntegrityProtectionEnabled":
    case "IsAppleSilicon":
      return mac ? true : undefined;
    case "ProvisioningUDID":
      return mac ? d.udid : undefined;
    case "SupplementalBuildVersion":
      return d.facts.BuildVersion;
    case "TimeZone":
      // iOS, iPadOS and tvOS answer it; macOS does not know the query.
      return mac ? undefined : "Europe/Zurich";
    default:
      return undefined;
  }
}

/** A number that goes out as <real> with two decimals, as a device writes capacities and levels. */
function real(n: number): number {
  const r = Math.round(n * 100) / 100;
  return Number.isInteger(r) ? r + 0.01 : r;
}

function profileList(d: DeviceProfile, user: SimUserProfile | undefined): PlistDict[] {
  if (user) {
    return [
      profile(`com.orchard.sim.user.${user.shortName}`, "Orchard Simulator: user settings", d.udid + user.guid, [
        { PayloadType: "com.apple.dock", PayloadDisplayName: "Dock" },
      ]),
    ];
  }
  return [
    profile("com.orchard.sim.enrollment", "Orchard Simulator: MDM enrollment", d.udid, [
      { PayloadType: "com.apple.mdm", PayloadDisplayName: "Mobile Device Management" },
      { PayloadType: "com.apple.security.pkcs12", PayloadDisplayName: d.identity.commonName },
      { PayloadType: "com.apple.security.root", PayloadDisplayName: d.ca.commonName },
    ]),
    profile("com.orchard.sim.wifi", "Orchard Simulator: Wi-Fi", d.udid + "wifi", [
      { PayloadType: "com.apple.wifi.managed", PayloadDisplayName: "Wi-Fi" },
    ]),
  ];
}

function profile(
  identifier: string,
  name: string,
  salt: string,
  payloads: Array<{ PayloadType: string; PayloadDisplayName: string }>,
): PlistDict {
  return {
    PayloadIdentifier: identifier,
    PayloadUUID: stableUuid(identifier + salt),
    PayloadDisplayName: name,
    PayloadOrganization: "Orchard Simulator",
    PayloadVersion: 1,
    PayloadRemovalDisallowed: false,
    HasRemovalPasscode: false,
    IsEncrypted: false,
    IsManaged: true,
    PayloadContent: payloads.map((p, i) => ({
      ...p,
      PayloadIdentifier: `${identifier}.${i}`,
      PayloadUUID: stableUuid(`${identifier}${salt}${i}`),
      PayloadVersion: 1,
    })),
  };
}

/** A UUID-shaped string derived from text, so a profile keeps its PayloadUUID between answers. */
function stableUuid(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    h1 = Math.imul(h1 ^ text.charCodeAt(i), 16777619) >>> 0;
    h2 = Math.imul(h2 + text.charCodeAt(i), 2654435761) >>> 0;
  }
  const hex = [h1, h2, h1 ^ h2, Math.imul(h1, 31) ^ h2]
    .map((n) => (n >>> 0).toString(16).padStart(8, "0"))
    .join("")
    .toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

interface App {
  Identifier: string;
  Name: string;
  ShortVersion: string;
  Version: string;
  BundleSize: number;
}

const MAC_APPS: App[] = [
  { Identifier: "com.apple.Safari", Name: "Safari", ShortVersion: "18.1", Version: "20619.2.8.11.10", BundleSize: 12_900_000 },
  { Identifier: "com.apple.iWork.Keynote", Name: "Keynote", ShortVersion: "14.2", Version: "7040.0.73", BundleSize: 707_000_000 },
  { Identifier: "com.apple.iWork.Pages", Name: "Pages", ShortVersion: "14.2", Version: "7040.0.73", BundleSize: 556_000_000 },
  {
    Identifier: "com.google.Chrome",
    Name: "Google Chrome",
    ShortVersion: "130.0.6723.117",
    Version: "6723.117",
    BundleSize: 1_240_000_000,
  },
  { Identifier: "com.tinyspeck.slackmacgap", Name: "Slack", ShortVersion: "4.41.97", Version: "441000097", BundleSize: 532_000_000 },
  { Identifier: "com.microsoft.Word", Name: "Microsoft Word", ShortVersion: "16.90", Version: "16.90.24101917", BundleSize: 2_350_000_000 },
];

const IOS_APPS: App[] = [
  { Identifier: "com.apple.Keynote", Name: "Keynote", ShortVersion: "14.2", Version: "7040.0.73", BundleSize: 580_000_000 },
  { Identifier: "com.apple.Pages", Name: "Pages", ShortVersion: "14.2", Version: "7040.0.73", BundleSize: 470_000_000 },
  { Identifier: "com.tinyspeck.chatlyio", Name: "Slack", ShortVersion: "24.11.10", Version: "24.11.10.0", BundleSize: 210_000_000 },
  {
    Identifier: "com.microsoft.Office.Outlook",
    Name: "Microsoft Outlook",
    ShortVersion: "4.2444.0",
    Version: "4.2444.0",
    BundleSize: 330_000_000,
  },
  {
    Identifier: "com.google.chrome.ios",
    Name: "Google Chrome",
    ShortVersion: "130.0.6723.90",
    Version: "6723.90",
    BundleSize: 260_000_000,
  },
];

function installedApplications(d: DeviceProfile, command: PlistDict): PlistDict[] {
  if (command.ManagedAppsOnly === true) return []; // nothing on a simulated device is a managed app
  const wanted = stringList(command.Identifiers);
  const apps = (d.platform === "macOS" ? MAC_APPS : IOS_APPS).filter((a) => !wanted || wanted.includes(a.Identifier));
  return apps.map((a) => (d.platform === "iOS" ? { ...a, DynamicSize: 48_000_000, Installing: false } : { ...a, Installing: false }));
}

function securityInfo(d: DeviceProfile): PlistDict {
  const managementStatus = { EnrolledViaDEP: false, UserApprovedEnrollment: true, IsUserEnrollment: false };
  if (d.platform === "macOS") {
    return {
      FDE_Enabled: true,
      FDE_HasPersonalRecoveryKey: true,
      FDE_HasInstitutionalRecoveryKey: false,
      SystemIntegrityProtectionEnabled: true,
      AuthenticatedRootVolumeEnabled: true,
      FirewallSettings: { FirewallEnabled: true, BlockAllIncoming: false, StealthMode: false },
      SecureBoot: { SecureBootLevel: "full", ExternalBootLevel: "disallowed" },
      BootstrapTokenAllowedForAuthentication: "allowed",
      BootstrapTokenRequiredForSoftwareUpdate: false,
      BootstrapTokenRequiredForKernelExtensionApproval: false,
      IsRecoveryLockEnabled: false,
      RemoteDesktopEnabled: false,
      ManagementStatus: managementStatus,
    };
  }
  return {
    HardwareEncryptionCaps: 3,
    PasscodePresent: true,
    PasscodeCompliant: true,
    PasscodeCompliantWithProfiles: true,
    PasscodeLockGracePeriodEnforced: 0,
    FDE_Enabled: false,
    ManagementStatus: managementStatus,
  };
}

function certificateList(d: DeviceProfile): PlistDict[] {
  return [
    { CommonName: d.identity.commonName, Data: d.identity.der, IsIdentity: true },
    { CommonName: d.ca.commonName, Data: d.ca.der, IsIdentity: false },
  ];
}

function userList(d: DeviceProfile): PlistDict[] {
  return d.users.map((u, i) => ({
    UserName: u.shortName,
    FullName: u.fullName,
    UserGUID: u.guid,
    UID: 1001 + i,
    IsLoggedIn: true,
    HasSecureToken: !u.network,
    MobileAccount: false,
    HasDataToSync: false,
  }));
}
