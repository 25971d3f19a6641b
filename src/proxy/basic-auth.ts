/**
 * HTTP Basic authentication of a route (`basic_auth`, RFC 7617), as Caddy's `basicauth` and nginx's
 * `auth_basic`: credentials are checked against bcrypt or Argon2 hashes with Bun's password hashing. A check costs
 * tens of milliseconds of CPU by design, so each outcome is remembered (keyed by a salted digest of the
 * credentials, never the password itself) in a bounded LRU map, and at most {@link MAX_VERIFYING} checks run at
 * once: a flood of guesses is refused instead of taking every core.
 */
import type { BasicAuthConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { lruGet, lruSet } from '../lib/lru.ts';

/** Most password checks running at once (per route); more get 503 `overloaded` at once. */
export const MAX_VERIFYING = 16;
/** Most password checks of one client (address, an IPv6 /64) running at once; more get 503 `overloaded`. */
export const MAX_VERIFYING_PER_CLIENT = 4;
/** Most remembered outcomes per route, of each kind (valid, wrong). */
const MAX_REMEMBERED = 4096;

/** The outcome of a check: the user name, or the error to answer with. */
export type AuthOutcome = { user: string } | { error: SpookyError };

/** The credentials of a `Basic` Authorization value, or undefined when it is not one (RFC 7617 section 2). */
export function parseBasic(authorization: string | null): { user: string; password: string } | undefined {
  if (authorization === null) return undefined;
  const m = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(authorization);
  if (!m) return undefined;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(m[1] as string, 'base64'));
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The Basic authentication of one route. */
export class BasicAuth {
  /** The `WWW-Authenticate` value of a 401. */
  readonly challenge: string;
  private readonly users: Map<string, string>;
  /**
   * Hashes checked for unknown users (and never accepted for them): one chosen by the name, so an unknown name
   * costs what a known one with the same kind of hash costs, and the same unknown name always costs the same.
   */
  private readonly decoys: string[];
  /** Checks running per client key: one client cannot hold every slot. */
  private readonly perClient = new Map<string, number>();
  /** Credentials found valid (LRU). Kept apart from failures so a flood of wrong guesses cannot evict them. */
  private readonly accepted = new Map<string, true>();
  /** Credentials found wrong (LRU). */
  private readonly refused = new Map<string, true>();
  /** Checks running, by credentials: a burst of requests with the same new credentials shares one check. */
  private readonly pending = new Map<string, Promise<boolean>>();
  private readonly salt = crypto.getRandomValues(new Uint8Array(16));
  private verifying = 0;

  /** Authentication with `config`'s users; `verify` checks a password against a hash (default Bun's). */
  constructor(
    config: BasicAuthConfig,
    private readonly verify: (password: string, hash: string) => Promise<boolean> = (p, h) => Bun.password.verify(p, h),
  ) {
    this.challenge = `Basic realm="${config.realm}", charset="UTF-8"`;
    this.users = new Map(config.users.map((u) => [u.username, u.password_hash]));
    this.decoys = config.users.map((u) => u.password_hash);
  }

  /** Checks a request's Authorization value; synchronous when the outcome is remembered or the value is malformed. */
  check(authorization: string | null, client = ''): AuthOutcome | Promise<AuthOutcome> {
    const creds = parseBasic(authorization);
    if (creds === undefined)
      return { error: new SpookyError('unauthorized', authorization === null ? 'no credentials' : 'malformed Basic credentials') };
    const key = this.keyOf(creds.user, creds.password);
    const known = lruGet(this.accepted, key) ? true : lruGet(this.refused, key) ? false : undefined;
    if (known !== undefined) return known ? { user: creds.user } : { error: wrong(creds.user) };
    const running = this.pending.get(key);
    if (running !== undefined) return running.then((ok) => (ok ? { user: creds.user } : { error: wrong(creds.user) }));
    if (this.verifying >= MAX_VERIFYING) return { error: new SpookyError('overloaded', `${this.verifying} password checks already running`) };
    const mine = this.perClient.get(client) ?? 0;
    if (mine >= MAX_VERIFYING_PER_CLIENT) return { error: new SpookyError('overloaded', `${mine} password checks of this client already running`) };
    this.verifying++;
    this.perClient.set(client, mine + 1);
    const hash = this.users.get(creds.user);
    const decoy = this.decoys[Number(Bun.hash(creds.user) % BigInt(this.decoys.length))] ?? '';
    const checked = this.verify(creds.password, hash ?? decoy)
      .catch(() => false)
      .then((ok) => {
        const valid = ok && hash !== undefined;
        lruSet(valid ? this.accepted : this.refused, key, true, MAX_REMEMBERED);
        return valid;
      })
      .finally(() => {
        this.verifying--;
        this.pending.delete(key);
        const left = (this.perClient.get(client) ?? 1) - 1;
        if (left > 0) this.perClient.set(client, left);
        else this.perClient.delete(client);
      });
    this.pending.set(key, checked);
    return checked.then((ok) => (ok ? { user: creds.user } : { error: wrong(creds.user) }));
  }

  private keyOf(user: string, password: string): string {
    // The user name's byte length first: `a` + `b\0c` and `a\0b` + `c` must not share a key (a client's name can hold NUL).
    return new Bun.CryptoHasher('sha256')
      .update(this.salt)
      .update(`${Buffer.byteLength(user)}:`)
      .update(user)
      .update(password)
      .digest('base64');
  }
}

function wrong(user: string): SpookyError {
  return new SpookyError('unauthorized', `wrong credentials for user ${JSON.stringify(user.slice(0, 64))}`);
}
