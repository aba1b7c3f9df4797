// Pages are addressed by the URL's fragment (`/ui/#/devices?platform=macOS`):
// one server route serves them all, links can be bookmarked and shared, and
// the browser's back button works.

import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** The path's parts: `#/devices/ABC` is ["devices", "ABC"] (decoded). */
  parts: string[];
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#/, "");
  const q = h.indexOf("?");
  const path = q < 0 ? h : h.slice(0, q);
  const parts = path
    .split("/")
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, params: new URLSearchParams(q < 0 ? "" : h.slice(q + 1)) };
}

/** A link's href: `href(["devices", id], {tab: "queue"})`. */
export function href(parts: string[], params: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return `#/${parts.map(encodeURIComponent).join("/")}${s ? `?${s}` : ""}`;
}

export function navigate(to: string): void {
  location.hash = to.replace(/^#/, "");
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}
