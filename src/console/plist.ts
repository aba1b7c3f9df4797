// A small XML property list writer for the commands the console builds from
// its forms. Every string is escaped; a raw plist typed by the operator is
// sent as it is and checked by the server.

export type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue | undefined };

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function value(v: PlistValue, indent: string): string {
  if (typeof v === "string") return `${indent}<string>${escapeXml(v)}</string>`;
  if (typeof v === "boolean") return `${indent}<${v}/>`;
  if (typeof v === "number") return Number.isInteger(v) ? `${indent}<integer>${v}</integer>` : `${indent}<real>${v}</real>`;
  if (Array.isArray(v)) {
    if (v.length === 0) return `${indent}<array/>`;
    return `${indent}<array>\n${v.map((x) => value(x, `${indent}  `)).join("\n")}\n${indent}</array>`;
  }
  const entries = Object.entries(v).filter((e): e is [string, PlistValue] => e[1] !== undefined);
  if (entries.length === 0) return `${indent}<dict/>`;
  const inner = entries.map(([k, x]) => `${indent}  <key>${escapeXml(k)}</key>\n${value(x, `${indent}  `)}`).join("\n");
  return `${indent}<dict>\n${inner}\n${indent}</dict>`;
}

export function plistXml(root: { [key: string]: PlistValue | undefined }): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
${value(root, "")}
</plist>
`;
}

/** A command plist: `{Command: {RequestType, ...fields}, CommandUUID}`. */
export function commandPlist(requestType: string, fields: { [key: string]: PlistValue | undefined }, commandUuid: string): string {
  return plistXml({ Command: { RequestType: requestType, ...fields }, CommandUUID: commandUuid });
}
