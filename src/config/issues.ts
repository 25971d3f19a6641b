/**
 * Turns zod validation issues into positioned, plain-language {@link ConfigIssue}s: unknown keys point at
 * the key and suggest the closest allowed key, bad values point at the value, missing keys point at the
 * map that lacks them, and unions report the branch that matches the value's type.
 */
import { z } from 'zod';
import { suggest } from './parse.ts';
import { isSecretName } from './redact.ts';
import { CANONICAL_STRATEGIES, LOG_LEVELS } from './schema.ts';
import type { PathSegment, SourceMap, Target } from './source.ts';
import type { ConfigIssue } from './types.ts';

type Issue = z.core.$ZodIssue;

/**
 * Keys of the Rust Spooky that this Spooky refuses rather than ignores, because ignoring them would
 * weaken security; keyed by `<parent kind>.<key>`.
 */
const REFUSED_KEYS: Readonly<Record<string, string>> = {
  'pool.auth':
    'per-pool `auth` (a Rust Spooky feature) is not supported here; ignoring it would forward unauthenticated requests, so remove it and put authentication in front of or behind Spooky',
};

/** The value at `path` inside a plain JS value, or undefined. */
export function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/**
 * True for a place in the config that may hold a secret: a key that looks like a credential (`token`,
 * `authorization`, `x-api-key`, ...) anywhere on the path, or any value of a `headers` map. An error there
 * describes the value's kind but never repeats it (errors reach logs, `/status`, the reload answer and
 * alert webhooks).
 */
function isSecretPath(path: readonly PathSegment[]): boolean {
  return path.some((seg) => typeof seg === 'string' && (seg === 'headers' || isSecretName(seg)));
}

/** {@link describeValue}, or only the kind of value when `path` may hold a secret. */
function describeAt(path: readonly PathSegment[], v: unknown): string {
  if (!isSecretPath(path)) return describeValue(v);
  if (typeof v === 'string') return 'a string (not shown: it may be a secret)';
  if (typeof v === 'number') return 'a number (not shown: it may be a secret)';
  return describeValue(v);
}

/** A short description of a value for messages: `"abc"`, `42`, `a list`, `a map`, `an empty value`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (v instanceof Set) return 'a set (`!!set`)';
  if (v instanceof Map) return 'an ordered map (`!!omap`); write a plain map';
  if (typeof v === 'object') return 'a map';
  return typeof v;
}

const NOUNS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a map',
  record: 'a map',
  array: 'a list',
  null: 'an empty value',
};

function noun(expected: string): string {
  return NOUNS[expected] ?? expected;
}

/** The schema found by following `path` from `schema` (objects, records, arrays, unions, optionals). */
function schemaAt(schema: z.ZodType, path: readonly PathSegment[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    s = childSchema(s, seg);
  }
  return s;
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let i = 0; i < 8 && cur instanceof z.ZodOptional; i++) cur = cur.unwrap() as z.ZodType;
  return cur;
}

function childSchema(schema: z.ZodType, seg: PathSegment): z.ZodType | undefined {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) return (s.shape as Record<string, z.ZodType>)[String(seg)];
  if (s instanceof z.ZodRecord) return s.valueType as z.ZodType;
  if (s instanceof z.ZodArray) return typeof seg === 'number' ? (s.element as z.ZodType) : undefined;
  if (s instanceof z.ZodUnion) {
    for (const o of s.options as readonly z.ZodType[]) {
      const inner = unwrap(o);
      if (typeof seg === 'number' ? inner instanceof z.ZodArray : inner instanceof z.ZodObject || inner instanceof z.ZodRecord) {
        return childSchema(inner, seg);
      }
    }
  }
  return undefined;
}

/** The keys an object schema allows (for a union: its object branch). */
export function allowedKeys(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  const s0 = schemaAt(schema, path);
  if (!s0) return [];
  let s = unwrap(s0);
  if (s instanceof z.ZodUnion) {
    const o = (s.options as readonly z.ZodType[]).map(unwrap).find((x) => x instanceof z.ZodObject);
    if (o) s = o;
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape as Record<string, unknown>) : [];
}

/** How to talk about an enum's choices: what the value is, and the list to show (long alias lists are summarised). */
function describeChoices(values: readonly unknown[]): { what: string; list: string; candidates: string[] } {
  const strs = values.filter((v): v is string => typeof v === 'string');
  if (strs.includes('round-robin') && strs.includes('rr')) {
    return {
      what: 'load-balancing strategy',
      list: `strategies: ${CANONICAL_STRATEGIES.join(', ')}; aliases are listed in the reference`,
      candidates: strs,
    };
  }
  if (strs.includes('info') && strs.includes('spooky')) {
    return { what: 'log level', list: `levels: ${LOG_LEVELS.join(', ')}, or the Rust Spooky names`, candidates: strs };
  }
  return { what: 'value', list: `expected one of: ${values.map((v) => String(v)).join(', ')}`, candidates: strs };
}

/** The parent kind used to look up {@link REFUSED_KEYS}. */
function parentKind(path: readonly PathSegment[]): string {
  if (path.length === 2 && path[0] === 'upstream') return 'pool';
  return formatKindPath(path);
}

function formatKindPath(path: readonly PathSegment[]): string {
  return path.map((p) => (typeof p === 'number' ? '[]' : p)).join('.');
}

/** Whether a union branch failed because the value's type did not fit (rather than a detail inside). */
function rootTypeMismatch(issues: readonly Issue[]): boolean {
  return issues.some(
    (i) =>
      i.path.length === 0 &&
      (i.code === 'invalid_type' || (i.code === 'invalid_union' && i.errors.length > 0 && i.errors.every((b) => rootTypeMismatch(b)))),
  );
}

/** The type names a union accepts, from its branches' root type mismatches. */
function expectedTypes(issues: readonly Issue[], out: string[]): void {
  for (const i of issues) {
    if (i.path.length !== 0) continue;
    if (i.code === 'invalid_type') {
      const n = noun(i.expected);
      if (!out.includes(n)) out.push(n);
    } else if (i.code === 'invalid_union') {
      for (const b of i.errors) expectedTypes(b, out);
    }
  }
}

/** Converts zod issues to config issues, positioned with `src`; `raw` is the validated JS value. */
export function zodIssuesToConfigIssues(
  issues: readonly Issue[],
  raw: unknown,
  src: SourceMap,
  schema: z.ZodType,
  base: readonly PathSegment[] = [],
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  // A number over a field's own maximum and over 2^53 - 1 gets zod's safe-integer issue too: keep the field's.
  const keyOf = (i: Issue) => i.path.map(String).join('\u0000');
  const ownMax = new Set(issues.filter((i) => i.code === 'too_big' && Number(i.maximum) < Number.MAX_SAFE_INTEGER).map(keyOf));
  for (const issue of issues) {
    if (issue.code === 'too_big' && Number(issue.maximum) === Number.MAX_SAFE_INTEGER && ownMax.has(keyOf(issue))) continue;
    const path: PathSegment[] = [...base, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    const value = valueAt(raw, path);
    const err = (p: readonly PathSegment[], target: Target, message: string) => out.push(src.issue('error', p, target, message));
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = allowedKeys(schema, path);
        for (const key of issue.keys) {
          const refused = REFUSED_KEYS[`${parentKind(path)}.${key}`];
          if (refused) {
            err([...path, key], 'key', refused);
            continue;
          }
          const s = suggest(key, allowed);
          const hint = s ? `; did you mean \`${s}\`?` : allowed.length > 0 ? ` (allowed here: ${allowed.join(', ')})` : '';
          err([...path, key], 'key', `unknown key \`${key}\`${hint}`);
        }
        break;
      }
      case 'invalid_union': {
        const branches = issue.errors.filter((b) => !rootTypeMismatch(b));
        const first = branches[0];
        if (first) {
          out.push(...zodIssuesToConfigIssues(first, raw, src, schema, path));
        } else {
          const types: string[] = [];
          for (const b of issue.errors) expectedTypes(b, types);
          err(path, 'value', `expected ${types.join(' or ') || 'a different value'}, got ${describeAt(path, value)}`);
        }
        break;
      }
      case 'invalid_type': {
        const parent = path.slice(0, -1);
        const last = path[path.length - 1];
        const parentValue = valueAt(raw, parent);
        if (value === undefined && typeof last === 'string' && parentValue !== null && typeof parentValue === 'object') {
          err(parent, 'missing', `missing required key \`${last}\``);
        } else {
          err(path, 'value', `expected ${noun(issue.expected)}, got ${describeAt(path, value)}`);
        }
        break;
      }
      case 'too_small': {
        const min = Number(issue.minimum);
        if (issue.origin === 'string' || issue.origin === 'array') {
          err(path, 'value', min <= 1 ? 'must not be empty' : `must have at least ${min} ${issue.origin === 'string' ? 'characters' : 'items'}`);
        } else {
          err(path, 'value', `${issue.inclusive ? `must be at least ${min}` : `must be greater than ${min}`}, got ${describeAt(path, value)}`);
        }
        break;
      }
      case 'too_big': {
        const max = Number(issue.maximum);
        if (issue.origin === 'string' || issue.origin === 'array') {
          err(path, 'value', `must have at most ${max} ${issue.origin === 'string' ? 'characters' : 'items'}`);
        } else {
          err(path, 'value', `${issue.inclusive ? `must be at most ${max}` : `must be less than ${max}`}, got ${describeAt(path, value)}`);
        }
        break;
      }
      case 'invalid_value': {
        if (issue.values.length === 1) {
          err(path, 'value', `must be ${String(issue.values[0])}, got ${describeAt(path, value)}`);
        } else {
          const { what, list, candidates } = describeChoices(issue.values);
          const s = typeof value === 'string' ? suggest(value, candidates) : undefined;
          err(path, 'value', `unknown ${what} ${describeAt(path, value)}${s ? `; did you mean \`${s}\`?` : ''} (${list})`);
        }
        break;
      }
      case 'invalid_key': {
        const inner = issue.issues[0];
        const key = String(path[path.length - 1]);
        err(path, 'key', inner?.code === 'custom' ? inner.message : key.length === 0 ? 'the key must not be empty' : `invalid key \`${key}\``);
        break;
      }
      case 'invalid_format':
      case 'custom':
        err(path, 'value', issue.message);
        break;
      default:
        err(path, 'value', issue.message);
    }
  }
  return out;
}
