import { useState } from "preact/hooks";
import { api, get, query, seg } from "../api.ts";
import type { AdeDevicePage, AdeEnrollmentJson, AdeEnrollmentPage, AdeServerList, AdeSyncJson } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href } from "../route.ts";
import { canChange } from "../session.ts";
import { Field, Loading, Options, Outcome, Pager, Section, TableHead, Time, useAction, useLoad, usePager } from "../ui.tsx";

const DAY_MS = 86_400_000;
/** The states an operator may release from (core/ade-setup.ts). */
const RELEASABLE = new Set(["profile_served", "running", "failed"]);
const ENROLLMENT_STATES = ["profile_served", "running", "releasing", "configured", "failed"];

/** Automated Device Enrollment: ABM servers and their tokens, the devices Apple lists, enrollments awaiting configuration. */
export function AdePage({ route, session }: PageProps) {
  const writable = canChange(session.operator.role);
  const servers = useLoad("ade-servers", () => get<AdeServerList>("/v1/ade/servers"));
  const act = useAction();
  return (
    <>
      <h1>Automated Device Enrollment</h1>
      <Section title="ABM servers">
        <Loading what={servers} />
        {servers.data && servers.data.servers.length === 0 && (
          <p class="muted">
            No ABM server yet: an admin adds one with <code>orchard ade servers add</code> (docs/automated-enrollment.md).
          </p>
        )}
        {servers.data && servers.data.servers.length > 0 && (
          <table>
            <TableHead
              columns={[
                "Server",
                "Organisation",
                "Token expires",
                "Devices",
                "Enrolled",
                "Default profile",
                "Last sync",
                writable && "Action",
              ]}
            />
            <tbody>
              {servers.data.servers.map((s) => {
                const days = s.token_expiry ? Math.floor((Date.parse(s.token_expiry) - Date.now()) / DAY_MS) : undefined;
                return (
                  <tr key={s.name}>
                    <td>{s.name}</td>
                    <td>{s.org_name ?? ""}</td>
                    <td class={days !== undefined && days < 30 ? "warn" : undefined}>
                      {days === undefined ? (
                        <span class="warn">no token uploaded</span>
                      ) : (
                        <time dateTime={s.token_expiry!} title={s.token_expiry!}>
                          {days} days left
                        </time>
                      )}
                    </td>
                    <td class="num">
                      <a href={href(["ade"], { server: s.name })}>{s.devices}</a>
                    </td>
                    <td class="num">{s.enrolled}</td>
                    <td>{s.default_profile ?? <span class="muted">none</span>}</td>
                    <td>
                      <Time at={s.last_sync_at} />
                      {s.last_sync_error && <span class="warn"> {s.last_sync_error}</span>}
                    </td>
                    {writable && (
                      <td>
                        <button
                          type="button"
                          disabled={act.busy || days === undefined}
                          onClick={() =>
                            act.run(async () => {
                              const r = await api<AdeSyncJson>("POST", `/v1/ade/servers/${seg(s.name)}/sync`);
                              servers.reload();
                              return `Synced ${s.name} (${r.phase}): ${r.fetched} listed, ${r.added} added, ${r.modified} changed, ${r.deleted} removed, ${r.assigned} assigned a profile.`;
                            })
                          }
                        >
                          Sync<span class="sr"> {s.name}</span>
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        <Outcome of={act} />
      </Section>
      <Enrollments writable={writable} state={route.params.get("state") ?? ""} />
      <Devices server={route.params.get("server") ?? ""} />
    </>
  );
}

/** Devices between the enrollment URL and DeviceConfigured, with their initial set's progress; release one by hand. */
function Enrollments({ writable, state }: { writable: boolean; state: string }) {
  const pager = usePager(`ae|${state}`);
  const list = useLoad(
    `ae|${state}|${pager.cursor ?? ""}`,
    () => get<AdeEnrollmentPage>(`/v1/ade/enrollments${query({ state, cursor: pager.cursor, limit: 50 })}`),
    { pollMs: 5000 },
  );
  const act = useAction();
  const release = (e: AdeEnrollmentJson) => {
    if (!confirm(`Release ${e.serial_number}? Setup Assistant continues without the steps still to run.`)) return;
    void act.run(async () => {
      const r = await api<AdeEnrollmentJson>("POST", `/v1/ade/enrollments/${seg(e.serial_number)}/release`);
      list.reload();
      return `${r.serial_number} released: DeviceConfigured queued (${r.progress}).`;
    });
  };
  return (
    <Section title="Enrollments awaiting configuration">
      <form class="filters" aria-label="Filter enrollments">
        <Field label="State">
          <select name="state" value={state} onChange={(e) => (location.hash = href(["ade"], { state: e.currentTarget.value }))}>
            <option value="">any</option>
            <Options values={ENROLLMENT_STATES} text={(s) => s.replace(/_/g, " ")} />
          </select>
        </Field>
      </form>
      <Loading what={list} />
      {list.data && (
        <>
          <table>
            <TableHead columns={["Serial", "Server", "Device", "OS", "Progress", "Since", writable && "Action"]} />
            <tbody>
              {list.data.enrollments.map((e) => (
                <tr key={e.serial_number}>
                  <td>{e.serial_number}</td>
                  <td>{e.server}</td>
                  <td>
                    <a href={href(["device", e.udid])}>{e.product ?? e.udid}</a>
                  </td>
                  <td>{[e.os_version, e.build_version && `(${e.build_version})`].filter(Boolean).join(" ")}</td>
                  <td class={e.state === "failed" ? "warn" : undefined}>
                    {e.progress}
                    {e.step_total > 0 && (
                      <progress
                        max={e.step_total}
                        value={e.steps_done}
                        aria-label={`${e.serial_number}: ${e.steps_done} of ${e.step_total} steps`}
                      />
                    )}
                  </td>
                  <td>
                    <Time at={e.started_at ?? e.served_at} />
                  </td>
                  {writable && (
                    <td>
                      {RELEASABLE.has(e.state) && (
                        <button type="button" disabled={act.busy} onClick={() => release(e)}>
                          Release<span class="sr"> {e.serial_number}</span>
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {list.data.enrollments.length === 0 && <p class="muted">No ADE device is on its way.</p>}
          <Pager pager={pager} nextCursor={list.data.next_cursor} />
        </>
      )}
      <Outcome of={act} />
    </Section>
  );
}

/** The devices ABM lists for Orchard, as last synced. */
function Devices({ server }: { server: string }) {
  const [serial, setSerial] = useState("");
  const [asked, setAsked] = useState("");
  const pager = usePager(`ad|${server}|${asked}`);
  const list = useLoad(`ad|${server}|${asked}|${pager.cursor ?? ""}`, () =>
    get<AdeDevicePage>(`/v1/ade/devices${query({ server, serial: asked, cursor: pager.cursor, limit: 50 })}`),
  );
  return (
    <Section title="Devices synced from ABM">
      <form
        class="filters"
        aria-label="Find an ABM device"
        onSubmit={(e) => {
          e.preventDefault();
          setAsked(serial.trim());
        }}
      >
        <Field label="Serial number">
          <input name="serial" value={serial} onInput={(e) => setSerial(e.currentTarget.value)} />
        </Field>
        <button type="submit">Find</button>
        {server && (
          <p class="chip">
            Server <strong>{server}</strong> <a href={href(["ade"])}>all servers</a>
          </p>
        )}
      </form>
      <Loading what={list} />
      {list.data && (
        <>
          <table>
            <TableHead columns={["Serial", "Model", "Server", "Profile", "Enrolled", "Assigned"]} />
            <tbody>
              {list.data.devices.map((d) => (
                <tr key={`${d.server}/${d.serial_number}`} class={d.removed ? "muted" : undefined}>
                  <td>{d.serial_number}</td>
                  <td>{d.description ?? d.model ?? ""}</td>
                  <td>{d.server}</td>
                  <td>{d.profile_status ?? ""}</td>
                  <td>{d.removed ? "removed from ABM" : d.enrolled ? "yes" : "no"}</td>
                  <td>
                    <Time at={d.device_assigned_date} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {list.data.devices.length === 0 && <p class="muted">No device.</p>}
          <Pager pager={pager} nextCursor={list.data.next_cursor} />
        </>
      )}
    </Section>
  );
}
