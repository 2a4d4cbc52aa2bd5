// The image's HEALTHCHECK: GET /healthz on berth's API address (BERTH_LISTEN, default 127.0.0.1:7654).
// Exit 0 when it answers 200 within 4 s, else 1 (Docker counts the failures).
const listen = process.env.BERTH_LISTEN || '127.0.0.1:7654';
const cut = listen.lastIndexOf(':');
let host = cut > 0 ? listen.slice(0, cut) : '127.0.0.1';
const port = cut >= 0 ? listen.slice(cut + 1) : listen;
if (host === '0.0.0.0' || host === '' || host === '[::]' || host === '::') host = '127.0.0.1';
try {
  const res = await fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
  if (!res.ok) {
    console.error(`berth /healthz answered ${res.status}`);
    process.exit(1);
  }
} catch (err) {
  console.error(`berth /healthz at ${host}:${port}: ${err.cause?.message ?? err.message}`);
  process.exit(1);
}
