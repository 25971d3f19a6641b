/**
 * One HTTP/3 load-generating process: `bun --experimental-http3-fetch bench/h3-load.ts URL CONCURRENCY DURATION_MS`.
 * Runs CONCURRENCY request loops over one QUIC connection for DURATION_MS (after a short warm-up) and prints
 * one JSON line: requests, errors, latency samples summary (p50/p99 in ms).
 */
const [url = '', concurrencyArg = '16', durationArg = '5000', warmupArg = '500'] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const duration = Number(durationArg);
const warmup = Number(warmupArg);
const init = { protocol: 'http3', tls: { rejectUnauthorized: false } } as RequestInit;

let measuring = false;
let stop = false;
let requests = 0;
let errors = 0;
const latencies: number[] = [];

async function loop(): Promise<void> {
  while (!stop) {
    const t0 = performance.now();
    try {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(String(res.status));
      if (measuring) {
        requests++;
        latencies.push(performance.now() - t0);
      }
    } catch {
      if (measuring) errors++;
    }
  }
}

const loops = Array.from({ length: concurrency }, loop);
await Bun.sleep(warmup);
measuring = true;
const start = performance.now();
await Bun.sleep(duration);
measuring = false;
const elapsed = performance.now() - start;
stop = true;
await Promise.all(loops);
latencies.sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
console.log(JSON.stringify({ requests, errors, elapsedMs: elapsed, p50: q(0.5), p99: q(0.99) }));
process.exit(0);
