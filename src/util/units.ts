/** "500m" → 0.5e9, "1.5" → 1.5e9: CPU limit as Docker NanoCpus. */
export function cpuToNano(cpu: string): number {
  const cores = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu);
  return Math.round(cores * 1e9);
}

const MEMORY_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 };

/** "256Mi", "512m", "1g", "1048576" → bytes. Suffixes are binary, as in `docker run -m`. */
export function memoryToBytes(memory: string): number {
  const m = /^([0-9]+)([A-Za-z]*)$/.exec(memory);
  const unit = MEMORY_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) throw new Error(`invalid memory size ${JSON.stringify(memory)}`);
  return Number(m[1]) * unit;
}

/** "30s", "5m", "1h30m", "500ms" → milliseconds. */
export function parseDuration(text: string): number {
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) throw new Error(`invalid duration ${JSON.stringify(text)}; expected e.g. 30s, 5m, 1h30m`);
  return total;
}
