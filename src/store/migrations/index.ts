import { core } from "./001-core.ts";
import { userAuth } from "./002-userauth.ts";
import { push } from "./003-push.ts";
import { scep } from "./004-scep.ts";
import { rebind } from "./005-rebind.ts";
import { lockout } from "./006-lockout.ts";
import { pushCertExpiry } from "./007-pushcert-expiry.ts";
import { userGuids } from "./009-user-guids.ts";
import { rebindPush } from "./010-rebind-push.ts";
import { ddm } from "./011-ddm.ts";
import { webhooks } from "./012-webhooks.ts";
import { ddmAssets } from "./013-ddm-assets.ts";
import { devicePlatform } from "./014-device-platform.ts";
import { ade } from "./015-ade.ts";
import { softwareUpdates } from "./018-software-updates.ts";
import { operators } from "./019-operators.ts";
import { ddmCredentials } from "./020-ddm-credentials.ts";
import { inventory } from "./017-inventory.ts";
import { adeEnrollment } from "./016-ade-enrollment.ts";
import { inventoryTimeZone } from "./021-inventory-time-zone.ts";
import { updateZoneAsked } from "./022-update-zone-asked.ts";
import { ddmStatusReportRing } from "./023-ddm-status-report-ring.ts";
import { ddmStatusChannels } from "./024-ddm-status-channels.ts";
import { adeFetchId } from "./025-ade-fetch-id.ts";
import { updateTold } from "./026-update-told.ts";
import { authTokenScrub } from "./027-auth-token-scrub.ts";
import { operatorNamesFolded } from "./028-operator-names-folded.ts";
import { challengeOffers } from "./029-challenge-offers.ts";
import { noSha256Digests } from "./030-no-sha256-digests.ts";
import { deviceSerialFolded } from "./031-device-serial-folded.ts";
import type { Sql } from "../db.ts";

/** A numbered schema change. `{{serial}}`, `{{blob}}` are dialect types. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** A change to rows that SQL alone cannot make on both dialects, run after `sql` in the same transaction. */
  data?: (tx: Sql, dialect: "sqlite" | "postgres") => Promise<void>;
  /**
   * What keeps the migration from applying to this store's data, in words
   * for the operator (undefined: nothing). A migration held back is not
   * recorded as applied: the next start tries it again; those after it apply.
   */
  heldBy?: (tx: Sql, dialect: "sqlite" | "postgres") => Promise<string | undefined>;
}

export const migrations: readonly Migration[] = [
  core,
  userAuth,
  push,
  scep,
  rebind,
  lockout,
  pushCertExpiry,
  userGuids,
  rebindPush,
  ddm,
  webhooks,
  ddmAssets,
  devicePlatform,
  ade,
  softwareUpdates,
  operators,
  ddmCredentials,
  inventory,
  adeEnrollment,
  inventoryTimeZone,
  updateZoneAsked,
  ddmStatusReportRing,
  ddmStatusChannels,
  adeFetchId,
  updateTold,
  authTokenScrub,
  operatorNamesFolded,
  challengeOffers,
  noSha256Digests,
  deviceSerialFolded,
];

export function forDialect(sql: string, dialect: "sqlite" | "postgres"): string {
  const types = dialect === "sqlite" ? { serial: "INTEGER PRIMARY KEY", blob: "BLOB" } : { serial: "BIGSERIAL PRIMARY KEY", blob: "BYTEA" };
  return sql.replaceAll("{{serial}}", types.serial).replaceAll("{{blob}}", types.blob);
}
