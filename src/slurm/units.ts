/**
 * Parses a Slurm time limit into seconds. A number is minutes; a string is one
 * of Slurm's forms: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S".
 * Returns undefined when the text is none of them, or the limit is zero.
 */
export function parseDurationSeconds(value: number | string): number | undefined {
  // Zero (or a number of minutes that rounds to zero seconds) would read as no limit at all in Slurm: refused.
  if (typeof value === "number") {
    const seconds = Number.isFinite(value) ? Math.round(value * 60) : 0;
    return seconds > 0 ? seconds : undefined;
  }
  const text = value.trim();
  let m = /^(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?$/.exec(text);
  if (m) {
    const [, d, h, min, s] = m;
    const total = Number(d) * 86400 + Number(h) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
    return total > 0 ? total : undefined;
  }
  m = /^(\d+)(?::(\d+)(?::(\d+))?)?$/.exec(text);
  if (!m) return undefined;
  const [, a, b, c] = m;
  const total = c !== undefined ? Number(a) * 3600 + Number(b) * 60 + Number(c) : b !== undefined ? Number(a) * 60 + Number(b) : Number(a) * 60;
  return total > 0 ? total : undefined;
}

/** Renders seconds as Slurm's "D-HH:MM:SS" (or "HH:MM:SS" under a day). */
export function formatSlurmTime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const hms = [h, m, s].map((n) => String(n).padStart(2, "0")).join(":");
  return d > 0 ? `${d}-${hms}` : hms;
}

const MEMORY_UNITS: Record<string, number> = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 };

/**
 * Parses a memory size into whole megabytes (rounded up). A number is
 * megabytes; a string is a number with an optional unit K, M, G or T,
 * optionally followed by B or iB ("32G", "32GB", "500M", "1.5GiB").
 */
export function parseMemoryMegabytes(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? Math.ceil(value) : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?$/i.exec(value.trim());
  if (!m) return undefined;
  const mb = Math.ceil(Number(m[1]) * (MEMORY_UNITS[(m[2] ?? "M").toUpperCase()] ?? 1));
  return mb > 0 ? mb : undefined;
}

/** Renders megabytes the way sbatch takes them: "32G" when whole gigabytes, else "500M". */
export function formatMemory(megabytes: number): string {
  if (megabytes === 0) return "0"; // all of each node's memory
  return megabytes % 1024 === 0 ? `${megabytes / 1024}G` : `${megabytes}M`;
}
