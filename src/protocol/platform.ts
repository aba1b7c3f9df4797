/**
 * The platform of a device, read from what its Authenticate says. Apple sends
 * no platform key: the ProductName (a model identifier such as `Mac14,2`,
 * `MacBookPro18,3`, `iPhone15,4`, `iPad13,18`) names the hardware family, and
 * the ModelName (`MacBook Pro`, `iPhone`, `iPad`) stands in when it is absent.
 */
export const PLATFORMS = ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Model identifier prefixes, longest first where one prefix starts another. */
export const PLATFORM_PREFIXES: ReadonlyArray<readonly [prefix: string, platform: Platform]> = [
  ["iMac", "macOS"],
  ["Mac", "macOS"],
  ["VirtualMac", "macOS"],
  ["Xserve", "macOS"],
  ["iPhone", "iOS"],
  ["iPod", "iOS"],
  ["iPad", "iPadOS"],
  ["AppleTV", "tvOS"],
  ["Watch", "watchOS"],
  ["RealityDevice", "visionOS"],
];

/** The platform, or null when neither name is one Apple uses for a platform's devices. */
export function platformOf(productName: string | null | undefined, modelName?: string | null): Platform | null {
  for (const name of [productName, modelName]) {
    if (!name) continue;
    // ModelName has spaces ("MacBook Pro", "Apple TV"): compare without them.
    const compact = name.replace(/\s+/g, "");
    for (const [prefix, platform] of PLATFORM_PREFIXES) if (compact.startsWith(prefix)) return platform;
  }
  return null;
}

/** The same rule in SQL over a devices row (the migration that fills the column for devices enrolled before it). */
export function platformSql(productColumn: string, modelNameColumn: string): string {
  const arms = [productColumn, `REPLACE(${modelNameColumn}, ' ', '')`].flatMap((column) =>
    PLATFORM_PREFIXES.map(([prefix, platform]) => `WHEN ${column} LIKE '${prefix}%' THEN '${platform}'`),
  );
  return `CASE ${arms.join(" ")} ELSE NULL END`;
}
