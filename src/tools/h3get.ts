/**
 * A tiny HTTP/3 client for trying Spooky: `npm run h3 -- https://127.0.0.1:8443/ [-k]`.
 * Prints the status, the headers and the body. `-k` skips certificate verification (self-signed demo cert).
 */
const args = process.argv.slice(2);
const insecure = args.includes('-k') || args.includes('--insecure');
const url = args.find((a) => !a.startsWith('-')) ?? 'https://127.0.0.1:8443/';
try {
  const res = await fetch(url, { protocol: 'http3', tls: { rejectUnauthorized: !insecure } } as RequestInit);
  console.log(`HTTP/3 ${res.status}`);
  for (const [k, v] of res.headers) console.log(`${k}: ${v}`);
  console.log();
  console.log(await res.text());
} catch (e) {
  console.error(`request failed: ${(e as Error).message}${insecure ? '' : ' (self-signed certificate? add -k)'}`);
  process.exit(1);
}
