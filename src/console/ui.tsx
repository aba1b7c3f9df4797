// Small components every page uses. Values go into JSX as text, which Preact
// escapes: no page builds HTML from strings (docs/console.md, Security).

import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.ts";

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads `load()` when `key` changes (null: nothing to load), and again on reload(); an older answer never replaces a newer one. */
export function useLoad<T>(key: string | null, load: () => Promise<T>, o: { pollMs?: number } = {}): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: key !== null });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (key === null) return;
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (error: Error) => mine === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, [key, tick]);
  useEffect(() => {
    if (!o.pollMs || key === null) return;
    const t = setInterval(reload, o.pollMs);
    return () => clearInterval(t);
  }, [key, o.pollMs]);
  return { ...state, reload } as Loaded<T>;
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const text =
    error instanceof ApiError ? `${error.message}${error.code ? ` (${error.code})` : ""}` : String((error as Error).message ?? error);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** What an action did, announced to screen readers. */
export function Notice({ children }: { children: ComponentChildren }) {
  if (!children) return null;
  return (
    <p class="notice" role="status">
      {children}
    </p>
  );
}

/** Something that went wrong beside an action that was done (a command queued, its push failed): an alert, not a success. */
export function Warning({ children }: { children: ComponentChildren }) {
  if (!children) return null;
  return (
    <p class="warn" role="alert">
      {children}
    </p>
  );
}

/** An action's outcome under its form: the error, or what it did and what went wrong beside it (useAction). */
export function Outcome({ of }: { of: { error: unknown; done: string | undefined; warning?: string | undefined } }) {
  return (
    <>
      <ErrorNote error={of.error} />
      <Notice>{of.done}</Notice>
      <Warning>{of.warning}</Warning>
    </>
  );
}

/** What an action returns: what it did, or that and what went wrong beside it. */
export type ActionResult = string | undefined | { done?: string; warning: string };

/** How often a Live list refreshes while its first page is shown. */
export const LIVE_MS = 3000;

/** The Live checkbox of a log page (audit, events). */
export function LiveToggle({ live, set }: { live: boolean; set: (on: boolean) => void }) {
  return (
    <label class="check">
      <input type="checkbox" checked={live} onChange={(e) => set(e.currentTarget.checked)} />
      Live (refresh every {LIVE_MS / 1000} s)
    </label>
  );
}

export function Loading({ what }: { what: Loaded<unknown> }) {
  if (what.error) return <ErrorNote error={what.error} />;
  if (what.loading && what.data === undefined) return <p class="muted">Loading…</p>;
  return null;
}

/** An RFC 3339 time as local text, the exact time on hover. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">never</span>;
  const d = new Date(at);
  return (
    <time dateTime={at} title={at}>
      {ago(d.getTime())}
    </time>
  );
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  const abs = Math.abs(s);
  const [n, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [abs / 60, "min"] : abs < 86400 ? [abs / 3600, "h"] : [abs / 86400, "d"];
  const text = `${Math.floor(n)} ${unit}`;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

/**
 * Structured data (a command's result, an event's detail, a declaration):
 * keys and values as a nested list, every value as text.
 */
export function Structured({ value, depth = 0 }: { value: unknown; depth?: number }): JSX.Element {
  if (value === null || value === undefined) return <span class="muted">null</span>;
  if (Array.isArray(value)) {
    if (value.length === 0) return <span class="muted">(empty list)</span>;
    return (
      <ol class="data" start={0}>
        {value.map((v, i) => (
          <li key={i}>
            <Structured value={v} depth={depth + 1} />
          </li>
        ))}
      </ol>
    );
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return <span class="muted">(empty)</span>;
    return (
      <dl class="data">
        {entries.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>
              <Structured value={v} depth={depth + 1} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  return <span class={`v-${typeof value}`}>{String(value)}</span>;
}

/** A table's header row from its column names; a false entry is a column this operator does not get (e.g. Action for a read-only role). */
export function TableHead({ columns }: { columns: Array<string | false> }) {
  return (
    <thead>
      <tr>
        {columns.map(
          (c, i) =>
            c !== false && (
              <th scope="col" key={i}>
                {c}
              </th>
            ),
        )}
      </tr>
    </thead>
  );
}

/** One <option> per value, its text the value or `text(value)`. */
export function Options({ values, text = (v) => v }: { values: readonly string[]; text?: (value: string) => string }) {
  return (
    <>
      {values.map((v) => (
        <option key={v} value={v}>
          {text(v)}
        </option>
      ))}
    </>
  );
}

/** A labelled control: the label wraps it, so a click or a screen reader finds it. */
export function Field({ label, children, help }: { label: string; children: ComponentChildren; help?: string }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the child passed in
    <label class="field">
      <span>{label}</span>
      {children}
      {help && <small class="muted">{help}</small>}
    </label>
  );
}

/**
 * Cursor pages: the cursors seen so far, so Previous goes back without the
 * server counting rows. `cursor` is the page being shown (undefined: the first).
 */
export function usePager(resetKey: string) {
  const [stack, setStack] = useState<string[]>([]);
  useEffect(() => setStack([]), [resetKey]);
  const cursor = stack.at(-1);
  return {
    cursor,
    page: stack.length + 1,
    next: (c: string) => setStack((s) => [...s, c]),
    previous: () => setStack((s) => s.slice(0, -1)),
    first: () => setStack([]),
  };
}

export function Pager({ pager, nextCursor }: { pager: ReturnType<typeof usePager>; nextCursor: string | null | undefined }) {
  return (
    <nav class="pager" aria-label="Pagination">
      <button type="button" onClick={pager.previous} disabled={pager.page === 1}>
        Previous
      </button>
      <span>Page {pager.page}</span>
      <button type="button" onClick={() => nextCursor && pager.next(nextCursor)} disabled={!nextCursor}>
        Next
      </button>
    </nav>
  );
}

/** Runs an action, keeping its error or its outcome (and a warning beside it) for the page to show; busy while it runs. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string>();
  const [warning, setWarning] = useState<string>();
  const run = async (f: () => Promise<ActionResult>) => {
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    setWarning(undefined);
    try {
      const r = await f();
      if (typeof r === "object") {
        setDone(r.done);
        setWarning(r.warning);
      } else setDone(r);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, done, warning, run, clear: () => (setError(undefined), setDone(undefined), setWarning(undefined)) };
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const h = id ?? `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <section aria-labelledby={h}>
      <h2 id={h}>{title}</h2>
      {children}
    </section>
  );
}
