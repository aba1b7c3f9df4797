import { useState } from "preact/hooks";
import { get } from "../api.ts";
import type { FleetJson, PushCertList, UpdatePolicyList, WebhookStatusJson } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { href } from "../route.ts";
import { canChange, isAdmin } from "../session.ts";
import { ErrorNote, Loading, Section, TableHead, Time, useLoad } from "../ui.tsx";
import { Compliance } from "./updates.tsx";

const DAY_MS = 86_400_000;
/** The OS versions shown before "Show all". */
const OS_ROWS = 10;
/** A version GET /v1/inventory?os_version= takes (its pattern); another is shown without a link. */
const VERSION = /^\d{1,5}(\.\d{1,5}){0,3}$/;

/**
 * The fleet at a glance; a count links to the device list it counts where the
 * list has its filter (a platform, user channels, not seen since, an OS
 * version). An unknown platform or version is a plain number: no filter finds it.
 */
export function FleetPage({ session }: PageProps) {
  const role = session.operator.role;
  const [allVersions, setAllVersions] = useState(false);
  const fleet = useLoad("fleet", () => get<FleetJson>("/v1/fleet"));
  const certs = useLoad("pushcert", () => get<PushCertList>("/v1/pushcert"));
  const webhook = useLoad("webhook", () => get<WebhookStatusJson>("/v1/webhook"));
  const policies = useLoad("policies", () => get<UpdatePolicyList>("/v1/updates/policies"));
  const f = fleet.data;
  const platforms = new Map<string, number>();
  let users = 0;
  for (const e of f?.enrollments ?? []) {
    if (e.type === "Device" || e.type === "UserEnrollmentDevice")
      platforms.set(e.platform ?? "", (platforms.get(e.platform ?? "") ?? 0) + e.count);
    else users += e.count;
  }
  const versions = f?.os_versions ?? [];
  const shownVersions = allVersions ? versions : versions.slice(0, OS_ROWS);
  const hiddenVersions = versions.slice(shownVersions.length);
  // GET /v1/fleet lists the most common versions only: the devices on the others are counted, not named.
  const devices = [...platforms.values()].reduce((a, n) => a + n, 0);
  const unlisted = devices - versions.reduce((a, o) => a + o.count, 0);
  return (
    <>
      <h1>Fleet</h1>
      <Loading what={fleet} />
      {f && (
        <div class="cards">
          <Section title="Devices by platform">
            <table>
              <TableHead columns={["Platform", "Devices"]} />
              <tbody>
                {[...platforms].map(([platform, count]) => (
                  <tr key={platform}>
                    <td>{platform || "unknown"}</td>
                    <td class="num">{platform ? <a href={href(["devices"], { platform })}>{count}</a> : count}</td>
                  </tr>
                ))}
                <tr>
                  <td>User channels</td>
                  <td class="num">
                    <a href={href(["devices"], { kind: "users" })}>{users}</a>
                  </td>
                </tr>
              </tbody>
            </table>
          </Section>
          <Section title="Devices not seen lately">
            <table>
              <tbody>
                {f.not_seen.map((n) => (
                  <tr key={n.days}>
                    <th scope="row">Not seen for {n.days === 1 ? "a day" : `${n.days} days`}</th>
                    <td class="num">
                      <a href={href(["devices"], { seen_before: n.since })}>{n.count}</a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
          <Section title="OS versions">
            <table>
              <TableHead columns={["Platform", "Version", "Devices"]} />
              <tbody>
                {shownVersions.map((o) => (
                  <tr key={`${o.platform}/${o.os_version}`}>
                    <td>{o.platform ?? "unknown"}</td>
                    <td>{o.os_version ?? "unknown"}</td>
                    <td class="num">
                      {o.platform && o.os_version && VERSION.test(o.os_version) ? (
                        <a href={href(["devices"], { platform: o.platform, os_version: o.os_version })}>{o.count}</a>
                      ) : (
                        o.count
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {hiddenVersions.length > 0 && (
              <p class="muted">
                and {hiddenVersions.length} more {hiddenVersions.length === 1 ? "version" : "versions"} (
                {hiddenVersions.reduce((a, o) => a + o.count, 0)} devices).{" "}
                <button type="button" onClick={() => setAllVersions(true)}>
                  Show all
                </button>
              </p>
            )}
            {unlisted > 0 && (
              <p class="muted">{unlisted === 1 ? "1 device" : `${unlisted} devices`} on less common versions, not listed here.</p>
            )}
          </Section>
        </div>
      )}
      <div class="cards">
        <Section title="Push certificates">
          <ErrorNote error={certs.error} />
          {certs.data && certs.data.push_certs.length === 0 && (
            <p class="warn">
              No push certificate: devices cannot be woken.
              {isAdmin(role) ? (
                <>
                  {" "}
                  <a href={href(["enrollment"])}>Upload one</a>.
                </>
              ) : (
                " An admin can upload one."
              )}
            </p>
          )}
          <ul class="plain">
            {certs.data?.push_certs.map((c) => {
              const days = Math.floor((Date.parse(c.not_after) - Date.now()) / DAY_MS);
              return (
                <li key={c.topic} class={days < 30 ? "warn" : undefined}>
                  <code>{c.topic}</code>: <strong>{days}</strong> days left (expires <Time at={c.not_after} />)
                </li>
              );
            })}
          </ul>
        </Section>
        <Section title="OS update compliance">
          <ErrorNote error={policies.error} />
          {policies.data && policies.data.policies.length === 0 && (
            <p class="muted">
              No update policy.
              {canChange(role) && (
                <>
                  {" "}
                  <a href={href(["updates"])}>Make one</a>.
                </>
              )}
            </p>
          )}
          {policies.data && policies.data.policies.length > 0 && (
            <table>
              <tbody>
                {policies.data.policies.map((p) => (
                  <tr key={p.name}>
                    <th scope="row">
                      <a href={href(["updates"])}>{p.name}</a> ({p.platform})
                    </th>
                    <td>
                      <Compliance policy={p.name} version={p.updated_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
        <Section title="Webhook">
          <ErrorNote error={webhook.error} />
          {webhook.data &&
            (webhook.data.enabled ? (
              <p>
                Backlog: <strong>{webhook.data.backlog}</strong> events ({webhook.data.retrying} retrying), oldest{" "}
                <Time at={webhook.data.oldest_created_at} />. <a href={href(["events"])}>Events</a>
              </p>
            ) : (
              <p class="muted">No webhook is configured (--webhook-url).</p>
            ))}
        </Section>
      </div>
    </>
  );
}
