import { useEffect, useState } from "preact/hooks";
import { get, query, seg } from "../api.ts";
import type { EnrollmentJson, EnrollmentPage, InventoryPage, UpdateDevicePage } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href, navigate } from "../route.ts";
import { Field, Loading, Options, Pager, TableHead, Time, useLoad, usePager } from "../ui.tsx";

const PAGE = 50;
export const PLATFORMS = ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"];
/** softwareupdate.install-state, as the inventory filters it (GET /v1/inventory?update_state=). */
const UPDATE_STATES = ["none", "waiting", "downloading", "prepared", "installing", "failed"];
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
    model: p.get("model") ?? "",
    os_version: p.get("os_version") ?? "",
    os_below: p.get("os_below") ?? "",
    update_state: p.get("update_state") ?? "",
    policy: p.get("policy") ?? "",
    compliance: p.get("compliance") ?? "",
  };
  // The inventory's filters (model, OS version, OS version below, update state) are GET /v1/inventory's; an update
  // policy's compliance state is GET /v1/updates/policies/{name}/devices'. Search and channel kinds are the enrollments'.
  const source = filters.policy
    ? "policy"
    : filters.model || filters.os_version || filters.os_below || filters.update_state
      ? "inventory"
      : "enrollments";
  const key = JSON.stringify(filters);
  const pager = usePager(key);
  const [q, setQ] = useState(filters.q);
  const [model, setModel] = useState(filters.model);
  const [osVersion, setOsVersion] = useState(filters.os_version);
  const [osBelow, setOsBelow] = useState(filters.os_below);
  useEffect(() => setQ(filters.q), [filters.q]);
  useEffect(() => setModel(filters.model), [filters.model]);
  useEffect(() => setOsVersion(filters.os_version), [filters.os_version]);
  useEffect(() => setOsBelow(filters.os_below), [filters.os_below]);
  const list = useLoad(`${key}|${pager.cursor ?? ""}`, () => loadRows(source, filters, pager.cursor));
  const set = (change: Partial<Filters>) =>
    navigate(href(["devices"], { ...filters, kind: undefined, ...nonDefault({ ...filters, ...change }) }));
  return (
    <>
      <h1>Devices</h1>
      <form
        class="filters"
        aria-label="Search devices"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: q.trim(), model: model.trim(), os_version: osVersion.trim(), os_below: osBelow.trim() });
        }}
      >
        <Field label="Search serial, UDID, name or user">
          <input type="search" name="q" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </Field>
        <Field label="Platform">
          <select name="platform" value={filters.platform} onChange={(e) => set({ platform: e.currentTarget.value })}>
            <option value="">any</option>
            <Options values={PLATFORMS} />
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
        <Field label="Model">
          <input name="model" value={model} placeholder="Mac14,2 or MacBook Air" onInput={(e) => setModel(e.currentTarget.value)} />
        </Field>
        <Field label="OS version">
          <input
            name="os_version"
            value={osVersion}
            placeholder="15.2"
            inputMode="decimal"
            onInput={(e) => setOsVersion(e.currentTarget.value)}
          />
        </Field>
        <Field label="OS version below">
          <input
            name="os_below"
            value={osBelow}
            placeholder="15.2"
            inputMode="decimal"
            onInput={(e) => setOsBelow(e.currentTarget.value)}
          />
        </Field>
        <Field label="Update state">
          <select name="update_state" value={filters.update_state} onChange={(e) => set({ update_state: e.currentTarget.value })}>
            <option value="">any</option>
            <Options values={UPDATE_STATES} />
          </select>
        </Field>
        <button type="submit">Search</button>
        {source === "inventory" && (filters.q || filters.kind !== "devices" || filters.enabled) && (
          <p class="chip muted">The inventory's filters list devices: search, channels and state do not apply.</p>
        )}
        {filters.policy && (
          <p class="chip">
            Update policy <strong>{filters.policy}</strong>
            {filters.compliance && `: ${filters.compliance.replace(/_/g, " ")}`}{" "}
            <button type="button" onClick={() => set({ policy: "", compliance: "" })}>
              Clear
            </button>
          </p>
        )}
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
            <TableHead
              columns={[
                "Name",
                "Serial",
                list.data.kind === "policy" ? "Update state" : "Platform",
                list.data.kind === "enrollments" ? "OS" : list.data.kind === "inventory" ? "OS" : "Target",
                list.data.kind === "enrollments" ? "Channel" : list.data.kind === "inventory" ? "Model" : "Reason",
                list.data.kind === "inventory" ? "Update" : list.data.kind === "policy" ? "Policy" : "Enrolled",
                list.data.kind === "policy" ? "Updated" : "Last seen",
              ]}
            />
            <tbody>
              {list.data.rows.map((r) => (
                <tr key={r.key}>
                  <td>
                    <a href={href(["device", r.deviceId])}>{r.name}</a>
                  </td>
                  {r.cells.map((c, i) => (
                    <td key={i}>{c}</td>
                  ))}
                  <td>
                    <Time at={r.at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {list.data.rows.length === 0 && <p class="muted">No {list.data.kind === "enrollments" ? "channel" : "device"} matches.</p>}
          <Pager pager={pager} nextCursor={list.data.next_cursor} />
        </>
      )}
    </>
  );
}

type Filters = Record<
  "q" | "platform" | "kind" | "enabled" | "seen_before" | "model" | "os_version" | "os_below" | "update_state" | "policy" | "compliance",
  string
>;

/** One row of the list, whichever API it came from: its link, name, five cells and a time. */
interface Row {
  key: string;
  deviceId: string;
  name: string;
  cells: string[];
  at: string | null;
}

async function loadRows(
  source: "enrollments" | "inventory" | "policy",
  f: Filters,
  cursor: string | undefined,
): Promise<{ kind: typeof source; rows: Row[]; next_cursor: string | null }> {
  if (source === "policy") {
    const page = await get<UpdateDevicePage>(
      `/v1/updates/policies/${seg(f.policy)}/devices${query({ state: f.compliance, cursor, limit: PAGE })}`,
    );
    // A policy's answer names each device channel by its id only: its name and serial are its enrollment's
    // (one GET /v1/enrollments/{id} a row; a channel removed since keeps its id for a name).
    const channels = await Promise.all(
      page.devices.map((d) => get<EnrollmentJson>(`/v1/enrollments/${seg(d.enrollment_id)}`).catch(() => undefined)),
    );
    return {
      kind: source,
      next_cursor: page.next_cursor,
      rows: page.devices.map((d, i) => ({
        key: d.enrollment_id,
        deviceId: channels[i]?.device_id ?? d.enrollment_id,
        name: channels[i]?.device_name ?? d.enrollment_id,
        cells: [
          channels[i]?.serial_number ?? "",
          d.state.replace(/_/g, " "),
          d.target ? `${d.target.os_version} by ${d.target.local_date_time}` : "",
          d.reason ?? "",
          d.policy,
        ],
        at: d.updated_at,
      })),
    };
  }
  if (source === "inventory") {
    const page = await get<InventoryPage>(
      `/v1/inventory${query({
        platform: f.platform,
        model: f.model,
        os_version: f.os_version,
        os_version_below: f.os_below,
        update_state: f.update_state,
        last_seen_before: f.seen_before,
        cursor,
        limit: PAGE,
      })}`,
    );
    return {
      kind: source,
      next_cursor: page.next_cursor,
      rows: page.devices.map((d) => ({
        key: d.device_id,
        deviceId: d.device_id,
        name: text(d.device_name) || d.device_id,
        cells: [
          text(d.serial_number),
          text(d.platform),
          text(d.os_version),
          text(d.model_name) || text(d.product_name),
          [text(d.update_install_state), text(d.update_pending_version)].filter(Boolean).join(" "),
        ],
        at: d.last_seen_at,
      })),
    };
  }
  const page = await get<EnrollmentPage>(
    `/v1/enrollments${query({
      q: f.q,
      platform: f.platform,
      type: KINDS[f.kind],
      enabled: f.enabled,
      seen_before: f.seen_before,
      cursor,
      limit: PAGE,
    })}`,
  );
  return {
    kind: source,
    next_cursor: page.next_cursor,
    rows: page.enrollments.map((e) => ({
      key: e.id,
      deviceId: e.device_id,
      name: e.device_name ?? e.device_id,
      cells: [
        e.serial_number ?? "",
        e.platform ?? "",
        e.os_version ?? "",
        e.user_short_name ? `${e.type}: ${e.user_short_name}` : e.type,
        e.enabled ? "yes" : "no",
      ],
      at: e.last_seen_at,
    })),
  };
}

/** An inventory value as text (the list's fields are text; null is empty). */
function text(v: unknown): string {
  return v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
}

function nonDefault(f: Record<string, string>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(f)) out[k] = v === "" || (k === "kind" && v === "devices") ? undefined : v;
  return out;
}
