/** One Server-Sent Event from berth's /api/v1/events, with when it arrived (Date.now()). */
export interface SeenEvent<D = Record<string, unknown>> {
  type: string;
  data: D;
  at: number;
}

/**
 * Follows a running berth's event stream (like `curl -N …/api/v1/events?types=…`), keeping every
 * event with its arrival time, until `close()`.
 */
export async function followEvents<D = Record<string, unknown>>(api: string, types?: string): Promise<{ seen: SeenEvent<D>[]; close(): Promise<void> }> {
  const res = await fetch(`${api}/api/v1/events${types ? `?types=${types}` : ''}`);
  if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const seen: SeenEvent<D>[] = [];
  let pending = '';
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += decoder.decode(value, { stream: true });
      for (let i = pending.indexOf('\n\n'); i >= 0; i = pending.indexOf('\n\n')) {
        const block = pending.slice(0, i);
        pending = pending.slice(i + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type && data) seen.push({ type, data: JSON.parse(data) as D, at: Date.now() });
      }
    }
  })().catch(() => {});
  return {
    seen,
    close: async () => {
      await reader.cancel().catch(() => {});
      await reading;
    },
  };
}
