import { useState } from "preact/hooks";
import { api, get, query, seg } from "../api.ts";
import type { OperatorJson, OperatorPage, Role, TokenCreated, TokenJson, TokenPage } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { isAdmin } from "../session.ts";
import { Field, Loading, Outcome, Pager, Section, TableHead, Time, useAction, useLoad, usePager } from "../ui.tsx";

const ROLES: Role[] = ["auditor", "operator", "admin"];

/** Roles no higher than this one (a token's role, docs/operators.md). */
function rolesUpTo(role: Role): Role[] {
  return ROLES.slice(0, ROLES.indexOf(role) + 1);
}

/**
 * Operators and tokens: everyone's own API tokens and password; the accounts
 * are the admin's (the server answers 403 to anyone else, the page does not offer them).
 */
export function OperatorsPage({ session }: PageProps) {
  const me = session.operator;
  return (
    <>
      <h1>Operators and tokens</h1>
      {isAdmin(me.role) && <Accounts me={me.name} />}
      <Tokens me={me.name} role={me.role} />
      <Password />
    </>
  );
}

function Accounts({ me }: { me: string }) {
  const pager = usePager("operators");
  const list = useLoad(`op|${pager.cursor ?? ""}`, () => get<OperatorPage>(`/v1/operators${query({ cursor: pager.cursor, limit: 50 })}`));
  const act = useAction();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("operator");
  const [password, setPassword] = useState("");
  const change = (o: OperatorJson, body: { role?: Role; disabled?: boolean }, what: string) =>
    act.run(async () => {
      await api("PATCH", `/v1/operators/${seg(o.name)}`, body);
      list.reload();
      return `${o.name} ${what}.`;
    });
  const add = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const r = await api<OperatorJson>("POST", "/v1/operators", { name: name.trim(), role, password });
      setName("");
      setPassword("");
      list.reload();
      return `Added ${r.name} (${r.role}).`;
    });
  };
  return (
    <Section title="Accounts">
      <Loading what={list} />
      {list.data && (
        <>
          <table>
            <TableHead columns={["Name", "Role", "State", "Password changed", "Actions"]} />
            <tbody>
              {list.data.operators.map((o) => (
                <tr key={o.name}>
                  <td>{o.name}</td>
                  <td>
                    <select
                      aria-label={`Role of ${o.name}`}
                      value={o.role}
                      disabled={act.busy || o.name === me}
                      onChange={(e) => change(o, { role: e.currentTarget.value as Role }, `is now ${e.currentTarget.value}`)}
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{o.disabled ? <span class="warn">disabled</span> : "active"}</td>
                  <td>
                    <Time at={o.password_changed_at} />
                  </td>
                  <td>
                    {o.name !== me && (
                      <button
                        type="button"
                        disabled={act.busy}
                        onClick={() =>
                          change(
                            o,
                            { disabled: !o.disabled },
                            o.disabled ? "is enabled again" : "is disabled; their sessions and tokens stop working",
                          )
                        }
                      >
                        {o.disabled ? "Enable" : "Disable"}
                        <span class="sr"> {o.name}</span>
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager pager={pager} nextCursor={list.data.next_cursor} />
        </>
      )}
      <form class="grid" onSubmit={add} aria-label="Add an operator">
        <Field label="New operator's name">
          <input name="name" required autoComplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Role">
          <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Initial password">
          <input
            name="password"
            type="password"
            required
            autoComplete="new-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" disabled={act.busy}>
          Add operator
        </button>
      </form>
      <Outcome of={act} />
    </Section>
  );
}

/** One's own API tokens: made here (the secret shown this once), listed, revoked. */
function Tokens({ me, role }: { me: string; role: Role }) {
  const list = useLoad("tokens", () => get<TokenPage>(`/v1/tokens${query({ operator: me, limit: 100 })}`));
  const act = useAction();
  const [label, setLabel] = useState("");
  const [tokenRole, setTokenRole] = useState<Role>(role);
  const [expires, setExpires] = useState("90d");
  const [made, setMade] = useState<TokenCreated>();
  const revoke = (t: TokenJson) => {
    if (!confirm(`Revoke the token ${t.label}? Scripts using it stop working.`)) return;
    void act.run(async () => {
      await api<TokenJson>("DELETE", `/v1/tokens/${seg(t.id)}`);
      setMade(undefined);
      list.reload();
      return `Revoked ${t.label}.`;
    });
  };
  return (
    <Section title="Your API tokens">
      <Loading what={list} />
      {list.data && list.data.tokens.length === 0 && <p class="muted">No token yet.</p>}
      {list.data && list.data.tokens.length > 0 && (
        <table>
          <TableHead columns={["Label", "Role", "Expires", "Last used", "Action"]} />
          <tbody>
            {list.data.tokens.map((t) => (
              <tr key={t.id}>
                <td>{t.label}</td>
                <td>{t.effective_role === t.role ? t.role : `${t.effective_role} (made ${t.role})`}</td>
                <td>
                  <Time at={t.expires_at} />
                </td>
                <td>
                  <Time at={t.last_used_at} />
                </td>
                <td>
                  {t.revoked_at ? (
                    <span class="muted">
                      revoked <Time at={t.revoked_at} />
                    </span>
                  ) : (
                    <button type="button" disabled={act.busy} onClick={() => revoke(t)}>
                      Revoke<span class="sr"> {t.label}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        class="grid"
        aria-label="New API token"
        onSubmit={(e) => {
          e.preventDefault();
          void act.run(async () => {
            const t = await api<TokenCreated>("POST", "/v1/tokens", { label: label.trim(), role: tokenRole, expires_in: expires.trim() });
            setMade(t);
            setLabel("");
            list.reload();
            return undefined;
          });
        }}
      >
        <Field label="Token label">
          <input name="label" required value={label} onInput={(e) => setLabel(e.currentTarget.value)} />
        </Field>
        <Field label="Token role">
          <select name="token_role" value={tokenRole} onChange={(e) => setTokenRole(e.currentTarget.value as Role)}>
            {rolesUpTo(role).map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Expires in (e.g. 30d, 12h)">
          <input name="expires_in" required value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={act.busy}>
          Create token
        </button>
      </form>
      {made && (
        <p role="status" class="notice">
          Token <strong>{made.label}</strong>: <code class="secret">{made.token}</code>. Copy it now: it is shown once and stored only as a
          hash. Use it as the password of HTTP Basic auth (any user name) or as <code>Authorization: Bearer</code>.
        </p>
      )}
      <Outcome of={act} />
    </Section>
  );
}

/** Changing one's password ends one's sessions, this one included: the sign-in page follows. */
function Password() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const act = useAction();
  return (
    <Section title="Your password">
      <form
        class="grid"
        aria-label="Change your password"
        onSubmit={(e) => {
          e.preventDefault();
          void act.run(async () => {
            await api("PUT", "/v1/me/password", { current_password: current, new_password: next });
            setCurrent("");
            setNext("");
            return "Password changed. Your sessions have ended: sign in again with the new password.";
          });
        }}
      >
        <Field label="Current password">
          <input
            name="current_password"
            type="password"
            required
            autoComplete="current-password"
            value={current}
            onInput={(e) => setCurrent(e.currentTarget.value)}
          />
        </Field>
        <Field label="New password">
          <input
            name="new_password"
            type="password"
            required
            autoComplete="new-password"
            value={next}
            onInput={(e) => setNext(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" disabled={act.busy}>
          Change password
        </button>
      </form>
      <Outcome of={act} />
    </Section>
  );
}
