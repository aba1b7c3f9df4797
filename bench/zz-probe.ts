import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../src/store/index.ts";
import { createBenchDatabase, DEFAULT_POSTGRES_URL } from "./postgres.ts";
for (const backend of ["postgres", "sqlite"]) {
  const db = backend === "postgres" ? await createBenchDatabase(DEFAULT_POSTGRES_URL) : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "p-"));
  const store = await openStore(db?.url ?? `sqlite:${dir}/o.db`, dir);
  const now = Date.now();
  await store.ade.createServer({ name: "b", certPem: "x", keySealed: Buffer.from("x"), certNotAfter: 1 }, now);
  await store.ade.acquireSync("b", "h", now, 1e9);
  const serials: string[] = [];
  for (let p = 0; p < 100; p++) {
    const devices = Array.from({ length: 1000 }, (_, i) => ({ serialNumber: `S${String(p * 1000 + i).padStart(7, "0")}`, model: "m" }));
    serials.push(...devices.map((d) => d.serialNumber));
    await store.ade.applyPage("b", "h", { devices, cursor: "c", phase: "fetch" }, Date.now());
  }
  const t = performance.now();
  for (let b = 0; b < 10; b++) await store.ade.markAssigned("b", serials.slice(b * 1000, b * 1000 + 1000), "U", Date.now());
  console.log(backend, "markAssigned 10 x 1000", (performance.now() - t).toFixed(0), "ms");
  const n = await store.db.get("SELECT COUNT(*) AS n FROM ade_devices WHERE profile_uuid = 'U'");
  console.log(n);
  await store.close();
  await db?.drop();
}
