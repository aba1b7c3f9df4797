import { useState } from "preact/hooks";
import { api, get, seg } from "../api.ts";
import type { PushCertList, PushCertRemoved, PushCertStored, ScepChallengeJson } from "../../http/wire.ts";
import type { PageProps } from "../pages.ts";
import { canChange, isAdmin } from "../session.ts";
import { ErrorNote, Field, Loading, Outcome, Section, TableHead, Time, useAction, useLoad } from "../ui.tsx";

const DAY_MS = 86_400_000;

/** Push certificates, the enrollment profile's link, SCEP challenges. */
export function EnrollmentPage({ session }: PageProps) {
  const writable = canChange(session.operator.role);
  return (
    <>
      <h1>Enrollment</h1>
      <PushCertificates writable={isAdmin(session.operator.role)} />
      <ProfileLink />
      {writable && <ScepChallenge />}
    </>
  );
}

function PushCertificates({ writable }: { writable: boolean }) {
  const certs = useLoad("pushcert", () => get<PushCertList>("/v1/pushcert"));
  const [pem, setPem] = useState("");
  const [file, setFile] = useState<File>();
  const [passphrase, setPassphrase] = useState("");
  const [force, setForce] = useState(false);
  const act = useAction();
  const upload = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const body = file ?? pem;
      const r = await api<PushCertStored>("PUT", `/v1/pushcert${force ? "?force=1" : ""}`, body, {
        headers: passphrase ? { "x-passphrase": passphrase } : undefined,
      });
      setPem("");
      setPassphrase("");
      certs.reload();
      return `Stored the push certificate for ${r.topic}, valid until ${r.not_after}.`;
    });
  };
  const remove = (topic: string) => {
    if (!confirm(`Remove the push certificate of ${topic}? Devices of this topic can no longer be woken.`)) return;
    void act.run(async () => {
      const r = await api<PushCertRemoved>("DELETE", `/v1/pushcert/${seg(topic)}`);
      certs.reload();
      return `Removed ${r.removed}.`;
    });
  };
  return (
    <Section title="Push certificates">
      <Loading what={certs} />
      {certs.data && certs.data.push_certs.length === 0 && <p class="warn">No push certificate yet.</p>}
      {certs.data && certs.data.push_certs.length > 0 && (
        <table>
          <TableHead columns={["Topic", "Days left", "Expires", "Fingerprint", writable && "Action"]} />
          <tbody>
            {certs.data.push_certs.map((c) => {
              const days = Math.floor((Date.parse(c.not_after) - Date.now()) / DAY_MS);
              return (
                <tr key={c.topic}>
                  <td>
                    <code>{c.topic}</code>
                  </td>
                  <td class={days < 30 ? "num warn" : "num"}>{days}</td>
                  <td>
                    <Time at={c.not_after} />
                  </td>
                  <td>
                    <code class="small">{c.fingerprint}</code>
                  </td>
                  {writable && (
                    <td>
                      <button type="button" onClick={() => remove(c.topic)}>
                        Remove<span class="sr"> {c.topic}</span>
                      </button>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {writable && (
        <form onSubmit={upload} aria-label="Upload a push certificate">
          <h3>Upload or renew</h3>
          <p class="muted">The certificate Apple signed and its private key: a PEM (certificate and key together) or a PKCS#12 file.</p>
          <Field label="PKCS#12 or PEM file">
            <input type="file" accept=".p12,.pfx,.pem,.crt,.key" onChange={(e) => setFile(e.currentTarget.files?.[0])} />
          </Field>
          <Field label="…or the PEM text">
            <textarea rows={5} class="code" spellcheck={false} value={pem} onInput={(e) => setPem(e.currentTarget.value)} />
          </Field>
          <Field label="PKCS#12 passphrase">
            <input type="password" autoComplete="off" value={passphrase} onInput={(e) => setPassphrase(e.currentTarget.value)} />
          </Field>
          <label class="check">
            <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} />
            Replace even if the topic changes (enrolled devices of the old topic cannot be woken)
          </label>
          <button type="submit" disabled={act.busy || (!file && !pem.trim())}>
            Upload
          </button>
        </form>
      )}
      <Outcome of={act} />
    </Section>
  );
}

/** The link a device opens to enroll: the enrollment token is the operator's to add; the console never stores it. */
function ProfileLink() {
  const [token, setToken] = useState("");
  const base = `${location.origin}/enroll`;
  const link = token ? `${base}?token=${encodeURIComponent(token)}` : `${base}?token=ENROLLMENT_TOKEN`;
  return (
    <Section title="Enrollment profile">
      <p>
        A device opens this link to download its enrollment profile (with a SCEP challenge of its own). The token is the server's{" "}
        <code>--enrollment-token</code>; give the link only to those who may enroll.
      </p>
      <Field label="Enrollment token (not stored; only builds the link)">
        <input type="password" autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
      </Field>
      <p>
        <code class="link">{link}</code>
      </p>
      {token && (
        <p>
          <a href={link} rel="noreferrer">
            Download the profile
          </a>
        </p>
      )}
    </Section>
  );
}

function ScepChallenge() {
  const [ttl, setTtl] = useState("1h");
  const [made, setMade] = useState<ScepChallengeJson>();
  const act = useAction();
  return (
    <Section title="SCEP challenges">
      <p class="muted">A single-use challenge password for one device's SCEP request (a profile built elsewhere).</p>
      <form
        class="grid"
        onSubmit={(e) => {
          e.preventDefault();
          void act.run(async () => {
            setMade(await api<ScepChallengeJson>("POST", "/v1/scep/challenges", { ttl }));
            return undefined;
          });
        }}
      >
        <Field label="Valid for (e.g. 10m, 1h, 7d)">
          <input name="ttl" required value={ttl} onInput={(e) => setTtl(e.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={act.busy}>
          New challenge
        </button>
      </form>
      <ErrorNote error={act.error} />
      {made && (
        <p role="status">
          Challenge <code class="secret">{made.challenge}</code>, valid until <Time at={made.expires_at} />. It is shown once.
        </p>
      )}
    </Section>
  );
}
