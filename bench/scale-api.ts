// The scale scenario's API pages: with N enrollments in the store, how long
// the operator's list pages take (median of a few GETs each, one at a time,
// before the load runs). The ids are those bench/seed.ts writes.
import { performance } from "node:perf_hooks";
import { seededId } from "./seed.ts";

const TRIES = 5;

/** Path -> median ms of TRIES GETs; a page that does not answer 200 throws. */
export async function timeApiPages(url: string, apiKey: string, seeded: number, prefix: string): Promise<Record<string, number>> {
  const mid = seededId(prefix, Math.floor(seeded / 2));
  const pages = [
    "/v1/enrollments?limit=100",
    `/v1/enrollments?limit=100&cursor=${mid}`,
    "/v1/enrollments?limit=100&type=Device",
    "/v1/enrollments?limit=100&type=Device,UserEnrollmentDevice",
    "/v1/enrollments?limit=100&enabled=true",
    `/v1/enrollments/${mid}`,
    `/v1/queue/${mid}`,
    `/v1/enrollments/${mid}/commands?limit=100`,
    "/v1/events?limit=100",
    "/v1/events?limit=100&order=desc",
    `/v1/events?limit=100&enrollment=${mid}`,
    "/v1/events?limit=100&type=push.sent",
  ];
  const headers = { authorization: "Basic " + Buffer.from(`x:${apiKey}`).toString("base64") };
  const out: Record<string, number> = {};
  for (const page of pages) {
    const ms: number[] = [];
    for (let i = 0; i < TRIES; i++) {
      const t0 = performance.now();
      const res = await fetch(url + page, { headers });
      await res.arrayBuffer();
      ms.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`GET ${page}: HTTP ${res.status}`);
    }
    ms.sort((a, b) => a - b);
    out[page] = Math.round(ms[Math.floor(TRIES / 2)]! * 100) / 100;
  }
  return out;
}
