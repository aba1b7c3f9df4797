// The store contract on both backends: embedded SQLite, and PostgreSQL in a
// database of its own (skipped with a reason when PostgreSQL is not reachable).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe } from "node:test";
import { openStore } from "../src/store/index.ts";
import { createTestDatabase, postgresReachable } from "./support/postgres.ts";
import { storeContract } from "./support/store-contract.ts";
import { ddmStoreContract } from "./support/store-contract-ddm.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-store-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

storeContract("sqlite", () => openStore(`sqlite:${path.join(dir, "contract.db")}`, dir));
ddmStoreContract("sqlite", () => openStore(`sqlite:${path.join(dir, "contract-ddm.db")}`, dir));

if (await postgresReachable()) {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  after(() => database?.drop());
  storeContract("postgres", async () => {
    database = await createTestDatabase();
    return openStore(database.url, dir);
  });
  let ddmDatabase: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  after(() => ddmDatabase?.drop());
  ddmStoreContract("postgres", async () => {
    ddmDatabase = await createTestDatabase();
    return openStore(ddmDatabase.url, dir);
  });
} else {
  describe("Store contract: postgres", { skip: "PostgreSQL not reachable (set ORCHARD_TEST_POSTGRES)" }, () => {});
}
