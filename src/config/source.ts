/**
 * Positions in the YAML source: finds the node behind a YAML path (following aliases and `<<` merge
 * keys), turns byte offsets into 1-based line/column, and builds {@link ConfigIssue}s.
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type LineCounter, type Node, type Pair } from 'yaml';
import type { ConfigIssue } from './types.ts';

/** One step of a YAML path: a map key or a list index. */
export type PathSegment = string | number;

/**
 * What an issue points at: a map key (unknown keys), the value under it, or a map that lacks something
 * (`missing`: positioned like `value`, but never trusted past a YAML syntax error, since a syntax error
 * is the likeliest reason for something to be missing).
 */
export type Target = 'key' | 'value' | 'missing';

const PLAIN_SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Renders a path like `upstream.api.backends[0].address`; odd keys are quoted: `upstream["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_SEGMENT.test(seg)) out += out.length === 0 ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Formats an issue like a compiler diagnostic: `file:line:col: error: message (at path)`. */
export function formatIssue(issue: ConfigIssue): string {
  const at = issue.path.length > 0 ? ` (at ${issue.path})` : '';
  return `${issue.file}:${issue.line}:${issue.column}: ${issue.severity}: ${issue.message}${at}`;
}

/** The text of a scalar map key, or undefined for complex keys. */
function keyText(pair: Pair): string | undefined {
  const k = pair.key;
  if (isScalar(k)) {
    const v = k.value;
    if (typeof v === 'symbol') return v.description;
    return String(v);
  }
  if (k === null || k === undefined) return undefined;
  if (typeof k === 'string' || typeof k === 'number') return String(k);
  return undefined;
}

function isMergePair(pair: Pair): boolean {
  const k = pair.key;
  return isScalar(k) && (k.value === '<<' || (typeof k.value === 'symbol' && k.value.description === '<<'));
}

/** What a path step found: the pair (for maps) and the value node. */
interface Found {
  pair?: Pair;
  node: unknown;
}

/** Resolves the source positions of YAML paths within one parsed document. */
export class SourceMap {
  /**
   * @param doc the parsed document (parsed with `keepSourceTokens` and a `lineCounter`)
   * @param lineCounter the line counter used while parsing
   * @param file the file name to put into issues
   */
  constructor(
    readonly doc: Document,
    readonly lineCounter: LineCounter,
    readonly file: string,
  ) {}

  private deref(node: unknown): unknown {
    let n = node;
    for (let i = 0; i < 64 && isAlias(n); i++) n = n.resolve(this.doc);
    return n;
  }

  private step(node: unknown, seg: PathSegment, depth = 0): Found | undefined {
    const n = this.deref(node);
    if (isMap(n)) {
      const want = String(seg);
      for (const pair of n.items) {
        if (isPair(pair) && !isMergePair(pair) && keyText(pair) === want) return { pair, node: pair.value };
      }
      if (depth > 16) return undefined;
      for (const pair of n.items) {
        if (!isPair(pair) || !isMergePair(pair)) continue;
        const v = this.deref(pair.value);
        const sources = isSeq(v) ? v.items : [v];
        for (const s of sources) {
          const r = this.step(s, seg, depth + 1);
          if (r) return r;
        }
      }
      return undefined;
    }
    if (isSeq(n) && typeof seg === 'number') {
      const item = n.items[seg];
      return item === undefined ? undefined : { node: item };
    }
    return undefined;
  }

  /**
   * The start offset of the node for `path` (or of its deepest existing ancestor), the offset where that
   * node ends, and how many path steps were found.
   */
  offsetOf(path: readonly PathSegment[], target: Target): { offset: number; end: number; depth: number } {
    let node: unknown = this.doc.contents;
    let last: Found | undefined;
    let depth = 0;
    for (const seg of path) {
      const found = this.step(node, seg);
      if (!found) break;
      last = found;
      node = found.node;
      depth++;
    }
    const complete = depth === path.length;
    const at = complete ? node : (last?.node ?? this.doc.contents);
    let offset = rangeStart(at);
    let end = rangeEnd(at) ?? rangeEnd(last?.pair?.key);
    if (complete && last?.pair) {
      const keyOffset = rangeStart(last.pair.key);
      // Unknown keys point at the key; an empty value (`key:` with nothing after it) also points at the key.
      if (target === 'key' || isEmptyScalar(last.pair.value)) offset = keyOffset ?? offset;
    }
    if (offset === undefined) offset = rangeStart(this.doc.contents) ?? 0;
    // An empty value or a missing key may be the product of a syntax error further on: unknown extent.
    if (target === 'missing' || (complete && isEmptyScalar(at))) end = Number.POSITIVE_INFINITY;
    return { offset, end: end ?? offset, depth };
  }

  /**
   * The end offset of the node an issue built by {@link issue} points at (undefined for other issues;
   * infinite when the extent is unknown, see {@link Target}).
   */
  endOf(issue: ConfigIssue): number | undefined {
    return this.ends.get(issue);
  }

  private readonly ends = new WeakMap<ConfigIssue, number>();

  /** 1-based line and column of a byte offset. */
  lineCol(offset: number): { line: number; column: number } {
    const p = this.lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  }

  /** 1-based line and column of the node at `path` (see {@link offsetOf}). */
  pos(path: readonly PathSegment[], target: Target = 'value'): { line: number; column: number } {
    return this.lineCol(this.offsetOf(path, target).offset);
  }

  /** Whether the document has a node at `path`. */
  has(path: readonly PathSegment[]): boolean {
    return this.offsetOf(path, 'value').depth === path.length;
  }

  /** Builds an issue positioned at the node of `path`. */
  issue(severity: ConfigIssue['severity'], path: readonly PathSegment[], target: Target, message: string): ConfigIssue {
    const { offset, end } = this.offsetOf(path, target);
    const { line, column } = this.lineCol(offset);
    const issue: ConfigIssue = { severity, file: this.file, line, column, path: formatPath(path), message };
    this.ends.set(issue, end);
    return issue;
  }

  /** Builds an issue at a raw byte offset (YAML syntax errors), with the path of the node around it. */
  issueAtOffset(severity: ConfigIssue['severity'], offset: number, message: string): ConfigIssue {
    const { line, column } = this.lineCol(offset);
    return { severity, file: this.file, line, column, path: formatPath(this.pathAtOffset(offset)), message };
  }

  /** The YAML path of the innermost node whose source range contains `offset`. */
  pathAtOffset(offset: number): PathSegment[] {
    const path: PathSegment[] = [];
    let node: unknown = this.doc.contents;
    for (let guard = 0; guard < 256; guard++) {
      if (isMap(node)) {
        let next: unknown;
        for (const pair of node.items) {
          if (!isPair(pair)) continue;
          const k = keyText(pair);
          if (k === undefined) continue;
          if (contains(pair.key, offset)) {
            path.push(k);
            return path;
          }
          if (contains(pair.value, offset)) {
            path.push(k);
            next = pair.value;
            break;
          }
        }
        if (next === undefined) return path;
        node = next;
      } else if (isSeq(node)) {
        const i = node.items.findIndex((it) => contains(it, offset));
        if (i < 0) return path;
        path.push(i);
        node = node.items[i];
      } else {
        return path;
      }
    }
    return path;
  }
}

function rangeStart(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const r = (node as Node).range;
    if (r) return r[0];
  }
  return undefined;
}

function rangeEnd(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const r = (node as Node).range;
    if (r) return r[1];
  }
  return undefined;
}

function contains(node: unknown, offset: number): boolean {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const r = (node as Node).range;
    if (r) return offset >= r[0] && offset < Math.max(r[1], r[0] + 1);
  }
  return false;
}

function isEmptyScalar(node: unknown): boolean {
  if (!isScalar(node) || node.value !== null) return false;
  const r = node.range;
  return !r || r[0] === r[1];
}
