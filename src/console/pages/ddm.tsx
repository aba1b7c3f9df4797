import { useEffect, useState } from "preact/hooks";
import { api, get, query, request, seg, warningsOf } from "../api.ts";
import type { DdmBulkAssignResult, DeclarationCheckJson } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href, navigate } from "../route.ts";
import { canChange } from "../session.ts";
import { ErrorNote, Field, Loading, Options, Outcome, Section, TableHead, useAction, useLoad } from "../ui.tsx";

const CHECK_DELAY_MS = 400;
const TEMPLATE = `{
  "Type": "com.apple.configuration.passcode.settings",
  "Identifier": "com.example.passcode",
  "Payload": {
    "MinimumLength": 6
  }
}`;

interface SetCompliance {
  set: string;
  enrollments: number;
  declarations: Array<{ identifier: string; server_token: string; compliant: number; failing: number; pending: number }>;
}

/** Declarative Device Management: declarations (checked by the server as they are typed), sets, assignments, compliance. */
export function DdmPage({ route, session }: PageProps) {
  const writable = canChange(session.operator.role);
  const declaration = route.params.get("declaration");
  const set = route.params.get("set");
  const declarations = useLoad("decls", () => get<string[]>("/v1/declarations"));
  const sets = useLoad("sets", () => get<string[]>("/v1/sets"));
  return (
    <>
      <h1>Declarative management</h1>
      <div class="two">
        <Section title="Declarations">
          <Loading what={declarations} />
          <ul class="plain pick">
            {declarations.data?.map((d) => (
              <li key={d}>
                <a href={href(["ddm"], { declaration: d, set })} aria-current={d === declaration ? "true" : undefined}>
                  {d}
                </a>
              </li>
            ))}
          </ul>
          {declarations.data?.length === 0 && <p class="muted">No declaration yet.</p>}
          {writable && (
            <p>
              <a href={href(["ddm"], { declaration: "", new: 1, set })}>New declaration</a>
            </p>
          )}
        </Section>
        {(declaration || route.params.get("new")) && (
          <Editor key={declaration ?? "new"} identifier={declaration || undefined} writable={writable} onSaved={declarations.reload} />
        )}
      </div>
      <div class="two">
        <Section title="Sets">
          <Loading what={sets} />
          <ul class="plain pick">
            {sets.data?.map((s) => (
              <li key={s}>
                <a href={href(["ddm"], { set: s, declaration })} aria-current={s === set ? "true" : undefined}>
                  {s}
                </a>
              </li>
            ))}
          </ul>
          {sets.data?.length === 0 && <p class="muted">No set yet: add a declaration to a new set's name.</p>}
          {writable && <NewSet declarations={declarations.data ?? []} onAdded={sets.reload} />}
        </Section>
        {set && <SetView key={set} set={set} declarations={declarations.data ?? []} writable={writable} onChanged={sets.reload} />}
      </div>
    </>
  );
}

/** The declaration's JSON; the server checks it (POST /v1/declarations/validate) a moment after each keystroke. */
function Editor({ identifier, writable, onSaved }: { identifier?: string; writable: boolean; onSaved: () => void }) {
  const loaded = useLoad(identifier ? `d|${identifier}` : null, () => get<unknown>(`/v1/declarations/${seg(identifier!)}`));
  const [text, setText] = useState<string>(identifier ? "" : TEMPLATE);
  /** The server's check of `text`, or why it is not JSON; `of` is the text it was made of (a check of older text says nothing of this one). */
  const [checked, setCheck] = useState<{ of: string; check: DeclarationCheckJson | { parse: string } }>();
  const act = useAction();
  useEffect(() => {
    if (loaded.data === undefined) return;
    const { ServerToken: _token, ...rest } = loaded.data as Record<string, unknown>;
    setText(JSON.stringify(rest, null, 2));
  }, [loaded.data]);
  useEffect(() => {
    if (!text) return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      setCheck({ of: text, check: { parse: (e as Error).message } });
      return;
    }
    // An answer that comes back after the text changed again is not shown: the newer text's check is.
    let stale = false;
    const t = setTimeout(() => {
      api<DeclarationCheckJson>("POST", "/v1/declarations/validate", json as object).then(
        (check) => stale || setCheck({ of: text, check }),
        (e: Error) => stale || setCheck({ of: text, check: { valid: false, errors: [{ path: "", message: e.message }], warnings: [] } }),
      );
    }, CHECK_DELAY_MS);
    return () => {
      stale = true;
      clearTimeout(t);
    };
  }, [text]);
  // The last check stays shown while the next is on its way; only a check of this very text enables Save.
  const check = checked?.check;
  const current = checked?.of === text ? checked.check : undefined;
  const invalid = check !== undefined && ("parse" in check || !check.valid);
  // Save once a check of this very text said valid: not before one came back, not on an older text's.
  const valid = current !== undefined && "valid" in current && current.valid;
  const save = (e: Event) => {
    e.preventDefault();
    if (!valid) return;
    void act.run(async () => {
      const json = JSON.parse(text) as { Identifier?: string };
      await api("PUT", "/v1/declarations", json);
      onSaved();
      if (!identifier && json.Identifier) navigate(href(["ddm"], { declaration: json.Identifier }));
      return `Saved ${json.Identifier}.`;
    });
  };
  const remove = () => {
    if (!identifier || !confirm(`Delete ${identifier}?`)) return;
    void act.run(async () => {
      await api("DELETE", `/v1/declarations/${seg(identifier)}`);
      onSaved();
      navigate(href(["ddm"]));
      return `Deleted ${identifier}.`;
    });
  };
  return (
    <Section title={identifier ?? "New declaration"} id="editor">
      <Loading what={loaded} />
      <form onSubmit={save}>
        <Field label="Declaration (JSON: Type, Identifier, Payload)">
          <textarea
            name="declaration"
            rows={16}
            class="code"
            spellcheck={false}
            readOnly={!writable}
            aria-describedby="check"
            aria-invalid={invalid}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </Field>
        <div id="check" aria-live="polite">
          {check && "parse" in check && <p class="error">Not JSON: {check.parse}</p>}
          {check && "valid" in check && check.valid && check.warnings.length === 0 && <p class="ok">Valid against Apple's schema.</p>}
          {check && "valid" in check && check.errors.length > 0 && (
            <ul class="error">
              {check.errors.map((x, i) => (
                <li key={i}>
                  {x.path && <code>{x.path}</code>} {x.message}
                </li>
              ))}
            </ul>
          )}
          {check && "valid" in check && check.warnings.length > 0 && (
            <ul class="warn">
              {check.warnings.map((w, i) => (
                <li key={i}>{w}</li>
              ))}
            </ul>
          )}
        </div>
        {writable && (
          <div class="actions">
            <button type="submit" disabled={act.busy || !valid}>
              Save
            </button>
            {identifier && (
              <button type="button" disabled={act.busy} onClick={remove}>
                Delete
              </button>
            )}
          </div>
        )}
      </form>
      <Outcome of={act} />
    </Section>
  );
}

/** A new set and its first declaration: the one the operator chose, never one taken for them. */
function NewSet({ declarations, onAdded }: { declarations: string[]; onAdded: () => void }) {
  const [name, setName] = useState("");
  const [decl, setDecl] = useState("");
  const act = useAction();
  // A choice whose declaration was deleted meanwhile is no choice.
  const first = declarations.includes(decl) ? decl : "";
  return (
    <form
      class="grid"
      onSubmit={(e) => {
        e.preventDefault();
        if (!first) return;
        void act.run(async () => {
          await api("PUT", `/v1/set-declarations/${seg(name.trim())}${query({ declaration: first })}`);
          onAdded();
          navigate(href(["ddm"], { set: name.trim() }));
          return `Set ${name.trim()} made.`;
        });
      }}
    >
      <Field label="New set's name">
        <input name="set" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field label="Its first declaration">
        <select name="first" required value={first} onChange={(e) => setDecl(e.currentTarget.value)}>
          <option value="">choose…</option>
          <Options values={declarations} />
        </select>
      </Field>
      <button type="submit" disabled={act.busy || !first}>
        {first ? "Make set" : "Make set (choose its first declaration)"}
      </button>
      <ErrorNote error={act.error} />
    </form>
  );
}

function SetView({
  set,
  declarations,
  writable,
  onChanged,
}: {
  set: string;
  declarations: string[];
  writable: boolean;
  onChanged: () => void;
}) {
  const members = useLoad(`sd|${set}`, () => get<string[]>(`/v1/set-declarations/${seg(set)}`));
  const compliance = useLoad(`sc|${set}`, () => get<SetCompliance>(`/v1/set-compliance/${seg(set)}`), { pollMs: 10_000 });
  const [add, setAdd] = useState("");
  const [target, setTarget] = useState("");
  const act = useAction();
  const reload = () => (members.reload(), compliance.reload(), onChanged());
  const change = (method: "PUT" | "DELETE", declaration: string) =>
    act.run(async () => {
      await api(method, `/v1/set-declarations/${seg(set)}${query({ declaration })}`);
      reload();
      return `${declaration} ${method === "PUT" ? "added to" : "taken from"} ${set}.`;
    });
  const assign = (e: Event) => {
    e.preventDefault();
    const t = target.trim();
    void act.run(async () => {
      const res = PLATFORMS.includes(t)
        ? await request("POST", `/v1/ddm/sets/${seg(set)}/enrollments`, { platform: t })
        : await request("PUT", `/v1/enrollment-sets/${seg(t)}${query({ set })}`);
      reload();
      let done = `${set} assigned to ${t}.`;
      if (PLATFORMS.includes(t)) {
        const r = (await res.json()) as DdmBulkAssignResult;
        done = `${set} assigned to ${r.enrollments} ${t} device(s) (${r.changed} changed).`;
      }
      // A mistyped id is assigned all the same (it may enroll later): the server's warning says so.
      const warnings = warningsOf(res);
      return warnings.length > 0 ? { done, warning: warnings.join(" ") } : done;
    });
  };
  const byId = new Map(compliance.data?.declarations.map((d) => [d.identifier, d]));
  return (
    <Section title={`Set ${set}`} id="set">
      <Loading what={members} />
      <p>
        Assigned to <strong>{compliance.data?.enrollments ?? "…"}</strong> channel(s).
      </p>
      <table>
        <TableHead columns={["Declaration", "Compliant", "Failing", "Pending", writable && "Action"]} />
        <tbody>
          {members.data?.map((d) => {
            const c = byId.get(d);
            return (
              <tr key={d}>
                <td>
                  <a href={href(["ddm"], { set, declaration: d })}>{d}</a>
                </td>
                <td class="num">{c?.compliant ?? ""}</td>
                <td class="num">{c?.failing ?? ""}</td>
                <td class="num">{c?.pending ?? ""}</td>
                {writable && (
                  <td>
                    <button type="button" disabled={act.busy} onClick={() => change("DELETE", d)}>
                      Remove<span class="sr"> {d}</span>
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {writable && (
        <>
          <form
            class="grid"
            onSubmit={(e) => {
              e.preventDefault();
              if (add) void change("PUT", add);
            }}
          >
            <Field label="Add a declaration">
              <select name="add" value={add} onChange={(e) => setAdd(e.currentTarget.value)}>
                <option value="">choose…</option>
                <Options values={declarations.filter((d) => !members.data?.includes(d))} />
              </select>
            </Field>
            <button type="submit" disabled={act.busy || !add}>
              Add
            </button>
          </form>
          <form class="grid" onSubmit={assign}>
            <Field label="Assign to an enrollment id, or every device of a platform (macOS, iOS, …)">
              <input name="assign" required value={target} onInput={(e) => setTarget(e.currentTarget.value)} />
            </Field>
            <button type="submit" disabled={act.busy}>
              Assign
            </button>
          </form>
        </>
      )}
      <Outcome of={act} />
    </Section>
  );
}

const PLATFORMS = ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"];
