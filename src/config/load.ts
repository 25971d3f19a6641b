/**
 * Loads a Spooky config file: YAML -> schema -> cross-field checks -> resolved {@link Config}.
 *
 * Every problem in the file is reported in one go (YAML syntax, schema and cross-field errors), each with
 * file, 1-based line and column of the offending node, its YAML path and a plain message. Loading never
 * touches the files the config names (certificates, CA bundles): checking those is the listener's job.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import { z } from 'zod';
import { crossFieldChecks } from './checks.ts';
import { zodIssuesToConfigIssues } from './issues.ts';
import { resolveConfig } from './resolve.ts';
import { ConfigFileSchema } from './schema.ts';
import { SourceMap } from './source.ts';
import type { Config, ConfigIssue } from './types.ts';

/** The defaults applied to every unset field (see `resolve.ts`). */
export { DEFAULTS } from './resolve.ts';
/** Strategy and log-level name tables (see `schema.ts`), re-exported so callers need only this module. */
export {
  CANONICAL_STRATEGIES,
  canonicalStrategy,
  LOG_LEVEL_ALIASES,
  STICKY_CID_NAMES,
  STRATEGY_ALIASES,
} from './schema.ts';
/** Issue and path formatting (see `source.ts`). */
export { formatIssue, formatPath } from './source.ts';

/** The result of a load: the config and the warnings, or every error (and the warnings found so far). */
export type LoadResult = { ok: true; config: Config; warnings: ConfigIssue[] } | { ok: false; errors: ConfigIssue[]; warnings: ConfigIssue[] };

/** How many alias expansions a document may need before it is refused (guards against alias bombs). */
const MAX_ALIAS_COUNT = 1000;
/** Deepest nesting of maps and lists accepted (real configs stay under 10). */
const MAX_DEPTH = 64;

/** Offset of the first map or list nested deeper than {@link MAX_DEPTH} (the top level is 1), or undefined. */
function firstTooDeep(root: unknown): number | undefined {
  const stack: [node: unknown, depth: number][] = [[root, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (!isCollection(node)) continue;
    if (depth > MAX_DEPTH) return node.range?.[0] ?? 0;
    for (let i = node.items.length - 1; i >= 0; i--) {
      const item = node.items[i];
      if (isPair(item)) stack.push([item.value, depth + 1], [item.key, depth + 1]);
      else stack.push([item, depth + 1]);
    }
  }
  return undefined;
}

function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return a.line - b.line || a.column - b.column;
}

/**
 * Drops issues that repeat another one at the same position and YAML path with the same message. (Two aliases
 * of one anchored map with an error report it at the anchor's position once per path that reaches it.)
 */
function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.line}:${i.column}:${i.path}:${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const TAB_MESSAGE = 'tabs are not allowed for indentation; use spaces';

/**
 * A tab used for indentation makes the YAML parser report three or four more errors about the same lines
 * (implicit keys, block sequences as keys): keep only the tab error for the tab's line and the line before it.
 */
function withoutTabNoise(errors: ConfigIssue[]): ConfigIssue[] {
  const tabLines = new Set(errors.filter((e) => e.message === TAB_MESSAGE).map((e) => e.line));
  if (tabLines.size === 0) return errors;
  return errors.filter((e) => e.message === TAB_MESSAGE || !(tabLines.has(e.line) || tabLines.has(e.line + 1)));
}

function yamlMessage(e: YAMLError, src: SourceMap): string {
  switch (e.code) {
    case 'DUPLICATE_KEY': {
      const key = src.pathAtOffset(e.pos[0]).at(-1);
      return key === undefined ? 'duplicate key' : `duplicate key \`${String(key)}\``;
    }
    case 'TAB_AS_INDENT':
      return TAB_MESSAGE;
    case 'MULTIPLE_DOCS':
      return 'the file holds more than one YAML document (a second `---`); Spooky reads exactly one';
    default:
      return `invalid YAML: ${e.message}`;
  }
}

/**
 * Where an explicit null means "not set": the optional fields of the Rust Spooky, whose sample configs write
 * `ca_file: null` and the like (serde reads null as `None`), at the places that config format has them. The key
 * is the path of the map that holds the field (a pool name is `*`, a list item `#`). Anywhere else, a null stays
 * an error, so it cannot quietly widen a config: `route: ~` would make a catch-all, a null header condition would
 * match everything, `admin: ~` or `budget: ~` read as "off" but would mean the defaults; and a map whose keys are
 * the user's (pool names, `tags`, `headers`) never loses an entry because its name looks like such a field.
 */
const NULLABLE_AT: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['', new Set(['load_balancing'])],
  ['upstream_tls', new Set(['ca_file', 'ca_dir', 'client_certificate', 'client_key'])],
  ['load_balancing', new Set(['key'])],
  ['upstream.*', new Set(['tls', 'load_balancing', 'health_check'])],
  ['upstream.*.tls', new Set(['ca_file', 'ca_dir', 'client_certificate', 'client_key'])],
  ['upstream.*.load_balancing', new Set(['key'])],
  ['upstream.*.route', new Set(['host', 'path_prefix', 'method'])],
  ['upstream.*.route.#', new Set(['host', 'path_prefix', 'method'])],
  ['upstream.*.backends.#', new Set(['health_check'])],
  ['upstream.*.host_policy', new Set(['host'])],
]);

/** The {@link NULLABLE_AT} key of the map holding a pair, from the pair's ancestors; undefined for an unusual key. */
function ownerPath(ancestors: readonly unknown[]): string | undefined {
  const parts: string[] = [];
  for (let i = 0; i < ancestors.length; i++) {
    const n = ancestors[i];
    if (isPair(n)) {
      if (!isScalar(n.key) || typeof n.key.value !== 'string') return undefined;
      parts.push(parts.length === 1 && parts[0] === 'upstream' ? '*' : n.key.value);
    } else if (isSeq(n)) parts.push('#');
  }
  return parts.join('.');
}

/**
 * Removes `key: null` (or `~`, `Null`, `NULL`) where {@link NULLABLE_AT} allows it. An empty value (`key:` with
 * nothing after it) stays, so a forgotten value is still reported.
 */
function dropExplicitNulls(doc: Document): void {
  visit(doc, {
    Pair(_key, pair, path) {
      const v = pair.value;
      if (!isScalar(v) || v.value !== null || v.range === undefined || v.range === null || v.range[1] <= v.range[0]) return undefined;
      if (!isScalar(pair.key) || typeof pair.key.value !== 'string') return undefined;
      const owner = ownerPath(path);
      if (owner === undefined || !NULLABLE_AT.get(owner)?.has(pair.key.value)) return undefined;
      return visit.REMOVE;
    },
  });
}

/** Two map keys that become the same object key once read (`1` and `"1"`), or the same node. */
function sameKeyText(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isScalar(a) || !isScalar(b)) return false;
  const x = a.value;
  const y = b.value;
  if (typeof x === 'symbol' || typeof y === 'symbol') return x === y;
  return x === y || String(x) === String(y);
}

/**
 * Loads a config from YAML text. `file` is only used in issues (use `<embedded>` for text that has no
 * file); relative paths in the config (certificates, CA bundle, log file) are resolved against `baseDir`.
 */
export function loadConfigText(text: string, file: string, baseDir: string): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    keepSourceTokens: true,
    prettyErrors: false,
    merge: true,
    // Keys are compared as the text they become: `1` and `"1"` (or `true` and `"true"`) are one key once read.
    uniqueKeys: sameKeyText,
    logLevel: 'error',
  });
  const src = new SourceMap(doc, lineCounter, file);
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const done = (): LoadResult => ({
    ok: false,
    errors: dedupe(withoutTabNoise(errors).sort(byPosition)),
    warnings: dedupe(warnings.sort(byPosition)),
  });

  for (const e of doc.errors) errors.push(src.issueAtOffset('error', e.pos[0], yamlMessage(e, src)));
  for (const w of doc.warnings) warnings.push(src.issueAtOffset('warning', w.pos[0], `YAML: ${w.message}`));
  const tooDeep = firstTooDeep(doc.contents);
  if (tooDeep !== undefined) {
    // Before any walk of the document: `visit` copies the path of ancestors at every node (quadratic time).
    errors.push(src.issueAtOffset('error', tooDeep, `the document is nested more than ${MAX_DEPTH} levels deep`));
    return done();
  }
  let unreadable = false;
  let firstAlias: number | undefined;
  /** A merge (`<<`) source: a map, an alias of a map. */
  const mergeable = (n: unknown): boolean => isMap(n) || (isAlias(n) && isMap(n.resolve(doc)));
  visit(doc, {
    Alias(_key, node) {
      firstAlias ??= node.range?.[0];
      if (isAlias(node) && !node.resolve(doc)) {
        unreadable = true;
        errors.push(src.issueAtOffset('error', node.range?.[0] ?? 0, `unknown alias *${node.source}: no anchor &${node.source} before it`));
      }
    },
    Pair(_key, pair) {
      if (isCollection(pair.key)) {
        unreadable = true;
        errors.push(src.issueAtOffset('error', pair.key.range?.[0] ?? 0, 'map keys must be plain values, not lists or maps'));
      } else if (isScalar(pair.key) && typeof pair.key.value === 'symbol') {
        // the merge key `<<` (with `merge: true` its value is a symbol)
        const v = pair.value;
        if (!(mergeable(v) || (isSeq(v) && v.items.every(mergeable)))) {
          unreadable = true;
          const at = (isNode(v) ? v.range?.[0] : undefined) ?? pair.key.range?.[0] ?? 0;
          errors.push(src.issueAtOffset('error', at, 'a merge key (`<<`) takes a map, an alias of a map, or a list of those'));
        }
      } else if (isScalar(pair.key) && pair.key.value === '__proto__') {
        // A plain JS object cannot hold this key; it would silently vanish (or change the object's prototype).
        unreadable = true;
        errors.push(src.issueAtOffset('error', pair.key.range?.[0] ?? 0, '`__proto__` cannot be used as a key'));
      }
    },
  });
  if (unreadable) return done();
  dropExplicitNulls(doc);
  // Past a syntax error the document is a guess: keep only the schema and cross-field errors about nodes
  // that end before the first syntax error, so the report holds no follow-on noise.
  const syntaxAt = Math.min(...doc.errors.map((e) => e.pos[0]));
  const beforeSyntaxError = (i: ConfigIssue) => (src.endOf(i) ?? Number.POSITIVE_INFINITY) <= syntaxAt;

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // Past the checks above, what toJS refuses is an alias bomb: point at the first alias.
    errors.push(src.issueAtOffset('error', firstAlias ?? 0, `cannot read the YAML document: ${e instanceof Error ? e.message : String(e)}`));
    return done();
  }
  if (raw === null || raw === undefined) {
    if (errors.length === 0) errors.push({ severity: 'error', file, line: 1, column: 1, path: '', message: 'the config file is empty' });
    return done();
  }

  const parsed = ConfigFileSchema.safeParse(raw);
  const later: ConfigIssue[] = parsed.success ? [] : zodIssuesToConfigIssues(parsed.error.issues, raw, src, ConfigFileSchema);
  const cross = crossFieldChecks(raw, src);
  later.push(...cross.errors);
  errors.push(...(doc.errors.length > 0 ? later.filter(beforeSyntaxError) : later));
  warnings.push(...(doc.errors.length > 0 ? cross.warnings.filter(beforeSyntaxError) : cross.warnings));

  if (errors.length > 0 || !parsed.success) return done();
  return {
    ok: true,
    config: resolveConfig(parsed.data, baseDir, writtenKeys(doc.get('upstream'), doc)),
    warnings: dedupe(warnings.sort(byPosition)),
  };
}

/**
 * The keys of a YAML map in the order the file writes them, a merge (`<<`) contributing its map's keys at its
 * own position. Needed where order means something (pools: route ties go to the first written), because a
 * JavaScript object lists integer-like keys such as `2024` before all others.
 */
function writtenKeys(node: unknown, doc: Document, into: string[] = []): string[] {
  const map = isAlias(node) ? node.resolve(doc) : node;
  if (!isMap(map)) return into;
  for (const pair of map.items) {
    const key = pair.key;
    if (!isScalar(key)) continue;
    if (typeof key.value === 'symbol') {
      for (const source of isSeq(pair.value) ? pair.value.items : [pair.value]) writtenKeys(source, doc, into);
    } else {
      const name = String(key.value);
      if (!into.includes(name)) into.push(name);
    }
  }
  return into;
}

/** Offset of the first byte that is not part of valid UTF-8 (overlong forms and surrogates included), or -1. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0 || i + n >= b.length) return i; // not a lead byte, or the sequence is cut off by the end
    const c1 = b[i + 1] as number;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return i;
    for (let k = 1; k <= n; k++) if (((b[i + k] as number) & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * Decodes a config file's bytes as UTF-8 (an optional BOM is skipped), or says where and why it is not: a
 * silently replaced byte would otherwise turn into a pool or backend name nobody wrote.
 */
function decodeConfig(bytes: Uint8Array, path: string): { ok: true; text: string } | { ok: false; issue: ConfigIssue } {
  const at = (line: number, column: number, message: string) => ({
    ok: false as const,
    issue: { severity: 'error' as const, file: path, line, column, path: '', message },
  });
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) return at(1, 1, 'the file is UTF-16; save it as UTF-8');
  const bad = firstInvalidUtf8(bytes);
  if (bad < 0) return { ok: true, text: new TextDecoder('utf-8').decode(bytes) };
  const lineStart = bytes.lastIndexOf(0x0a, bad - 1) + 1;
  let line = 1;
  for (let i = 0; i < lineStart; i++) if (bytes[i] === 0x0a) line++;
  const column = [...new TextDecoder('utf-8').decode(bytes.subarray(lineStart, bad))].length + 1;
  return at(line, column, `the file is not valid UTF-8 (byte 0x${(bytes[bad] as number).toString(16).padStart(2, '0')}); save it as UTF-8`);
}

/** Reads and loads a config file; relative paths inside it are resolved against the file's folder. */
export async function loadConfigFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    const decoded = decodeConfig(new Uint8Array(await readFile(path)), path);
    if (!decoded.ok) return { ok: false, errors: [decoded.issue], warnings: [] };
    text = decoded.text;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      errors: [{ severity: 'error', file: path, line: 1, column: 1, path: '', message: `cannot read the config file: ${why}` }],
      warnings: [],
    };
  }
  return loadConfigText(text, path, dirname(resolve(path)));
}

/**
 * The JSON Schema (draft-07) of the YAML format, for editors (e.g. the YAML language server's
 * `# yaml-language-server: $schema=...`). A fresh object on every call.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigFileSchema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  allowNulls(schema);
  // `upstream` is required unless `kubernetes` brings the pools.
  return { ...schema, anyOf: [{ required: ['upstream'] }, { required: ['kubernetes'] }], title: 'Spooky configuration (version 1)' };
}

type SchemaNode = Record<string, unknown>;
const isSchemaNode = (v: unknown): v is SchemaNode => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The object nodes a {@link NULLABLE_AT} path leads to (`*`: a map's values, `#`: a list's items), unions expanded. */
function schemaNodesAt(root: SchemaNode, path: string): SchemaNode[] {
  const expand = (n: unknown): SchemaNode[] => (!isSchemaNode(n) ? [] : Array.isArray(n.anyOf) ? n.anyOf.flatMap(expand) : [n]);
  let nodes = expand(root);
  for (const part of path === '' ? [] : path.split('.')) {
    nodes = nodes.flatMap((n) =>
      expand(part === '*' ? n.additionalProperties : part === '#' ? n.items : isSchemaNode(n.properties) ? n.properties[part] : undefined),
    );
  }
  return nodes;
}

/**
 * Lets the JSON Schema accept `null` where the loader drops it ({@link NULLABLE_AT}: the Rust Spooky's sample
 * configs write `ca_file: null`), so an editor does not flag configs that `spooky validate` accepts.
 */
function allowNulls(schema: SchemaNode): void {
  for (const [path, keys] of NULLABLE_AT) {
    for (const node of schemaNodesAt(schema, path)) {
      const props = node.properties;
      if (!isSchemaNode(props)) continue;
      for (const key of keys) {
        const prop = props[key];
        if (!isSchemaNode(prop) || (Array.isArray(prop.anyOf) && prop.anyOf.some((a) => isSchemaNode(a) && a.type === 'null'))) continue;
        const { description, ...rest } = prop;
        props[key] = { ...(description === undefined ? {} : { description }), anyOf: [rest, { type: 'null' }] };
      }
    }
  }
}
