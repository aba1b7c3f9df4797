/** The value of one sample of a Prometheus text (name and exact label set, as prom-client writes it), 0 when absent. */
export function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
