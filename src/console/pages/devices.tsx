import { useEffect, useState } from "preact/hooks";
import { get, query } from "../api.ts";
import type { EnrollmentJson, EnrollmentPage } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href, navigate } from "../route.ts";
import { Field, Loading, Pager, Time, useLoad, usePager } from "../ui.tsx";

const PAGE = 50;
const PLATFORMS = ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"];
/** Which channels the list shows: devices (the default), users, or every channel. */
const KINDS: Record<string, string | undefined> = {
  devices: "Device,UserEnrollmentDevice",
  users: "User,SharediPadUser,UserEnrollmentUser",
  all: undefined,
};

/** One row of the list links to its device's page (its device channel). */
export function deviceHref(e: Pick<EnrollmentJson, "device_id">): string {
  return href(["device", e.device_id]);
}

/** The device list: search and filters live in the URL (the overview links here), pages by cursor. */
export function DevicesPage({ route }: PageProps) {
  const p = route.params;
  const filters = {
    q: p.get("q") ?? "",
    platform: p.get("platform") ?? "",
    kind: p.get("kind") ?? "devices",
    enabled: p.get("enabled") ?? "",
    seen_before: p.get("seen_before") ?? "",
  };
  const key = JSON.stringify(filters);
  const pager = usePager(key);
  const [q, setQ] = useState(filters.q);
  useEffect(() => setQ(filters.q), [filters.q]);
  const list = useLoad(`${key}|${pager.cursor ?? ""}`, () =>
    get<EnrollmentPage>(
      `/v1/enrollments${query({
        q: filters.q,
        platform: filters.platform,
        type: KINDS[filters.kind],
        enabled: filters.enabled,
        seen_before: filters.seen_before,
        cursor: pager.cursor,
        limit: PAGE,
      })}`,
    ),
  );
  const set = (change: Partial<typeof filters>) =>
    navigate(href(["devices"], { ...filters, kind: undefined, ...nonDefault({ ...filters, ...change }) }));
  return (
    <>
      <h1>Devices</h1>
      <form
        class="filters"
        aria-label="Search devices"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: q.trim() });
        }}
      >
        <Field label="Search serial, UDID, name or user">
          <input type="search" name="q" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <Field label="Platform">
          <select name="platform" value={filters.platform} onChange={(e) => set({ platform: e.currentTarget.value })}>
            <option value="">any</option>
            {PLATFORMS.map((pl) => (
              <option key={pl} value={pl}>
                {pl}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Channels">
          <select name="kind" value={filters.kind} onChange={(e) => set({ kind: e.currentTarget.value })}>
            <option value="devices">devices</option>
            <option value="users">users</option>
            <option value="all">all</option>
          </select>
        </Field>
        <Field label="State">
          <select name="enabled" value={filters.enabled} onChange={(e) => set({ enabled: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="1">enrolled</option>
            <option value="0">unenrolled</option>
          </select>
        </Field>
        <button type="submit">Search</button>
        {filters.seen_before && (
          <p class="chip">
            Not seen since <Time at={filters.seen_before} />{" "}
            <button type="button" onClick={() => set({ seen_before: "" })}>
              Clear
            </button>
          </p>
        )}
      </form>
      <Loading what={list} />
      {list.data && (
        <>
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Serial</th>
                <th scope="col">Platform</th>
                <th scope="col">OS</th>
                <th scope="col">Channel</th>
                <th scope="col">Enrolled</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {list.data.enrollments.map((e) => (
                <tr key={e.id}>
                  <td>
                    <a href={deviceHref(e)}>{e.device_name ?? e.device_id}</a>
                  </td>
                  <td>{e.serial_number ?? ""}</td>
                  <td>{e.platform ?? ""}</td>
                  <td>{e.os_version ?? ""}</td>
                  <td>{e.user_short_name ? `${e.type}: ${e.user_short_name}` : e.type}</td>
                  <td>{e.enabled ? "yes" : "no"}</td>
                  <td>
                    <Time at={e.last_seen_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {list.data.enrollments.length === 0 && <p class="muted">No channel matches.</p>}
          <Pager pager={pager} nextCursor={list.data.next_cursor} />
        </>
      )}
    </>
  );
}

function nonDefault(f: Record<string, string>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(f)) out[k] = v === "" || (k === "kind" && v === "devices") ? undefined : v;
  return out;
}
