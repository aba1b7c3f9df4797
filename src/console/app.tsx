import { useEffect, useState } from "preact/hooks";
import { whenSignedOut } from "./api.ts";
import { PAGES } from "./pages.ts";
import { href, useRoute } from "./route.ts";
import { currentSession, type SessionJson, signIn, signOut } from "./session.ts";
import { ErrorNote, Field } from "./ui.tsx";

/** The shell: the sign-in page until there is a session, then the navigation and the page the fragment names. */
export function App() {
  const [session, setSession] = useState<SessionJson | null | undefined>(undefined);
  const route = useRoute();
  const page = PAGES.find((p) => p.path === route.parts[0]) ?? PAGES[0]!;
  useTitle(session ? page.title : "Sign in");
  useEffect(() => {
    whenSignedOut(() => setSession(null));
    void currentSession().then((s) => setSession(s ?? null));
  }, []);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
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
          <button type="button" onClick={() => void signOut().finally(() => setSession(null))}>
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

function SignIn({ onSignedIn }: { onSignedIn: (s: SessionJson) => void }) {
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
