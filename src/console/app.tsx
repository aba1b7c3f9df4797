import { useEffect, useRef, useState } from "preact/hooks";
import { sessionEndsIn, whenSignedOut } from "./api.ts";
import { PAGES } from "./pages.ts";
import { href, useRoute } from "./route.ts";
import { currentSession, type SessionJson, signIn, signOut } from "./session.ts";
import { ErrorNote, Field } from "./ui.tsx";

/** setTimeout's longest wait (a longer one fires at once). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The shell: the sign-in page until there is a session, then the navigation and the page the fragment names. */
export function App() {
  const [session, setSession] = useState<SessionJson | null | undefined>(undefined);
  /** The server ended the session (a 401: timeout, sign-out elsewhere, password changed), not this page's Sign out. */
  const [ended, setEnded] = useState(false);
  const signingOut = useRef(false);
  const route = useRoute();
  const page = PAGES.find((p) => p.path === route.parts[0]) ?? PAGES[0]!;
  useTitle(session ? page.title : "Sign in");
  const endedByServer = () => {
    // A request still on its way when Sign out was clicked answers 401 too: that is no surprise to explain.
    if (!signingOut.current) setEnded(true);
    setSession(null);
  };
  useEffect(() => {
    whenSignedOut(endedByServer);
    void currentSession().then((s) => setSession(s ?? null));
  }, []);
  // The session's cookie expires at --session-max-age: the sign-in page says so then, request or not.
  useEffect(() => {
    if (!session) return;
    let t: ReturnType<typeof setTimeout> | undefined;
    const wait = () => {
      const ms = sessionEndsIn();
      if (ms === undefined) return;
      if (ms <= 0) return endedByServer();
      t = setTimeout(wait, Math.min(ms, MAX_TIMEOUT_MS));
    };
    wait();
    return () => clearTimeout(t);
  }, [session]);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null)
    return (
      <SignIn
        ended={ended}
        onSignedIn={(s) => {
          signingOut.current = false;
          setEnded(false);
          setSession(s);
        }}
      />
    );
  const Page = page.component;
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Orchard</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.filter((p) => !p.hidden).map((p) => (
              <li key={p.path}>
                <a href={href([p.path])} aria-current={p === page || (page.path === "device" && p.path === "devices") ? "page" : undefined}>
                  {p.nav ?? p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          <span>
            {session.operator.name} ({session.operator.role})
          </span>
          <button
            type="button"
            onClick={() => {
              signingOut.current = true;
              void signOut().finally(() => setSession(null));
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} session={session} />
      </main>
    </div>
  );
}

function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Orchard`;
  }, [title]);
}

function SignIn({ ended, onSignedIn }: { ended: boolean; onSignedIn: (s: SessionJson) => void }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(name, password));
    } catch (err) {
      setError(err);
      setPassword("");
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin" id="main">
      <h1>Orchard</h1>
      {ended && (
        <p class="warn" role="status">
          Your session ended; sign in again.
        </p>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        <Field label="Name">
          <input name="name" autoComplete="username" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Password">
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <ErrorNote error={error} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
