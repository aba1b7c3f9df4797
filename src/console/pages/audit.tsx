import { useState } from "preact/hooks";
import { get, query } from "../api.ts";
import type { AuditPage } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href, navigate } from "../route.ts";
import { Field, LIVE_MS, LiveToggle, Loading, Pager, TableHead, Time, useLoad, usePager } from "../ui.tsx";

/** Every change, by whom, from where, with its result: newest first, refreshed while the first page is shown. */
export function AuditLogPage({ route }: PageProps) {
  const filters = {
    actor: route.params.get("actor") ?? "",
    action: route.params.get("action") ?? "",
    object: route.params.get("object") ?? "",
  };
  const key = JSON.stringify(filters);
  const pager = usePager(key);
  const [live, setLive] = useState(true);
  const log = useLoad(
    `${key}|${pager.cursor ?? ""}`,
    () => get<AuditPage>(`/v1/audit${query({ ...filters, limit: 50, cursor: pager.cursor })}`),
    {
      pollMs: live && pager.page === 1 ? LIVE_MS : undefined,
    },
  );
  const set = (p: Partial<typeof filters>) => navigate(href(["audit"], { ...filters, ...p }));
  return (
    <>
      <h1>Audit log</h1>
      <form class="filters" aria-label="Filter the audit log" onSubmit={(e) => e.preventDefault()}>
        <Field label="Who (operator or token)">
          <input name="actor" value={filters.actor} onChange={(e) => set({ actor: e.currentTarget.value.trim() })} />
        </Field>
        <Field label="Action (e.g. command.enqueue)">
          <input name="action" value={filters.action} onChange={(e) => set({ action: e.currentTarget.value.trim() })} />
        </Field>
        <Field label="Object (an enrollment id, a user, a set)">
          <input name="object" value={filters.object} onChange={(e) => set({ object: e.currentTarget.value.trim() })} />
        </Field>
        <LiveToggle live={live} set={setLive} />
      </form>
      <Loading what={log} />
      {log.data && (
        <>
          <table class="audit">
            <TableHead columns={["When", "Who", "Action", "Objects", "From", "Result"]} />
            <tbody>
              {log.data.entries.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Time at={e.at} />
                  </td>
                  <td>
                    <a href={href(["audit"], { actor: e.actor })}>{e.actor}</a> <span class="small">{e.credential}</span>
                  </td>
                  <td>
                    <a class="nowrap" href={href(["audit"], { action: e.action })}>
                      {e.action}
                    </a>
                    <div class="small">
                      {e.method} {e.route}
                    </div>
                  </td>
                  <td>
                    {e.objects.map((o) => (
                      <div key={o}>
                        <a href={href(["audit"], { object: o })}>{o}</a>
                      </div>
                    ))}
                  </td>
                  <td class="nowrap">{e.address ?? ""}</td>
                  <td class={e.status >= 400 ? "nowrap error" : "nowrap"}>{e.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {log.data.entries.length === 0 && <p class="muted">No entry.</p>}
          <Pager pager={pager} nextCursor={log.data.next_cursor} />
        </>
      )}
    </>
  );
}
