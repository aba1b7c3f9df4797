// A URL's user and password as HTTP Basic authentication, for the clients
// Orchard sends requests with: the webhook, the --dm-url forwarder, the
// software lookup mirror. fetch refuses a URL that holds credentials, and its
// refusal quotes the URL, password and all, into whatever logs the error.

/** The Authorization header of a URL's user and password (as node's http.request sends it), else undefined. */
export function basicAuth(url: URL): string | undefined {
  if (url.username === "" && url.password === "") return undefined;
  return `Basic ${Buffer.from(`${decoded(url.username)}:${decoded(url.password)}`).toString("base64")}`;
}

/** A URL's user or password as typed: percent-decoded, or as it is when a % in it starts no escape. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
