import { loadConfigFile, formatIssue } from './src/config/load.ts';
for (const f of process.argv.slice(2)) {
  const r = await loadConfigFile(f);
  if (r.ok) console.log(JSON.stringify(r.config, null, 1));
  else for (const e of r.errors) console.log(formatIssue(e));
  for (const w of r.warnings) console.log(formatIssue(w));
}
