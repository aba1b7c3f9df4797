import { randomBytes, type X509Certificate } from "node:crypto";
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import tls from "node:tls";
import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import { APNS_SANDBOX, ConfigError, newApiKey, requireLongSecret, type Config } from "./config.ts";
import { AuthTokenGuard } from "./core/auth-token-guard.ts";
import { CertBinding } from "./core/cert-binding.ts";
import { CoreService } from "./core/core.ts";
import { startRetention } from "./core/retention.ts";
import { DeclarativeManagement } from "./core/declarative.ts";
import { DdmService } from "./core/ddm.ts";
import { DdmAdmin } from "./core/ddm-admin.ts";
import { DdmSync } from "./core/ddm-sync.ts";
import { Coalescer } from "./core/coalesce.ts";
import type { MdmService } from "./core/service.ts";
import { UserAuthService } from "./core/userauth.ts";
import { OperatorAuth } from "./core/operator-auth.ts";
import { buildApp } from "./http/app.ts";
import { Metrics } from "./http/metrics.ts";
import { startMetricsListener, type MetricsListener } from "./http/metrics-listener.ts";
import { registerUserRoutes } from "./http/user-routes.ts";
import { registerPushRoutes } from "./http/push-routes.ts";
import { registerRebindRoutes } from "./http/rebind-routes.ts";
import { registerDdmAssetRoutes, registerDdmDeviceRoutes } from "./http/ddm-asset-routes.ts";
import { trustedProxy } from "./http/trusted-proxy.ts";
import { declarationFileHooks, resolveDeclaration, type Declaration, type DeviceUrls } from "./core/ddm-assets.ts";
import { validateDeclaration } from "./declarations/index.ts";
import { registerDdmRoutes } from "./http/ddm-routes.ts";
import { registerInventoryRoutes } from "./http/inventory-routes.ts";
import { InventorySubscriptions } from "./core/inventory-subscription.ts";
import { startPush } from "./push/index.ts";
import { boundHeap } from "./heap-bounds.ts";
import { loadOrCreateSecretKey, SecretBox, SecretKeyMismatch } from "./push/secret-box.ts";
import { AdeService } from "./ade/service.ts";
import { AdeEnrollment } from "./ade/enrollment.ts";
import { appleDeviceCas } from "./ade/machine-info.ts";
import { readSettings } from "./ade/settings.ts";
import { AdeIdentity } from "./core/ade-identity.ts";
import { AdeSetup } from "./core/ade-setup.ts";
import { registerAdeRoutes } from "./http/ade-routes.ts";
import { registerAdeEnrollRoutes } from "./http/ade-enroll-routes.ts";
import { DeviceTrust } from "./identity/index.ts";
import { loadDeviceCa, type DeviceCa } from "./enroll/device-ca.ts";
import { CREDENTIAL_CA_SETTING, loadCredentialCa } from "./enroll/credential-ca.ts";
import { registerDdmCredentialRoutes } from "./http/ddm-credential-routes.ts";
import { sha256Hex } from "./store/ddm-assets.ts";
import { loadProfileSigner } from "./enroll/sign-profile.ts";
import { registerEnrollRoutes } from "./http/enroll-routes.ts";
import { ApiFailureLimiter } from "./http/limits.ts";
import { ScepChallenges } from "./scep/challenges.ts";
import { CREDENTIAL_SCEP_PATH, registerScepApiRoutes, registerScepRoutes } from "./http/scep-routes.ts";
import { DEFAULT_PLIST_LIMITS, type PlistLimits } from "./plist/index.ts";
import { openStore, type Store } from "./store/index.ts";
import { freshEventsFor, startWebhookDelivery, webhookTarget } from "./webhook/delivery.ts";
import { registerWebhookRoutes } from "./http/webhook-routes.ts";
import { registerUpdateRoutes } from "./http/update-routes.ts";
import { SoftwareUpdates } from "./updates/service.ts";

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  /** Issues device identities (SCEP); trusted next to --ca. */
  deviceCa: DeviceCa;
  /** Issues DDM credentials (SCEP at /scep/credential); its certificates are never device identities. */
  credentialCa: DeviceCa;
  /** Base URL, e.g. http://127.0.0.1:9000 */
  url: string;
  apiKey: string;
  /** --metrics-listen's URL (unauthenticated /metrics), when it is on. */
  metricsUrl?: string;
  /**
   * A declaration with its `orchard:asset/<id>` and `orchard:profile/<id>`
   * references made real (core/ddm-assets.ts): the hook the declaration store
   * calls before it computes a ServerToken.
   */
  resolveDeclaration(decl: Declaration): Promise<Declaration>;
  close(): Promise<void>;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      // Belt and braces: these headers carry credentials and never reach a log line.
      redact: {
        paths: ["req.headers.authorization", 'req.headers["mdm-signature"]', "req.headers.cookie", 'req.headers["x-csrf-token"]'],
        remove: true,
      },
    },
    destination,
  );
}

/** Opens the store, assembles the MDM service and starts listening. */
export async function startServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  boundHeap();
  // Read before anything is written: a start refused for a missing --ca leaves no new API key or CA behind.
  const caPems = readCaFiles(config);
  const profileSigner = config.enrollment.profileSigner ? loadProfileSigner(config.enrollment.profileSigner) : undefined;
  makeDataDir(config.dataDir);
  const apiKey = config.apiKey ?? loadOrCreateApiKey(config.dataDir, log);
  const { deviceCaCert, deviceCaKey } = config.enrollment;
  const deviceCa = await loadDeviceCa({
    dataDir: config.dataDir,
    certFile: deviceCaCert,
    keyFile: deviceCaKey,
    deviceCertDays: config.enrollment.deviceCertDays,
    log,
  }).catch((err: unknown) => {
    // The operator's files: said in one line, as for the other flags (a stack says nothing more).
    if (deviceCaCert === undefined && deviceCaKey === undefined) throw err;
    throw new ConfigError(`--device-ca-cert ${deviceCaCert} and --device-ca-key ${deviceCaKey}: ${(err as Error).message}`);
  });
  const trust = loadTrust(config, caPems, deviceCa, log);
  // With --webhook-url, the store writes the webhook's topics to the outbox in each change's transaction.
  const opened = await openStore(config.storage, config.dataDir, config.storagePoolSize);
  if (opened.migrated.length > 0) log.info({ migrations: opened.migrated }, "store schema migrated");
  // Held back by the store's data (operator names that differ only in case): the server runs, and says what to do.
  for (const h of opened.heldMigrations)
    log.warn({ migration: h.version, name: h.name }, `STORE MIGRATION ${h.version} (${h.name}) HELD BACK: ${h.reason}`);
  // The events this process writes go straight to its delivery, already leased (webhook/fresh-events.ts).
  const freshEvents = config.webhook ? freshEventsFor(config.webhook) : undefined;
  const store = config.webhook ? opened.withWebhookTopics(config.webhook.topics, freshEvents) : opened;
  const lastSeen = new Coalescer("last-seen times", (seen) => store.enrollments.markSeen(seen), log);
  const tokenUse = new Coalescer("AuthToken use times", (used) => store.userSessions.markTokensUsed(used), log);
  lastSeen.start();
  tokenUse.start();
  const nonceSecret = await store.settings.getOrCreate("digest-nonce-secret", () => randomBytes(32));
  await checkSharedDeviceCa(store, deviceCa, log);
  const stopRetention = startRetention(
    store,
    {
      resultsMs: config.resultRetentionMs,
      eventsMs: config.eventRetentionMs,
      failureWindowMs: config.userAuth.failureWindowMs,
      auditMs: config.operators.auditRetentionMs,
      operatorSessionIdleMs: config.operators.sessionIdleMs,
    },
    log,
  );
  // SQLite's page cache follows the fleet as it grows (store/sqlite.ts, pageCacheKib); openStore sized it at start.
  const cacheSizing = setInterval(
    () => void store.fitCacheToFleet().catch((err: unknown) => log.warn({ err }, "sizing the store's page cache failed")),
    10 * 60_000,
  );
  cacheSizing.unref();

  // ABM keys and tokens, and the credential CA's key, are sealed like push certificate keys: the same secret key, another aad.
  const sealer = new SecretBox(config.push.secretKey ?? loadOrCreateSecretKey(config.dataDir, log));
  const credentialCa = await loadCredentialCa({
    stored: () => store.settings.get(CREDENTIAL_CA_SETTING),
    storeIfAbsent: (value) => store.settings.getOrCreate(CREDENTIAL_CA_SETTING, () => value),
    sealer,
    log,
  }).catch((err: unknown) => {
    if (!(err instanceof SecretKeyMismatch)) throw err;
    throw new ConfigError(
      "the credential CA kept in the store does not open with this server's secret key: give every process the same --secret-key",
    );
  });
  // A certificate the credential CA issued (a Wi-Fi or VPN identity) never authenticates a device, whatever --ca says.
  trust.refuseIssuer(credentialCa.certPem);
  const credentialCaPem = Buffer.from(credentialCa.certPem, "utf8");

  const metrics = new Metrics(store, {
    deviceCa: deviceCa.certPem,
    profileSigner: profileSigner?.certPem,
    credentialCa: credentialCa.certPem,
  });
  const push = startPush({ config: config.push, store, dataDir: config.dataDir, log, observer: metrics });
  const webhook = config.webhook
    ? startWebhookDelivery({ store, options: config.webhook, log, observer: metrics, fresh: freshEvents })
    : undefined;
  const ade = new AdeService({
    store,
    sealer,
    log,
    url: config.ade.url,
    publicUrl: config.enrollment.publicUrl,
  });
  const stopAde = ade.start(config.ade);
  // OS updates through DDM: its compliance reads each status report, in the report's transaction.
  let updates: SoftwareUpdates | undefined;
  // --dm-url: the DDM service's declarations are the devices'; Orchard's own DDM, and what is built on it, stands aside.
  const ddmForwarded = config.dmUrl !== undefined;
  // The ADE enrollment URL: MachineInfo signatures always, their chain to Apple's device CA with --ade-device-ca.
  const adeEnrollment = new AdeEnrollment({ store, appleCas: loadAppleDeviceCas(config.ade.deviceCaFile, log) });
  if (!adeEnrollment.checksAppleCa && (await store.ade.servers()).length > 0) {
    log.warn(
      "ADE enrollment URL without --ade-device-ca: ANYONE WHO KNOWS AN ASSIGNED SERIAL NUMBER CAN FETCH ITS ENROLLMENT PROFILE (docs/automated-enrollment.md)",
    );
  }
  // Await configuration: each ABM server's initial set, then DeviceConfigured.
  const adeSetup = new AdeSetup({
    initialSet: (json) => {
      const s = readSettings(json);
      // Sets stored before --dm-url was given would be Orchard's own, which no device reads then.
      return { commands: s.initialCommands, ddmSets: ddmForwarded ? [] : s.initialDdmSets, releaseOnFailure: s.releaseOnFailure };
    },
    pusher: push.pusher,
  });
  const core = new CoreService({
    store,
    lastSeen,
    userAuth: new UserAuthService(store, config.userAuth, nonceSecret, metrics.userAuthenticate),
    declarative: config.dmUrl ? new DeclarativeManagement(config.dmUrl) : undefined,
    ddm: new DdmService(
      store,
      metrics.ddmRequest,
      (tx, id, report, now) => updates?.statusHook(tx, id, report, now) ?? Promise.resolve(),
      (id) => updates?.factsChanged(id),
    ),
    notNow: push.notNow,
    adeSetup,
    // A device that enrolls or reports a new OS version is re-targeted at once (updates/service.ts).
    onDeviceFacts: (id) => (ddmForwarded ? undefined : updates?.factsChanged(id)),
  });
  // Outermost first: an ADE device's serial-bound identity, the certificate
  // binding, then the AuthToken of a network user's channel, then the core.
  const certBinding = new CertBinding(new AuthTokenGuard(core, store, tokenUse), store, {
    rebind: config.rebind,
    pusher: push.pusher,
  });
  const service: MdmService = new AdeIdentity(certBinding, store);
  if (config.rebind.policy === "any") {
    log.warn(
      "--rebind any: ANY TRUSTED CERTIFICATE THAT SENDS Authenticate WITH AN ENROLLED DEVICE'S UDID TAKES THAT DEVICE OVER (its commands, its bootstrap token)",
    );
  }

  // Declarative Device Management: the operator's API (declarations checked
  // against Apple's schema, orchard: file references resolved to the URL and
  // hash devices download), and the sweep that queues a DeclarativeManagement
  // command for each channel a change reaches. Assets and stored profiles are
  // downloaded below ServerURL, at --public-url.
  const ddmUrls: DeviceUrls = { publicUrl: config.enrollment.publicUrl, serverPath: config.serverPath };
  // The files are read through the store the resolver is given: the open transaction when a file is replaced.
  const ddmFiles = (s: Store) => ({
    asset: (id: string) => s.ddmAssets.get(id),
    profile: (id: string) => s.ddmProfiles.get(id),
    credential: (name: string) => s.ddmCredentials.get(name),
    credentialCa: () => ({ size: credentialCaPem.length, sha256: sha256Hex(credentialCaPem) }),
  });
  const ddmAdmin = new DdmAdmin(store, { validate: validateDeclaration, resolve: (d, s) => resolveDeclaration(d, ddmFiles(s), ddmUrls) });
  const ddmSync = new DdmSync(store, push.pusher, log, { onQueued: metrics.ddmSyncQueued });
  // With --dm-url the DDM service's declarations are the devices': Orchard's own would only contradict them.
  if (!ddmForwarded) ddmSync.start();
  else
    log.info(
      { dmUrl: new URL(config.dmUrl!).origin },
      "DDM check-ins are forwarded (--dm-url): Orchard's own DDM, software update policies and ADE's initial DDM sets stand aside; their API refuses changes",
    );
  // Update policies become enforcement declarations in built-in sets (src/updates/, docs/software-updates.md).
  updates = new SoftwareUpdates({
    store,
    admin: ddmAdmin,
    pusher: push.pusher,
    log,
    options: config.softwareUpdates,
    observer: metrics.softwareLookup,
  });
  // Its policies are Orchard's own declarations: with --dm-url nothing re-targets them, nor asks devices for time zones.
  const stopUpdates = ddmForwarded ? async () => {} : updates.start();

  const challenges = new ScepChallenges(store, config.enrollment.scepChallengeTtlMs);
  // Failed attempts per client address on the routes devices reach without the API key, one count per route.
  const failureLimiter = () => new ApiFailureLimiter(config.limits.apiMaxFailures, config.limits.apiFailureWindowMs);
  const app = buildApp({
    log,
    metrics,
    store,
    service,
    forgetDevice: (id) => certBinding.forget(id),
    refineError: (err, id, log) => certBinding.refineError(err, id, log),
    pusher: push.pusher,
    trust,
    apiKey,
    operatorAuth: new OperatorAuth(store, { idleMs: config.operators.sessionIdleMs, absoluteMs: config.operators.sessionMaxAgeMs }),
    certHeader: config.certHeader,
    dmUrl: config.dmUrl,
    checkinPath: config.checkinPath,
    serverPath: config.serverPath,
    checkinBodyLimit: config.checkinBodyLimit,
    reportBodyLimit: config.reportBodyLimit,
    limits: { ...config.limits, plist: plistLimits(config.limits.plist) },
    publicPlugins: [
      (open) => registerScepRoutes(open, { store, deviceCa, credentialCa, limiter: failureLimiter() }),
      (open) =>
        registerEnrollRoutes(open, {
          store,
          deviceCa,
          newChallenge: async () => (await challenges.create()).challenge,
          apiKey,
          enrollmentToken: config.enrollment.enrollmentToken,
          publicUrl: config.enrollment.publicUrl,
          checkinPath: config.checkinPath,
          serverPath: config.serverPath,
          scepPath: "/scep",
          signer: profileSigner,
          sandboxApns: config.push.apnsUrl === APNS_SANDBOX,
          limiter: failureLimiter(),
        }),
      (open) =>
        registerAdeEnrollRoutes(open, {
          store,
          enrollment: adeEnrollment,
          newChallenge: async (serial) => (await challenges.create(undefined, undefined, serial)).challenge,
          publicUrl: config.enrollment.publicUrl,
          checkinPath: config.checkinPath,
          serverPath: config.serverPath,
          scepPath: "/scep",
          signer: profileSigner,
          sandboxApns: config.push.apnsUrl === APNS_SANDBOX,
          limiter: failureLimiter(),
        }),
      (open) =>
        registerDdmDeviceRoutes(open, {
          store,
          trust,
          certHeader: config.certHeader,
          fromTrustedProxy: trustedProxy(config.trustProxy, "loopback"),
          serverPath: config.serverPath,
          credentials: {
            caPem: credentialCa.certPem,
            scepUrl: config.enrollment.publicUrl === undefined ? undefined : config.enrollment.publicUrl + CREDENTIAL_SCEP_PATH,
            challengeTtlMs: config.enrollment.scepChallengeTtlMs,
          },
        }),
    ],
    apiPlugins: [
      (api) => registerUserRoutes(api, { store, realm: config.userAuth.realm }),
      (api) => registerPushRoutes(api, { store, certs: push.certs, pusher: push.pusher }),
      (api) => registerScepApiRoutes(api, challenges),
      (api) => registerRebindRoutes(api, { store, rebind: config.rebind }),
      (api) =>
        registerDdmAssetRoutes(api, {
          store,
          urls: ddmUrls,
          bodyLimit: config.assetBodyLimit,
          hooks: declarationFileHooks(store, ddmAdmin),
        }),
      (api) =>
        registerDdmCredentialRoutes(api, {
          store,
          urls: ddmUrls,
          caPem: credentialCa.certPem,
          hooks: declarationFileHooks(store, ddmAdmin),
        }),
      (api) => registerDdmRoutes(api, { store, admin: ddmAdmin }),
      (api) => registerInventoryRoutes(api, { store, subscriptions: new InventorySubscriptions(store, ddmAdmin) }),
      (api) =>
        registerWebhookRoutes(api, {
          store,
          webhook: config.webhook && {
            url: webhookTarget(new URL(config.webhook.url)),
            topics: config.webhook.topics.list(),
            wake: () => webhook?.wake(),
          },
        }),
      (api) => registerAdeRoutes(api, { store, ade, adeSetup, dmUrl: config.dmUrl }),
      (api) => registerUpdateRoutes(api, { updates: updates! }),
    ],
    trustProxy: config.trustProxy,
    https: config.tlsCert ? tlsPair(config.tlsCert, config.tlsKey!) : undefined,
  });
  let metricsListener: MetricsListener | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await metricsListener?.close();
    stopRetention();
    clearInterval(cacheSizing);
    await stopUpdates();
    await ddmSync.stop();
    await app.close();
    await stopAde();
    await push.close();
    await webhook?.close();
    await lastSeen.stop();
    await tokenUse.stop();
    await store.close();
  };
  // --metrics-listen first: a port it cannot have stops the start before the main listener says it is up.
  if (config.metricsListen) {
    try {
      metricsListener = await startMetricsListener(metrics, config.metricsListen.host, config.metricsListen.port, log);
    } catch (err) {
      await close();
      throw Object.assign(err as Error, { listenFlag: "--metrics-listen" });
    }
  }
  // Fastify does not know the node:http server it was given is TLS: its own line and the URL take the scheme from here.
  const scheme = config.tlsCert ? "https:" : "http:";
  await app
    .listen({
      host: config.host,
      port: config.port,
      listenTextResolver: (address) => `Server listening at ${address.replace(/^https?:/, scheme)}`,
    })
    .catch(async (err: unknown) => {
      await close();
      throw Object.assign(err as Error, { listenFlag: "--listen" });
    });
  const { port } = app.server.address() as AddressInfo;
  const host =
    config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `${scheme}//${host}:${port}`;
  log.info(
    { url, checkinPath: config.checkinPath, serverPath: config.serverPath, userAuth: config.userAuth.policy, realm: config.userAuth.realm },
    "orchard listening",
  );

  return {
    app,
    store,
    deviceCa,
    credentialCa,
    url,
    apiKey,
    metricsUrl: metricsListener?.url,
    resolveDeclaration: (decl) => resolveDeclaration(decl, ddmFiles(store), ddmUrls),
    close,
  };
}

/** A file a flag names, or a ConfigError that says which flag and why (a start-up failure is one line). */
function readFlagFile(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory"
          : code === "EACCES"
            ? "permission denied"
            : (err as Error).message;
    throw new ConfigError(`cannot read ${flag} ${file}: ${why}`);
  }
}

/** --tls-cert and --tls-key, checked to make a TLS context before the server is built. */
function tlsPair(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const pair = { cert: readFlagFile("--tls-cert", certFile), key: readFlagFile("--tls-key", keyFile) };
  try {
    tls.createSecureContext(pair);
  } catch (err) {
    throw new ConfigError(`--tls-cert ${certFile} and --tls-key ${keyFile} do not make a TLS identity: ${(err as Error).message}`);
  }
  return pair;
}

/** The configured parser caps, or undefined when they are the parser's defaults (its fast path). */
function plistLimits(caps: Config["limits"]["plist"]): Partial<PlistLimits> | undefined {
  const same = (Object.keys(caps) as (keyof typeof caps)[]).every((k) => caps[k] === DEFAULT_PLIST_LIMITS[k]);
  return same ? undefined : caps;
}

/**
 * mkdir -p with mode 0700. Node's recursive mkdir loops for ever where a
 * directory cannot be made though its parent exists (under /proc); here that
 * is the ENOENT it is, and a file in the way is EEXIST.
 */
function makeDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Made already, perhaps by another process starting at the same moment.
    if (code === "EEXIST" && fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== "ENOENT" || parent === dir || fs.existsSync(parent)) throw err;
    makeDataDir(parent);
    makeDataDir(dir);
  }
}

function loadOrCreateApiKey(dataDir: string, log: Logger): string {
  const file = path.join(dataDir, "api-key");
  if (fs.existsSync(file)) {
    const key = fs.readFileSync(file, "utf8").trim();
    requireLongSecret(`the API key in ${file}`, key);
    return key;
  }
  const key = newApiKey();
  try {
    fs.writeFileSync(file, key + "\n", { mode: 0o600, flag: "wx" });
  } catch (err) {
    // Another process starting at the same moment made it first: its key is the one.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return loadOrCreateApiKey(dataDir, log);
  }
  // Printed once, and only to a terminal: a service manager or a redirect would keep it in a log file.
  if (process.stderr.isTTY) process.stderr.write(`\nOrchard generated an API key (kept in ${file}):\n\n    ${key}\n\n`);
  else process.stderr.write(`\nOrchard generated an API key: read it from ${file} (not printed: this is no terminal)\n\n`);
  log.info({ file }, "generated a new API key");
  return key;
}

/**
 * Every process on one database must issue and trust the same device CA: a
 * device enrolled through one process's SCEP is refused by a process with
 * another CA (and --ca). The first process records its CA; the others compare.
 */
async function checkSharedDeviceCa(store: Store, deviceCa: DeviceCa, log: Logger): Promise<void> {
  const recorded = (await store.settings.getOrCreate("device-ca-fingerprint", () => Buffer.from(deviceCa.fingerprint))).toString();
  if (recorded !== deviceCa.fingerprint) {
    log.warn(
      { deviceCa: deviceCa.fingerprint, recorded },
      "THIS PROCESS'S DEVICE CA IS NOT THE ONE OTHER PROCESSES ON THIS DATABASE USE: give every process the same --device-ca-cert and --device-ca-key",
    );
  }
}

/** --ade-device-ca's certificates; none given: the enrollment URL checks MachineInfo signatures, not their chain (said once). */
function loadAppleDeviceCas(file: string | undefined, log: Logger): X509Certificate[] {
  if (file === undefined) {
    log.info("ADE enrollment URL: MachineInfo signatures are checked, but not their chain to Apple's device CA (--ade-device-ca)");
    return [];
  }
  let cas: X509Certificate[];
  try {
    cas = appleDeviceCas(readFlagFile("--ade-device-ca", file).toString("utf8"));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`--ade-device-ca ${file}: ${(err as Error).message}`);
  }
  if (cas.length === 0) throw new ConfigError(`--ade-device-ca ${file} holds no PEM certificate`);
  return cas;
}

/**
 * The device CA and every --ca: nothing else, unless the lab opt-in
 * --insecure-accept-any-device-cert asks for any certificate, said loudly.
 */
/** The PEMs of --ca, each checked to hold a certificate. */
function readCaFiles(config: Config): string[] {
  return config.caFiles.map((file) => {
    const pem = readFlagFile("--ca", file).toString("utf8");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new ConfigError(
        `--ca ${file} holds no PEM certificate (a DER .cer converts with: openssl x509 -inform der -in ${file} -out ca.pem)`,
      );
    }
    return pem;
  });
}

function loadTrust(config: Config, cas: readonly string[], deviceCa: DeviceCa, log: Logger): DeviceTrust {
  if (config.insecureAcceptAnyDeviceCert) {
    log.warn(
      "--insecure-accept-any-device-cert: ANY DEVICE CERTIFICATE WITHIN ITS VALIDITY IS ACCEPTED, self-signed ones included. " +
        "Anyone who can reach this server can enroll as any device it has not seen yet. For labs only: never with real devices.",
    );
    return DeviceTrust.any();
  }
  const trust = new DeviceTrust([...cas, deviceCa.certPem]);
  log.info({ deviceCa: deviceCa.fingerprint, caFiles: config.caFiles }, "device identities trusted: the device CA and --ca");
  return trust;
}
