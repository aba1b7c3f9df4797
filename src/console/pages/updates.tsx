import { useState } from "preact/hooks";
import { api, get, seg } from "../api.ts";
import type {
  UpdateApplyJson,
  UpdateComplianceJson,
  UpdateFeedJson,
  UpdateFeedRefreshJson,
  UpdatePolicyJson,
  UpdatePolicyList,
  UpdatePolicySaved,
} from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href } from "../route.ts";
import { canChange } from "../session.ts";
import { type ActionResult, ErrorNote, Field, Loading, Outcome, Section, TableHead, Time, useAction, useLoad } from "../ui.tsx";
import { PLATFORMS } from "./devices.tsx";

/** The compliance states, in the order docs/software-updates.md lists them. */
export const COMPLIANCE_STATES = ["up_to_date", "pending", "downloading", "installing", "failed", "overdue", "not_reporting", "no_release"];

/** OS update policies (PUT /v1/updates/policies/{name}), their compliance, and Apple's feed they target from. */
export function UpdatesPage({ session }: PageProps) {
  const writable = canChange(session.operator.role);
  const policies = useLoad("policies", () => get<UpdatePolicyList>("/v1/updates/policies"));
  const [editing, setEditing] = useState<UpdatePolicyJson | "new">();
  /** What the form saved: said here, the form being gone once it saved. */
  const [saved, setSaved] = useState<ActionResult>();
  const act = useAction();
  const remove = (name: string) => {
    if (!confirm(`Remove the update policy ${name}? Its devices drop its declarations at their next sync.`)) return;
    void act.run(async () => {
      const r = await api<{ removed: string; applied: UpdateApplyJson }>("DELETE", `/v1/updates/policies/${seg(name)}`);
      policies.reload();
      return `Removed ${r.removed}; ${r.applied.changed} device(s) re-targeted.`;
    });
  };
  return (
    <>
      <h1>OS updates</h1>
      <Section title="Policies">
        <Loading what={policies} />
        {policies.data && policies.data.policies.length === 0 && <p class="muted">No update policy yet.</p>}
        {policies.data && policies.data.policies.length > 0 && (
          <table>
            <TableHead columns={["Policy", "Platform", "Devices", "Target", "Compliance", writable && "Actions"]} />
            <tbody>
              {policies.data.policies.map((p) => (
                <tr key={p.name}>
                  <td>{p.name}</td>
                  <td>{p.platform}</td>
                  <td>{scopeText(p)}</td>
                  <td>{targetText(p)}</td>
                  <td>
                    <Compliance policy={p.name} version={p.updated_at} />
                  </td>
                  {writable && (
                    <td class="actions">
                      <button type="button" onClick={() => (setSaved(undefined), act.clear(), setEditing(p))}>
                        Edit<span class="sr"> {p.name}</span>
                      </button>
                      <button type="button" disabled={act.busy} onClick={() => remove(p.name)}>
                        Remove<span class="sr"> {p.name}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Outcome of={act.done || act.error ? act : outcomeOf(saved)} />
        {writable && editing === undefined && (
          <button type="button" onClick={() => (setSaved(undefined), setEditing("new"))}>
            New policy
          </button>
        )}
      </Section>
      {writable && editing !== undefined && (
        <PolicyForm
          key={editing === "new" ? "" : editing.name}
          policy={editing === "new" ? undefined : editing}
          onDone={(said) => {
            setEditing(undefined);
            setSaved(said);
            if (said) policies.reload();
          }}
        />
      )}
      <Feed writable={writable} />
    </>
  );
}

/** What the form said when it saved, as an action's outcome. */
function outcomeOf(said: ActionResult) {
  return typeof said === "object" ? { error: undefined, done: said.done, warning: said.warning } : { error: undefined, done: said };
}

function scopeText(p: UpdatePolicyJson): string {
  if (p.enrollments === "all") return `every ${p.platform} device`;
  if ("set" in p.enrollments) return `set ${p.enrollments.set}`;
  return `${p.enrollments.ids} listed`;
}

function targetText(p: UpdatePolicyJson): string {
  if (p.mode === "latest") return `latest, ${p.deadline_days} day(s) after posting, at ${p.deadline_time}`;
  return `${p.target_os_version}${p.target_build_version ? ` (${p.target_build_version})` : ""} by ${p.target_local_date_time}`;
}

/** A policy's devices per state, each count linking to the device list of that state. */
export function Compliance({ policy, version }: { policy: string; version: string }) {
  const c = useLoad(`cmp|${policy}|${version}`, () => get<UpdateComplianceJson>(`/v1/updates/policies/${seg(policy)}/compliance`));
  if (c.error) return <ErrorNote error={c.error} />;
  if (!c.data) return <span class="muted">…</span>;
  const states = COMPLIANCE_STATES.filter((s) => (c.data!.counts[s] ?? 0) > 0);
  return (
    <ul class="plain compliance">
      <li>
        <a href={href(["devices"], { policy })}>{c.data.total}</a> device(s)
      </li>
      {states.map((s) => (
        <li key={s} class={s === "failed" || s === "overdue" ? "warn" : undefined}>
          {s.replace(/_/g, " ")}: <a href={href(["devices"], { policy, compliance: s })}>{c.data!.counts[s]}</a>
        </li>
      ))}
    </ul>
  );
}

/** The form of PUT /v1/updates/policies/{name}: the API's fields, checked by the server (its 400 names the field). */
function PolicyForm({ policy, onDone }: { policy?: UpdatePolicyJson; onDone: (said: ActionResult) => void }) {
  const [name, setName] = useState(policy?.name ?? "");
  const [platform, setPlatform] = useState(policy?.platform ?? "macOS");
  const initialScope = policy === undefined || policy.enrollments === "all" ? "all" : "set" in policy.enrollments ? "set" : "ids";
  const [scope, setScope] = useState<"all" | "set" | "ids">(initialScope);
  const [set, setSet] = useState(policy && policy.enrollments !== "all" && "set" in policy.enrollments ? policy.enrollments.set : "");
  const [ids, setIds] = useState("");
  const [mode, setMode] = useState<"latest" | "version">(policy?.mode ?? "latest");
  const [days, setDays] = useState(String(policy?.deadline_days ?? 7));
  const [time, setTime] = useState(policy?.deadline_time ?? "19:00:00");
  const [version, setVersion] = useState(policy?.target_os_version ?? "");
  const [build, setBuild] = useState(policy?.target_build_version ?? "");
  const [when, setWhen] = useState(policy?.target_local_date_time ?? "");
  const [detailsUrl, setDetailsUrl] = useState(policy?.details_url ?? "");
  const [settings, setSettings] = useState(policy?.settings ? JSON.stringify(policy.settings, null, 2) : "");
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const body: Record<string, unknown> = { platform, mode };
      if (scope === "set") body.enrollments = { set: set.trim() };
      else if (scope === "ids") body.enrollments = { ids: ids.split(/[\s,]+/).filter(Boolean) };
      else body.enrollments = "all";
      if (mode === "latest") {
        body.deadline_days = Number(days);
        body.deadline_time = time.trim();
      } else {
        body.target_os_version = version.trim();
        if (build.trim()) body.target_build_version = build.trim();
        body.target_local_date_time = when.trim();
      }
      if (detailsUrl.trim()) body.details_url = detailsUrl.trim();
      if (settings.trim()) {
        try {
          body.settings = JSON.parse(settings);
        } catch {
          throw new Error("Settings: not JSON (a softwareupdate.settings Payload object)");
        }
      }
      const r = await api<UpdatePolicySaved>("PUT", `/v1/updates/policies/${seg(name.trim())}`, body);
      // reach: this policy's devices (applied counts every policy's); null when another process re-targets.
      const reach = r.reach
        ? ` ${r.reach.devices} device(s), ${r.reach.targeted} with a target.`
        : " Another process re-targets its devices.";
      const done = `${r.created ? "Created" : "Saved"} ${r.policy.name}.${reach}`;
      onDone(r.warnings.length > 0 ? { done, warning: `Saved with warnings: ${r.warnings.join("; ")}` } : done);
      return undefined;
    });
  };
  return (
    <Section title={policy ? `Edit ${policy.name}` : "New policy"} id="policy-form">
      <form class="stack" onSubmit={submit} aria-label="Update policy">
        <Field label="Name" help="1 to 40 letters, digits, _ and -">
          <input name="name" required readOnly={policy !== undefined} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Platform">
          <select name="platform" value={platform} onChange={(e) => setPlatform(e.currentTarget.value)}>
            {PLATFORMS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Devices">
          <select name="scope" value={scope} onChange={(e) => setScope(e.currentTarget.value as typeof scope)}>
            <option value="all">every device of the platform</option>
            <option value="set">the devices holding a DDM set</option>
            <option value="ids">a list of enrollment ids</option>
          </select>
        </Field>
        {scope === "set" && (
          <Field label="DDM set">
            <input name="set" required value={set} onInput={(e) => setSet(e.currentTarget.value)} />
          </Field>
        )}
        {scope === "ids" && (
          <Field
            label="Enrollment ids"
            help={
              policy && initialScope === "ids"
                ? "The policy lists its ids; write the whole list again to save it."
                : "One a line, or commas."
            }
          >
            <textarea name="ids" rows={4} class="code" required value={ids} onInput={(e) => setIds(e.currentTarget.value)} />
          </Field>
        )}
        <Field label="Target">
          <select name="mode" value={mode} onChange={(e) => setMode(e.currentTarget.value as typeof mode)}>
            <option value="latest">the latest release for each model</option>
            <option value="version">one version</option>
          </select>
        </Field>
        {mode === "latest" ? (
          <div class="grid">
            <Field label="Deadline (days after Apple posts)">
              <input name="deadline_days" required inputMode="numeric" value={days} onInput={(e) => setDays(e.currentTarget.value)} />
            </Field>
            <Field label="At (device's local time)">
              <input name="deadline_time" required value={time} onInput={(e) => setTime(e.currentTarget.value)} />
            </Field>
          </div>
        ) : (
          <div class="grid">
            <Field label="OS version">
              <input name="target_os_version" required value={version} onInput={(e) => setVersion(e.currentTarget.value)} />
            </Field>
            <Field label="Build (optional)">
              <input name="target_build_version" value={build} onInput={(e) => setBuild(e.currentTarget.value)} />
            </Field>
            <Field label="Deadline (yyyy-mm-ddThh:mm:ss, local)">
              <input name="target_local_date_time" required value={when} onInput={(e) => setWhen(e.currentTarget.value)} />
            </Field>
          </div>
        )}
        <Field label="Details URL (optional)">
          <input name="details_url" type="url" value={detailsUrl} onInput={(e) => setDetailsUrl(e.currentTarget.value)} />
        </Field>
        <Field label="Settings (optional: a softwareupdate.settings Payload, JSON)">
          <textarea
            name="settings"
            rows={5}
            class="code"
            spellcheck={false}
            value={settings}
            onInput={(e) => setSettings(e.currentTarget.value)}
          />
        </Field>
        <div class="actions">
          <button type="submit" disabled={act.busy || !name.trim()}>
            Save policy
          </button>
          <button type="button" onClick={() => onDone(undefined)}>
            Cancel
          </button>
        </div>
        <Outcome of={act} />
      </form>
    </Section>
  );
}

/** Apple's software lookup feed: the copy in use, the last attempt's error, refresh. */
function Feed({ writable }: { writable: boolean }) {
  const feed = useLoad("feed", () => get<UpdateFeedJson>("/v1/updates/feed"));
  const act = useAction();
  const f = feed.data;
  return (
    <Section title="Apple's release feed">
      <Loading what={feed} />
      {f && (
        <>
          <p>
            <code class="link">{f.url}</code>: fetched <Time at={f.fetched_at} />, last tried <Time at={f.attempted_at} />.
          </p>
          {f.error && (
            <p class="warn">
              The last attempt failed <Time at={f.error_at} />: {f.error}. The copy fetched before stays in use.
            </p>
          )}
          <p>
            Releases:{" "}
            {Object.keys(f.releases).length === 0 ? (
              <span class="muted">none yet</span>
            ) : (
              Object.entries(f.releases)
                .map(([platform, n]) => `${platform} ${n}`)
                .join(", ")
            )}
          </p>
        </>
      )}
      {writable && (
        <button
          type="button"
          disabled={act.busy}
          onClick={() =>
            act.run(async () => {
              const r = await api<UpdateFeedRefreshJson>("POST", "/v1/updates/feed/refresh");
              feed.reload();
              return r.refreshed
                ? `Refreshed${r.changed ? ": the releases changed, devices re-targeted" : ", unchanged"}.`
                : `Not refreshed: ${r.error}`;
            })
          }
        >
          Refresh the feed
        </button>
      )}
      <Outcome of={act} />
    </Section>
  );
}
