import type { CheckinMessage } from "../protocol/checkin.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { Store } from "../store/index.ts";
import type { NanoMdmTopic } from "../store/webhook-format.ts";
import type { MdmRequest } from "./service.ts";

// The webhook's MDM events (NanoMDM's topics), written through the Store a
// handler writes its change with: inside its transaction, the event commits
// with the change or not at all. Without --webhook-url they write nothing.

/** mdm.<MessageType> of a check-in (ReturnToService has no NanoMDM topic). */
function topicOf(msg: CheckinMessage): NanoMdmTopic | undefined {
  return msg.messageType === "ReturnToService" ? undefined : `mdm.${msg.messageType}`;
}

/** The check-in's event; tokenUpdateTally for TokenUpdate. */
export async function recordCheckin(store: Store, req: MdmRequest, msg: CheckinMessage, tokenUpdateTally?: number): Promise<void> {
  const topic = topicOf(msg);
  if (topic === undefined || !store.outbox.wants(topic)) return;
  await store.outbox.checkin(topic, { channel: msg.channel, raw: msg.raw, urlParams: req.urlParams }, req.now, tokenUpdateTally);
}

/** The command report's event (mdm.Connect). */
export async function recordReport(store: Store, req: MdmRequest, report: CommandReport): Promise<void> {
  if (!store.outbox.wants("mdm.Connect")) return;
  await store.outbox.report(
    { channel: report.channel, raw: report.raw, urlParams: req.urlParams },
    report.status,
    report.commandUuid,
    req.now,
  );
}
