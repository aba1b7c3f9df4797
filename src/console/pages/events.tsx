import { useState } from "preact/hooks";
import { get, query } from "../api.ts";
import type { EventJson, EventPage, EventTypeList } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href, navigate } from "../route.ts";
import { Field, LIVE_MS, LiveToggle, Loading, Pager, Structured, TableHead, Time, useLoad, usePager } from "../ui.tsx";

export function EventTable({ events }: { events: EventJson[] }) {
  if (events.length === 0) return <p class="muted">No event.</p>;
  return (
    <table class="events">
      <TableHead columns={["When", "Type", "Channel", "Detail"]} />
      <tbody>
        {events.map((e) => (
          <tr key={e.id}>
            <td>
              <Time at={e.at} />
            </td>
            <td>{e.type}</td>
            <td>
              {e.enrollment_id && (
                <a href={href(["device", e.enrollment_id.split(":")[0]!], { channel: e.enrollment_id })}>{e.enrollment_id}</a>
              )}
            </td>
            <td>{e.detail && <Structured value={e.detail} />}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Events, newest first, refreshed every few seconds while the first page is shown. */
export function EventsPage({ route }: PageProps) {
  const type = route.params.get("type") ?? "";
  const enrollment = route.params.get("enrollment") ?? "";
  const key = `${type}|${enrollment}`;
  const pager = usePager(key);
  const [live, setLive] = useState(true);
  const types = useLoad("types", () => get<EventTypeList>("/v1/event-types").catch(() => ({ event_types: [] })));
  const events = useLoad(
    `${key}|${pager.cursor ?? ""}`,
    () => get<EventPage>(`/v1/events${query({ type, enrollment, order: "desc", limit: 50, cursor: pager.cursor })}`),
    { pollMs: live && pager.page === 1 ? LIVE_MS : undefined },
  );
  const set = (p: Record<string, string>) => navigate(href(["events"], { type, enrollment, ...p }));
  return (
    <>
      <h1>Events</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Type">
          <select name="type" value={type} onChange={(e) => set({ type: e.currentTarget.value })}>
            <option value="">any</option>
            {types.data?.event_types.map((t) => (
              <option key={t.type} value={t.type} title={t.about}>
                {t.type}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Channel (enrollment id)">
          <input name="enrollment" value={enrollment} onChange={(e) => set({ enrollment: e.currentTarget.value.trim() })} />
        </Field>
        <LiveToggle live={live} set={setLive} />
      </form>
      <Loading what={events} />
      {events.data && (
        <>
          <EventTable events={events.data.events} />
          <Pager pager={pager} nextCursor={events.data.next_cursor} />
        </>
      )}
    </>
  );
}
