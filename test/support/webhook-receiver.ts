import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  body: string;
  json: any;
  headers: http.IncomingHttpHeaders;
  url: string;
}

/**
 * A webhook receiver on 127.0.0.1: records every request, answers what
 * `answer` says (200 by default). down() closes it; up() listens again on the
 * same port, so a server pointed at it sees it go away and come back.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  answer: (r: Received, index: number) => number | Promise<number> = () => 200;
  private server: http.Server | undefined;
  port = 0;

  static async start(o: { down?: boolean } = {}): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    await r.up();
    if (o.down) await r.down();
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Event ids received, in order (repeats included). */
  get eventIds(): string[] {
    return this.received.map((r) => r.json.event_id as string);
  }

  up(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const r: Received = { body, json: JSON.parse(body), headers: req.headers, url: req.url ?? "" };
        const index = this.received.push(r) - 1;
        res.statusCode = await this.answer(r, index);
        res.end();
      });
    });
    this.server = server;
    return new Promise((resolve) =>
      server.listen(this.port, "127.0.0.1", () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      }),
    );
  }

  down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
