import { useState } from "preact/hooks";
import { api, get, query, seg } from "../api.ts";
import type { UserImportJson, UserJson, UserPage, UserPutBody, UserRemoved, UserSessionPage } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href } from "../route.ts";
import { canChange } from "../session.ts";
import { Field, Loading, Outcome, Pager, Section, TableHead, Time, useAction, useLoad, usePager } from "../ui.tsx";

/** The directory of network users (macOS UserAuthenticate) and their logins across Macs. */
export function UsersPage({ session }: PageProps) {
  const pager = usePager("users");
  const users = useLoad(`u|${pager.cursor ?? ""}`, () => get<UserPage>(`/v1/users${query({ cursor: pager.cursor, limit: 50 })}`));
  const writable = canChange(session.operator.role);
  const act = useAction();
  const change = (u: UserJson, body: UserPutBody) =>
    act.run(async () => {
      await api("PUT", `/v1/users/${seg(u.short_name)}`, body);
      users.reload();
      return `${u.short_name} is now ${body.state}.`;
    });
  const remove = (u: UserJson) => {
    if (!confirm(`Remove ${u.short_name}? Their logins end on every Mac.`)) return;
    void act.run(async () => {
      const r = await api<UserRemoved>("DELETE", `/v1/users/${seg(u.short_name)}`);
      users.reload();
      return `Removed ${r.removed}; ${r.sessions_revoked} login(s) ended.`;
    });
  };
  return (
    <>
      <h1>Network users</h1>
      <Section title="Directory">
        <Loading what={users} />
        {users.data && (
          <>
            <table>
              <TableHead columns={["Short name", "Full name", "State", "Digests", "Updated", writable && "Actions"]} />
              <tbody>
                {users.data.users.map((u) => (
                  <tr key={u.short_name}>
                    <td>{u.short_name}</td>
                    <td>{u.full_name ?? ""}</td>
                    <td>{u.state}</td>
                    <td>{u.digests.map((d) => `${d.realm} (${d.algorithm})`).join(", ")}</td>
                    <td>
                      <Time at={u.updated_at} />
                    </td>
                    {writable && (
                      <td class="actions">
                        <button
                          type="button"
                          disabled={act.busy}
                          onClick={() => change(u, { state: u.state === "managed" ? "declined" : "managed" })}
                        >
                          {u.state === "managed" ? "Decline" : "Manage"}
                          <span class="sr"> {u.short_name}</span>
                        </button>
                        <button type="button" disabled={act.busy} onClick={() => remove(u)}>
                          Remove<span class="sr"> {u.short_name}</span>
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
            {users.data.users.length === 0 && <p class="muted">The directory is empty.</p>}
            <Pager pager={pager} nextCursor={users.data.next_cursor} />
          </>
        )}
        <Outcome of={act} />
      </Section>
      {writable && <AddUser onAdded={users.reload} />}
      {writable && <ImportHtdigest onImported={users.reload} />}
      <Sessions />
    </>
  );
}

function AddUser({ onAdded }: { onAdded: () => void }) {
  const [f, setF] = useState({ short_name: "", full_name: "", password: "", guid: "" });
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const body: UserPutBody = { password: f.password };
      if (f.full_name.trim()) body.full_name = f.full_name.trim();
      if (f.guid.trim()) body.guid = f.guid.trim();
      const u = await api<UserJson>("PUT", `/v1/users/${seg(f.short_name.trim())}`, body);
      setF({ short_name: "", full_name: "", password: "", guid: "" });
      onAdded();
      return `Saved ${u.short_name}.`;
    });
  };
  const input = (key: keyof typeof f) => (e: Event) => setF({ ...f, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <Section title="Add or change a user">
      <form class="grid" onSubmit={submit}>
        <Field label="Short name">
          <input name="short_name" required autoComplete="off" value={f.short_name} onInput={input("short_name")} />
        </Field>
        <Field label="Full name">
          <input name="full_name" value={f.full_name} onInput={input("full_name")} />
        </Field>
        <Field label="Password" help="Stored only as digests (HA1) for the server's realm.">
          <input name="password" type="password" required autoComplete="new-password" value={f.password} onInput={input("password")} />
        </Field>
        <Field label="GUID (optional)">
          <input name="guid" value={f.guid} onInput={input("guid")} />
        </Field>
        <button type="submit" disabled={act.busy}>
          Save user
        </button>
      </form>
      <Outcome of={act} />
    </Section>
  );
}

function ImportHtdigest({ onImported }: { onImported: () => void }) {
  const [text, setText] = useState("");
  const [realm, setRealm] = useState("");
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const r = await api<UserImportJson>("POST", `/v1/users/import${query({ realm: realm.trim() })}`, text);
      setText("");
      onImported();
      const skipped = r.other_realms.length ? `; ${r.other_realms.length} line(s) of other realms skipped` : "";
      const errors = r.errors.length
        ? `; ${r.errors.length} bad line(s): ${r.errors.map((x) => `${x.line} (${x.reason})`).join(", ")}`
        : "";
      return `Realm ${r.realm}: ${r.created} created, ${r.updated} updated${skipped}${errors}.`;
    });
  };
  return (
    <Section title="Import an htdigest file">
      <form onSubmit={submit}>
        <Field label="Realm (empty: the server's)">
          <input name="realm" value={realm} onInput={(e) => setRealm(e.currentTarget.value)} />
        </Field>
        <Field label="htdigest file">
          <input
            type="file"
            accept=".htdigest,text/plain,*"
            onChange={(e) => {
              const file = e.currentTarget.files?.[0];
              if (file) void file.text().then(setText);
            }}
          />
        </Field>
        <Field label="…or its lines (user:realm:HA1)">
          <textarea name="htdigest" rows={4} class="code" spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={act.busy || text.trim() === ""}>
          Import
        </button>
      </form>
      <Outcome of={act} />
    </Section>
  );
}

function Sessions() {
  const pager = usePager("sessions");
  const sessions = useLoad(`s|${pager.cursor ?? ""}`, () =>
    get<UserSessionPage>(`/v1/user-sessions${query({ cursor: pager.cursor, limit: 50 })}`),
  );
  return (
    <Section title="Login sessions">
      <Loading what={sessions} />
      {sessions.data && (
        <>
          <table>
            <TableHead columns={["User", "Mac", "State", "Token issued", "Last used"]} />
            <tbody>
              {sessions.data.sessions.map((s) => (
                <tr key={s.enrollment_id}>
                  <td>{s.short_name ?? s.user_id}</td>
                  <td>
                    <a href={href(["device", s.device_id], { channel: s.enrollment_id })}>
                      <code>{s.device_id}</code>
                    </a>
                  </td>
                  <td>{s.state}</td>
                  <td>
                    <Time at={s.token_issued_at} />
                  </td>
                  <td>
                    <Time at={s.token_last_used_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {sessions.data.sessions.length === 0 && <p class="muted">No login yet.</p>}
          <Pager pager={pager} nextCursor={sessions.data.next_cursor} />
        </>
      )}
    </Section>
  );
}
