import { loadConfigText, formatIssue } from './src/config/load.ts';
const L = 'listen:\n  tls: { cert: c.pem, key: k.pem }\n';
for (const y of [`${L}upstream:\n\tapi: {}\n`, ['listen:', '  port: -1', '  tls: { cert: c, key: k }', 'upstream:', '  api:', '    backends: [ { id: a', ''].join('\n')]) {
  const r = loadConfigText(y, 'x.yaml', '/');
  if (!r.ok) console.log(r.errors.map(formatIssue).join('\n'));
  console.log('--');
}
