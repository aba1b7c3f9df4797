// CPU time and memory of another local process, read from Linux's /proc: the
// PostgreSQL backends serving a bench database, and servers that are not
// node processes (NanoMDM), which cannot report over IPC as ours do.
import { execFileSync } from "node:child_process";
import fs from "node:fs";

/** utime and stime (fields 14 and 15 of /proc/<pid>/stat, all threads), in clock ticks. */
export function parseStatTicks(stat: string): { user: number; system: number } {
  // The command name (field 2) is in parentheses and may hold spaces or ")": fields are counted after the last ")".
  const close = stat.lastIndexOf(")");
  if (close === -1) throw new Error("not a /proc/<pid>/stat line");
  const f = stat.slice(close + 2).split(" ");
  // f[0] is field 3 (state), so field n is f[n - 3].
  const user = Number(f[11]);
  const system = Number(f[12]);
  if (!Number.isInteger(user) || !Number.isInteger(system)) throw new Error("no utime/stime in the /proc/<pid>/stat line");
  return { user, system };
}

/** A "Name:   123 kB" line of /proc/<pid>/status, in bytes; undefined when the field is not there. */
export function parseStatusBytes(status: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s*(\\d+)\\s*kB$`, "m").exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (USER_HZ), 100 almost everywhere. */
export function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  return ticksPerSecond;
}

/** User and system CPU time of a local process in microseconds (process.cpuUsage()'s shape); undefined when it cannot be read. */
export function procCpuUsage(pid: number): NodeJS.CpuUsage | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  const { user, system } = parseStatTicks(stat);
  const us = 1e6 / clockTicks();
  return { user: user * us, system: system * us };
}

/** CPU seconds (user + system) of a local process; undefined when it cannot be read. */
export function procCpuS(pid: number): number | undefined {
  const cpu = procCpuUsage(pid);
  return cpu && (cpu.user + cpu.system) / 1e6;
}

/** Resident memory now (VmRSS) and its high-water mark over the process's life (VmHWM), in bytes. */
export function procMemory(pid: number): { rss: number; hwm: number } | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, "latin1");
  } catch {
    return undefined;
  }
  const rss = parseStatusBytes(status, "VmRSS");
  if (rss === undefined) return undefined; // a zombie has no memory lines
  return { rss, hwm: parseStatusBytes(status, "VmHWM") ?? rss };
}
