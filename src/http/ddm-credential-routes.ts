// DDM credential templates (docs/declarative-management.md "Credentials from
// Orchard's CA"): the operator's API behind the API key. A template is what a
// com.apple.asset.credential.scep naming `orchard:credential/scep/<name>`
// gives each device (the device route is in ddm-asset-routes.ts, the SCEP
// endpoint in scep-routes.ts); the credential CA's certificate is what
// `orchard:credential/ca` gives.
import type { FastifyInstance } from "fastify";
import { deviceUrl, fileReference, type DeviceUrls } from "../core/ddm-assets.ts";
import { checkCredentialName, parseCredentialTemplate } from "../core/ddm-credentials.ts";
import { Conflict, NotFound } from "../errors.ts";
import type { DdmCredential } from "../store/ddm-credentials.ts";
import type { Store } from "../store/index.ts";
import type { DdmFileHooks } from "./ddm-asset-routes.ts";
import { jsonObject, nextCursor, pageSize } from "./request-helpers.ts";
import type { DdmCredentialJson, DdmCredentialPage, DdmFileRemoved } from "./wire.ts";
import { time } from "./wire-map.ts";

export interface DdmCredentialRoutesOptions {
  store: Store;
  urls: DeviceUrls;
  /** The credential CA's certificate, PEM. */
  caPem: string;
  hooks?: DdmFileHooks;
}

export function registerDdmCredentialRoutes(app: FastifyInstance, o: DdmCredentialRoutesOptions): void {
  const { store, urls } = o;
  const json = (c: DdmCredential): DdmCredentialJson => ({
    name: c.name,
    kind: c.kind,
    template: JSON.parse(c.spec) as Record<string, unknown>,
    revision: c.revision,
    reference: fileReference({ kind: "credential", id: c.name }),
    url: deviceUrl(urls, { kind: "credential", id: c.name }) ?? null,
    created_at: time(c.createdAt),
    updated_at: time(c.updatedAt),
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>("/v1/ddm/credentials", async (req): Promise<DdmCredentialPage> => {
    const limit = pageSize(req.query.limit);
    const credentials = await store.ddmCredentials.list({ after: req.query.cursor, limit });
    return { credentials: credentials.map(json), next_cursor: nextCursor(credentials, limit, (c) => c.name) };
  });

  app.put<{ Params: { name: string } }>("/v1/ddm/credentials/:name", async (req, reply): Promise<DdmCredentialJson> => {
    const name = req.params.name;
    checkCredentialName(name);
    const template = parseCredentialTemplate(jsonObject(req));
    const now = Date.now();
    const put = await store.transaction(async (tx) => {
      const outcome = await tx.ddmCredentials.put(name, template.kind, JSON.stringify(template), now);
      const detail = { name, kind: template.kind, revision: outcome.stored.revision, created: outcome.created };
      await tx.events.add({ type: "ddm.credential.stored", detail }, now);
      // The declarations naming it get the new revision in their URL, in this transaction: their devices sync.
      if (outcome.changed) await o.hooks?.changed?.({ kind: "credential", id: name }, tx, now);
      return outcome;
    });
    req.log.info({ credential: name, revision: put.stored.revision, created: put.created, changed: put.changed }, "DDM credential stored");
    return reply.code(put.created ? 201 : 200).send(json(put.stored));
  });

  app.get<{ Params: { name: string } }>("/v1/ddm/credentials/:name", async (req): Promise<DdmCredentialJson> => {
    checkCredentialName(req.params.name);
    const c = await store.ddmCredentials.get(req.params.name);
    if (!c) throw new NotFound("no such credential");
    return json(c);
  });

  app.delete<{ Params: { name: string } }>("/v1/ddm/credentials/:name", async (req): Promise<DdmFileRemoved> => {
    const name = req.params.name;
    checkCredentialName(name);
    const naming = (await o.hooks?.referencedBy?.({ kind: "credential", id: name })) ?? [];
    if (naming.length > 0) {
      const shown = naming.slice(0, 10).join(", ") + (naming.length > 10 ? `, and ${naming.length - 10} more` : "");
      throw new Conflict(`orchard:credential/scep/${name} is named by declarations ${shown}: change or remove them first`, "asset_in_use");
    }
    const removed = await store.transaction(async (tx) => {
      if (!(await tx.ddmCredentials.remove(name))) return false;
      await tx.events.add({ type: "ddm.credential.removed", detail: { name } }, Date.now());
      return true;
    });
    if (!removed) throw new NotFound("no such credential");
    req.log.info({ credential: name }, "DDM credential removed");
    return { removed: name };
  });

  // The credential CA's certificate: for the services that check the credentials (a RADIUS server, a VPN gateway).
  app.get("/v1/ddm/credential-ca", async (_req, reply) => reply.type("application/x-pem-file").send(o.caPem));
}
