import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, apiResult, get, query, seg } from "../api.ts";
import type {
  CommandHistoryPage,
  CommandJson,
  EnqueueResult,
  EnrollmentJson,
  EnrollmentPage,
  EventPage,
  InventoryRecordJson,
  PushResult,
  QueueCleared,
  QueueJson,
  RebindStateJson,
  UserSessionPage,
} from "../../http/wire.ts";
import { commandFields, COMMON_COMMANDS, commonCommand, type DevicePlatform, isRequired } from "../commands.ts";
import type { PageProps } from "../pages.ts";
import { commandPlist } from "../plist.ts";
import { href } from "../route.ts";
import { canChange } from "../session.ts";
import { ErrorNote, Field, Loading, Outcome, Pager, Section, Structured, TableHead, Time, useAction, useLoad, usePager } from "../ui.tsx";
import { EventTable } from "./events.tsx";

const DEVICE_TYPES = new Set(["Device", "UserEnrollmentDevice"]);

/** One device: its facts, channels, network users, queue and history, DDM state and events; the actions an operator takes on it. */
export function DevicePage({ route, session }: PageProps) {
  const deviceId = route.parts[1] ?? "";
  const channels = useLoad(`ch|${deviceId}`, () => get<EnrollmentPage>(`/v1/enrollments${query({ device: deviceId, limit: 1000 })}`));
  const list = channels.data?.enrollments ?? [];
  const device = list.find((e) => DEVICE_TYPES.has(e.type)) ?? list[0];
  const channelId = route.params.get("channel") ?? device?.id ?? deviceId;
  const channel = list.find((e) => e.id === channelId);
  const writable = canChange(session.operator.role);
  // A channel named in the address that the device no longer has (removed since, or mistyped).
  const channelGone = channels.data !== undefined && list.length > 0 && channel === undefined;
  return (
    <>
      <p class="crumbs">
        <a href={href(["devices"])}>Devices</a> /
      </p>
      <h1>{device?.device_name ?? deviceId}</h1>
      <Loading what={channels} />
      {channels.data && list.length === 0 && (
        <p class="error" role="alert">
          This device is not enrolled: it was removed, or never enrolled under this id.
        </p>
      )}
      {channelGone && (
        <p class="error" role="alert">
          Channel <code>{channelId}</code> is not enrolled: it was removed, or never enrolled under this id.
        </p>
      )}
      {device && <Facts e={device} />}
      {device && <Inventory deviceId={device.device_id} />}
      {list.length > 0 && (
        <Section title="Channels">
          <table>
            <TableHead columns={["Channel", "Type", "User", "Enrolled", "Last seen"]} />
            <tbody>
              {list.map((e) => (
                <tr key={e.id} class={e.id === channelId ? "selected" : undefined}>
                  <td>
                    <a href={href(["device", deviceId], { channel: e.id })} aria-current={e.id === channelId ? "true" : undefined}>
                      <code>{e.id}</code>
                    </a>
                  </td>
                  <td>{e.type}</td>
                  <td>{e.user_short_name ?? ""}</td>
                  <td>{e.enabled ? "yes" : "no"}</td>
                  <td>
                    <Time at={e.last_seen_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      {device && <Rebind deviceId={device.device_id} writable={writable} />}
      {device && <NetworkUsers deviceId={device.device_id} />}
      {channel && <Commands channel={channel} platform={device?.platform ?? null} writable={writable} onGone={channels.reload} />}
      {channel && <Ddm channelId={channel.id} />}
      {channel && (
        <Section title="Events">
          <ChannelEvents channelId={channel.id} />
        </Section>
      )}
    </>
  );
}

function Facts({ e }: { e: EnrollmentJson }) {
  const rows: Array<[string, string | null]> = [
    ["UDID", e.device_id],
    ["Serial number", e.serial_number],
    ["Model", [e.model_name, e.model].filter(Boolean).join(" · ") || null],
    ["Platform", e.platform],
    ["OS", [e.os_version, e.build_version && `(${e.build_version})`].filter(Boolean).join(" ") || null],
    ["Push topic", e.topic],
    ["Enrolled since", e.created_at],
  ];
  return (
    <Section title="Facts">
      <dl class="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{k === "Enrolled since" ? <Time at={v} /> : (v ?? <span class="muted">unknown</span>)}</dd>
          </div>
        ))}
        <div>
          <dt>Last seen</dt>
          <dd>
            <Time at={e.last_seen_at} />
          </dd>
        </div>
      </dl>
    </Section>
  );
}

/** Where a field was learned (docs/inventory.md), in words. */
const SOURCES: Record<string, string> = {
  authenticate: "Authenticate",
  "device-information": "DeviceInformation",
  "security-info": "SecurityInfo",
  "ddm-status": "DDM status",
};

/** The device's inventory record (GET /v1/inventory/{id}): every known field with where and when it was learned. */
function Inventory({ deviceId }: { deviceId: string }) {
  const record = useLoad(`inv|${deviceId}`, async () => {
    try {
      return await get<InventoryRecordJson>(`/v1/inventory/${seg(deviceId)}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  });
  const fields = Object.entries(record.data?.fields ?? {});
  return (
    <Section title="Inventory">
      <Loading what={record} />
      {record.data === null && <p class="muted">No inventory record yet.</p>}
      {record.data && (
        <table class="inventory">
          <TableHead columns={["Field", "Value", "Source", "Learned"]} />
          <tbody>
            {fields.map(([name, f]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{f && typeof f.value === "object" ? <Structured value={f.value} /> : String(f?.value)}</td>
                <td>{f?.source ? (SOURCES[f.source] ?? f.source) : ""}</td>
                <td>
                  <Time at={f?.learned_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {record.data && fields.length === 0 && <p class="muted">Nothing learned yet.</p>}
    </Section>
  );
}

/** A held re-binding (docs/enrolling-devices.md): the certificates waiting, each approvable. */
function Rebind({ deviceId, writable }: { deviceId: string; writable: boolean }) {
  const state = useLoad(`rb|${deviceId}`, () => get<RebindStateJson>(`/v1/enrollments/${seg(deviceId)}/rebind`));
  const act = useAction();
  const held = state.data?.held_certificates ?? [];
  if (held.length === 0) return null;
  return (
    <Section title="Held re-binding">
      <p>
        This device asked to enroll again with another identity certificate. It is bound to <code>{state.data?.cert_fingerprint}</code> and
        was last in contact <Time at={state.data?.last_contact_at} />.
      </p>
      <table>
        <TableHead columns={["Certificate (SHA-256)", "Attempts", "Last held", "Action"]} />
        <tbody>
          {held.map((c) => (
            <tr key={c.cert_fingerprint}>
              <td>
                <code>{c.cert_fingerprint}</code>
              </td>
              <td class="num">{c.attempts}</td>
              <td>
                <Time at={c.last_held_at} />
              </td>
              <td>
                {state.data?.held?.cert_fingerprint === c.cert_fingerprint && state.data.held.approved_at ? (
                  "approved"
                ) : writable ? (
                  <button
                    type="button"
                    disabled={act.busy}
                    onClick={() =>
                      act.run(async () => {
                        await api("POST", `/v1/enrollments/${seg(deviceId)}/rebind`, { fingerprint: c.cert_fingerprint });
                        state.reload();
                        return "Approved: the device is re-bound at its next Authenticate with this certificate.";
                      })
                    }
                  >
                    Approve
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Outcome of={act} />
    </Section>
  );
}

function NetworkUsers({ deviceId }: { deviceId: string }) {
  const sessions = useLoad(`us|${deviceId}`, () => get<UserSessionPage>(`/v1/user-sessions${query({ device: deviceId, limit: 100 })}`));
  const list = sessions.data?.sessions ?? [];
  if (list.length === 0) return null;
  return (
    <Section title="Network users">
      <table>
        <TableHead columns={["User", "State", "Challenged", "Token issued", "Token last used", "Refusals"]} />
        <tbody>
          {list.map((s) => (
            <tr key={s.enrollment_id}>
              <td>
                <a href={href(["device", deviceId], { channel: s.enrollment_id })}>{s.short_name ?? s.user_id}</a>
              </td>
              <td>{s.state}</td>
              <td>
                <Time at={s.challenged_at} />
              </td>
              <td>
                <Time at={s.token_issued_at} />
              </td>
              <td>
                <Time at={s.token_last_used_at} />
              </td>
              <td>
                <Refusals channelId={s.enrollment_id} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

/** A user channel's refused logins and requests, newest first. */
function Refusals({ channelId }: { channelId: string }) {
  const events = useLoad(`rf|${channelId}`, async () => {
    const [failed, refused] = await Promise.all(
      ["userauth.failed", "userauth.token_refused"].map((type) =>
        get<EventPage>(`/v1/events${query({ enrollment: channelId, type, order: "desc", limit: 5 })}`),
      ),
    );
    return [...failed!.events, ...refused!.events].sort((a, b) => b.id - a.id).slice(0, 5);
  });
  const list = events.data ?? [];
  if (list.length === 0) return <span class="muted">none</span>;
  return (
    <ul class="plain">
      {list.map((e) => (
        <li key={e.id}>
          <Time at={e.at} />: {String(e.detail?.cause ?? e.detail?.reason ?? e.type)}
        </li>
      ))}
    </ul>
  );
}

/** An answer saying the channel is no enrollment (any more): its queue and history are 404 then. */
const isGone = (e: unknown) => e instanceof ApiError && e.status === 404;

function Commands({
  channel,
  platform,
  writable,
  onGone,
}: {
  channel: EnrollmentJson;
  platform: DevicePlatform;
  writable: boolean;
  /** The channel was removed while the page was open: the page reads the device's channels again and says so. */
  onGone: () => void;
}) {
  const id = channel.id;
  const queue = useLoad(`q|${id}`, () => get<QueueJson>(`/v1/queue/${seg(id)}`), { pollMs: 5000 });
  const pager = usePager(id);
  const history = useLoad(`h|${id}|${pager.cursor ?? ""}`, () =>
    get<CommandHistoryPage>(`/v1/enrollments/${seg(id)}/commands${query({ cursor: pager.cursor, limit: 25 })}`),
  );
  const gone = isGone(queue.error) || isGone(history.error);
  useEffect(() => {
    if (gone) onGone();
  }, [gone]);
  // The history follows the queue: when a poll finds the queue changed (a command answered, or put off with
  // NotNow), the history is read again, so it never shows waiting what the queue no longer holds.
  const queueState = queue.data?.commands.map((c) => `${c.command_uuid}:${c.status}:${c.not_now_count}`).join(",");
  const seenQueue = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (queueState === undefined) return;
    if (seenQueue.current !== undefined && seenQueue.current !== queueState) history.reload();
    seenQueue.current = queueState;
  }, [queueState]);
  const [open, setOpen] = useState<string>();
  const act = useAction();
  const refresh = () => (queue.reload(), history.reload());
  if (gone) return null;
  return (
    <>
      {writable && (
        <Section title="Actions">
          <div class="actions">
            <button
              type="button"
              disabled={act.busy}
              onClick={() =>
                act.run(async () => {
                  const { result } = await apiResult<PushResult>("POST", `/v1/push/${seg(id)}`);
                  const err = result.push_error ?? result.status?.[id]?.push_error;
                  if (err) throw new Error(`The push failed: ${err}`);
                  return "Pushed: the device will check in.";
                })
              }
            >
              Push
            </button>
            <button
              type="button"
              disabled={act.busy || (queue.data?.commands.length ?? 0) === 0}
              onClick={() =>
                act.run(async () => {
                  const r = await api<QueueCleared>("DELETE", `/v1/queue/${seg(id)}`);
                  refresh();
                  return `Queue cleared: ${r.removed} command(s) removed.`;
                })
              }
            >
              Clear the queue
            </button>
          </div>
          <Outcome of={act} />
          <QueueCommand channelId={id} platform={platform} onQueued={refresh} />
        </Section>
      )}
      <Section title="Queue">
        <Loading what={queue} />
        {queue.data && queue.data.commands.length === 0 && <p class="muted">Nothing queued.</p>}
        {queue.data && queue.data.commands.length > 0 && (
          <table>
            <TableHead columns={["Command", "Status", "Not now", "Queued"]} />
            <tbody>
              {queue.data.commands.map((c) => (
                <tr key={c.command_uuid}>
                  <td>
                    {c.request_type} <code class="small">{c.command_uuid}</code>
                  </td>
                  <td>{c.status}</td>
                  <td class="num">{c.not_now_count}</td>
                  <td>
                    <Time at={c.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Command history">
        <Loading what={history} />
        {history.data && (
          <>
            <table>
              <TableHead columns={["Command", "Status", "Queued", "Updated", "Result"]} />
              <tbody>
                {history.data.commands.map((c) => (
                  <>
                    <tr key={c.command_uuid}>
                      <td>
                        {c.request_type} <code class="small">{c.command_uuid}</code>
                      </td>
                      <td class={`status-${c.status}`}>{c.status}</td>
                      <td>
                        <Time at={c.created_at} />
                      </td>
                      <td>
                        <Time at={c.updated_at} />
                      </td>
                      <td>
                        {c.active ? (
                          <span class="muted">waiting</span>
                        ) : (
                          <button
                            type="button"
                            aria-expanded={open === c.command_uuid}
                            onClick={() => setOpen(open === c.command_uuid ? undefined : c.command_uuid)}
                          >
                            {open === c.command_uuid ? "Hide" : "Show"} result
                          </button>
                        )}
                      </td>
                    </tr>
                    {open === c.command_uuid && (
                      <tr key={`${c.command_uuid}-r`}>
                        <td colSpan={5}>
                          <CommandResult uuid={c.command_uuid} channelId={id} />
                        </td>
                      </tr>
                    )}
                  </>
                ))}
              </tbody>
            </table>
            {history.data.commands.length === 0 && <p class="muted">No command yet.</p>}
            <Pager pager={pager} nextCursor={history.data.next_cursor} />
          </>
        )}
      </Section>
    </>
  );
}

function CommandResult({ uuid, channelId }: { uuid: string; channelId: string }) {
  const r = useLoad(`r|${uuid}|${channelId}`, () => get<CommandJson>(`/v1/commands/${seg(uuid)}${query({ enrollment: channelId })}`));
  const result = r.data?.results[0];
  return (
    <div class="result">
      <Loading what={r} />
      {result && (result.result ? <Structured value={result.result} /> : <p class="muted">No report stored.</p>)}
    </div>
  );
}

/** The common commands with a form for their fields, or a raw command plist. */
function QueueCommand({ channelId, platform, onQueued }: { channelId: string; platform: DevicePlatform; onQueued: () => void }) {
  const [type, setType] = useState(COMMON_COMMANDS[0]!.requestType);
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [raw, setRaw] = useState("");
  const act = useAction();
  const cmd = commonCommand(type);
  const queue = (body: string) =>
    act.run(async () => {
      const { result: r, warnings } = await apiResult<EnqueueResult>("PUT", `/v1/enqueue/${seg(channelId)}`, body, {
        contentType: "application/xml",
      });
      onQueued();
      const s = r.status?.[channelId];
      if (r.command_error || s?.command_error) throw new Error(r.command_error ?? s?.command_error);
      const done = `Queued ${r.request_type} (${r.command_uuid}).`;
      // The server's warnings (a raw command's RequestType Apple's schema does not know, most often a typo): queued all the same.
      const said = [...warnings];
      const pushError = r.push_error ?? s?.push_error;
      // Queued, but the device was not woken: it gets the command when it next checks in of its own accord.
      if (pushError) said.push(`The push failed: ${pushError}. The command waits until the device checks in.`);
      return said.length > 0 ? { done, warning: said.join(" ") } : done;
    });
  const submit = (e: Event) => {
    e.preventDefault();
    if (type === "raw") return void queue(raw);
    if (!cmd) return;
    const built = commandFields(cmd, values, platform);
    if ("errors" in built) return void act.run(async () => Promise.reject(new Error(built.errors.join("; "))));
    if (cmd.confirm && !confirm(cmd.confirm)) return;
    void queue(commandPlist(cmd.requestType, built.fields, crypto.randomUUID()));
  };
  return (
    <form class="queue" onSubmit={submit} aria-label="Queue a command">
      <h3>Queue a command</h3>
      <Field label="Command">
        <select
          name="command"
          value={type}
          onChange={(e) => {
            setType(e.currentTarget.value);
            setValues({});
          }}
        >
          {COMMON_COMMANDS.map((c) => (
            <option key={c.requestType} value={c.requestType}>
              {c.label} ({c.requestType})
            </option>
          ))}
          <option value="raw">Raw plist…</option>
        </select>
      </Field>
      {cmd?.fields.map((f) =>
        f.kind === "boolean" ? (
          <label class="check" key={f.key}>
            <input
              type="checkbox"
              name={f.key}
              checked={Boolean(values[f.key] ?? f.initial)}
              onChange={(e) => setValues({ ...values, [f.key]: e.currentTarget.checked })}
            />
            {f.label}
          </label>
        ) : f.kind === "list" ? (
          <Field label={f.label} key={f.key} help={f.help}>
            <textarea
              name={f.key}
              rows={6}
              value={String(values[f.key] ?? f.initial ?? "")}
              onInput={(e) => setValues({ ...values, [f.key]: e.currentTarget.value })}
            />
          </Field>
        ) : (
          <Field label={f.label} key={f.key} help={f.help}>
            <input
              name={f.key}
              required={isRequired(f, platform)}
              inputMode={f.kind === "number" ? "numeric" : undefined}
              value={String(values[f.key] ?? f.initial ?? "")}
              onInput={(e) => setValues({ ...values, [f.key]: e.currentTarget.value })}
            />
          </Field>
        ),
      )}
      {type === "raw" && (
        <Field label="Command plist (XML)" help="A dict with Command (RequestType and its keys) and CommandUUID.">
          <textarea name="raw" rows={10} class="code" spellcheck={false} value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />
        </Field>
      )}
      <button type="submit" disabled={act.busy}>
        Queue
      </button>
      <Outcome of={act} />
    </form>
  );
}

interface DeclarationStatus {
  identifier: string;
  active: boolean;
  valid: string;
  "server-token": string;
  current: boolean;
  status_received: string;
  reasons?: unknown;
}

function Ddm({ channelId }: { channelId: string }) {
  const sets = useLoad(`ds|${channelId}`, () => get<string[]>(`/v1/enrollment-sets/${seg(channelId)}`));
  const status = useLoad(`dst|${channelId}`, () => get<Record<string, DeclarationStatus[]>>(`/v1/declaration-status/${seg(channelId)}`));
  const reported = status.data?.[channelId] ?? [];
  return (
    <Section title="Declarative management">
      <ErrorNote error={sets.error ?? status.error} />
      <p>
        Sets:{" "}
        {(sets.data ?? []).length === 0 ? (
          <span class="muted">none</span>
        ) : (
          sets.data!.map((s, i) => (
            <>
              {i > 0 && ", "}
              <a key={s} href={href(["ddm"], { set: s })}>
                {s}
              </a>
            </>
          ))
        )}
      </p>
      {reported.length > 0 ? (
        <table>
          <TableHead columns={["Declaration", "Active", "Valid", "Current", "Reported", "Reasons"]} />
          <tbody>
            {reported.map((d) => (
              <tr key={d.identifier}>
                <td>{d.identifier}</td>
                <td>{d.active ? "yes" : "no"}</td>
                <td>{d.valid}</td>
                <td>{d.current ? "yes" : "not yet"}</td>
                <td>
                  <Time at={d.status_received} />
                </td>
                <td>{d.reasons ? <Structured value={d.reasons} /> : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No declaration status reported.</p>
      )}
    </Section>
  );
}

function ChannelEvents({ channelId }: { channelId: string }) {
  const events = useLoad(
    `ev|${channelId}`,
    () => get<EventPage>(`/v1/events${query({ enrollment: channelId, order: "desc", limit: 50 })}`),
    {
      pollMs: 5000,
    },
  );
  return (
    <>
      <Loading what={events} />
      {events.data && <EventTable events={events.data.events} />}
      <p>
        <a href={href(["events"], { enrollment: channelId })}>All events of this channel</a>
      </p>
    </>
  );
}
