import { BadRequest } from "../errors.ts";

/** Shared iPad user channels carry this UserID (brief section 3). */
export const SHARED_IPAD_USER_ID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF";

export type EnrollmentType = "Device" | "User" | "SharediPadUser" | "UserEnrollmentDevice" | "UserEnrollmentUser";

/** Which channel a message belongs to, with NanoMDM's id convention. */
export interface Channel {
  /** The channel's enrollment id: `UDID`, `UDID:UserID`, `UDID:UserShortName`, `EnrollmentID` or `EnrollmentUserID`. */
  id: string;
  /** The device channel's id (the parent of a user channel). */
  deviceId: string;
  type: EnrollmentType;
  /** The user part of a user channel: GUID, Shared iPad short name, or EnrollmentUserID. */
  userId?: string;
  isUserChannel: boolean;
}

export interface ChannelKeys {
  UDID?: unknown;
  UserID?: unknown;
  UserShortName?: unknown;
  EnrollmentID?: unknown;
  EnrollmentUserID?: unknown;
}

/** Resolves a message's channel from its identity keys (brief section 3). */
export function resolveChannel(keys: ChannelKeys): Channel {
  const udid = optionalId(keys.UDID, "UDID");
  const enrollmentId = optionalId(keys.EnrollmentID, "EnrollmentID");
  if (udid !== undefined && enrollmentId !== undefined) {
    throw new BadRequest("message carries both UDID and EnrollmentID");
  }
  if (udid !== undefined) {
    const userId = optionalId(keys.UserID, "UserID");
    if (userId === undefined) return { id: udid, deviceId: udid, type: "Device", isUserChannel: false };
    if (userId === SHARED_IPAD_USER_ID) {
      const shortName = optionalId(keys.UserShortName, "UserShortName");
      if (shortName === undefined) throw new BadRequest("Shared iPad user channel without UserShortName");
      return { id: `${udid}:${shortName}`, deviceId: udid, type: "SharediPadUser", userId: shortName, isUserChannel: true };
    }
    return { id: `${udid}:${userId}`, deviceId: udid, type: "User", userId, isUserChannel: true };
  }
  if (enrollmentId !== undefined) {
    const enrollmentUserId = optionalId(keys.EnrollmentUserID, "EnrollmentUserID");
    if (enrollmentUserId === undefined) {
      return { id: enrollmentId, deviceId: enrollmentId, type: "UserEnrollmentDevice", isUserChannel: false };
    }
    return {
      id: enrollmentUserId,
      deviceId: enrollmentId,
      type: "UserEnrollmentUser",
      userId: enrollmentUserId,
      isUserChannel: true,
    };
  }
  throw new BadRequest("message has neither UDID nor EnrollmentID");
}

const MAX_ID_LENGTH = 256;

function optionalId(value: unknown, key: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new BadRequest(`${key} is not a string`);
  if (value.length === 0) return undefined;
  if (value.length > MAX_ID_LENGTH) throw new BadRequest(`${key} is longer than ${MAX_ID_LENGTH} characters`);
  // Ids become parts of other ids and of URLs: no separators, no control characters.
  if (/[\u0000-\u001f\u007f,/:]/.test(value)) {
    throw new BadRequest(`${key} contains a character not allowed in an id`);
  }
  return value;
}
