import http from "node:http";
import https from "node:https";

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

/** Anything that can carry a device's request: one server, or several behind a balancer. */
export interface Sender {
  send(o: RequestOptions): Promise<Response>;
}

/** Spreads requests over several servers in turn, as a load balancer would. */
export class RoundRobin implements Sender {
  private next = 0;
  constructor(private readonly senders: readonly Sender[]) {}
  send(o: RequestOptions): Promise<Response> {
    const sender = this.senders[this.next++ % this.senders.length]!;
    return sender.send(o);
  }
}

/**
 * A small keep-alive HTTP(S) client for simulated devices: one agent per base
 * URL, bodies as Buffers, no redirects or retries (a device's own behaviour is
 * the caller's business).
 */
export class Transport implements Sender {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(baseUrl: string, tls?: https.AgentOptions, maxSockets = 64) {
    this.url = new URL(baseUrl);
    const isHttps = this.url.protocol === "https:";
    this.agent = isHttps ? new https.Agent({ keepAlive: true, maxSockets, ...tls }) : new http.Agent({ keepAlive: true, maxSockets });
    this.request = isHttps ? https.request : http.request;
  }

  send(o: RequestOptions): Promise<Response> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...o.headers };
      if (o.body) headers["content-length"] = o.body.length;
      const req = this.request(
        { host: this.url.hostname, port: this.url.port, method: o.method, path: o.path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(o.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
