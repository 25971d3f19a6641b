/**
 * HTTP Basic authentication of a route (`basic_auth`, RFC 7617), as Caddy's `basicauth` and nginx's
 * `auth_basic`: credentials are checked against bcrypt or Argon2 hashes with Bun's password hashing. A check costs
 * tens of milliseconds of CPU by design, so each outcome is remembered (keyed by a salted digest of the
 * credentials, never the password itself) in a bounded LRU map, and at most {@link MAX_VERIFYING} checks run at
 * once: a flood of guesses is refused instead of taking every core.
 */
import type { BasicAuthConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';

/** Most password checks running at once (per route); more get 503 `overloaded` at once. */
export const MAX_VERIFYING = 16;
/** Most remembered outcomes per route. */
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
  /** Checked for unknown users (and never accepted for them), so an unknown name costs what a known one costs. */
  private readonly decoy: string;
  private readonly remembered = new Map<string, boolean>();
  private readonly salt = crypto.getRandomValues(new Uint8Array(16));
  private verifying = 0;

  /** Authentication with `config`'s users; `verify` checks a password against a hash (default Bun's). */
  constructor(
    config: BasicAuthConfig,
    private readonly verify: (password: string, hash: string) => Promise<boolean> = (p, h) => Bun.password.verify(p, h),
  ) {
    this.challenge = `Basic realm="${config.realm}", charset="UTF-8"`;
    this.users = new Map(config.users.map((u) => [u.username, u.password_hash]));
    this.decoy = config.users[0]?.password_hash ?? '';
  }

  /** Checks a request's Authorization value; synchronous when the outcome is remembered or the value is malformed. */
  check(authorization: string | null): AuthOutcome | Promise<AuthOutcome> {
    const creds = parseBasic(authorization);
    if (creds === undefined)
      return { error: new SpookyError('unauthorized', authorization === null ? 'no credentials' : 'malformed Basic credentials') };
    const key = this.keyOf(creds.user, creds.password);
    const known = this.remembered.get(key);
    if (known !== undefined) {
      this.remembered.delete(key); // most recently used at the end
      this.remembered.set(key, known);
      return known ? { user: creds.user } : { error: wrong(creds.user) };
    }
    if (this.verifying >= MAX_VERIFYING) return { error: new SpookyError('overloaded', `${this.verifying} password checks already running`) };
    this.verifying++;
    const hash = this.users.get(creds.user);
    return this.verify(creds.password, hash ?? this.decoy)
      .catch(() => false)
      .then((ok) => {
        const valid = ok && hash !== undefined;
        this.remember(key, valid);
        return valid ? { user: creds.user } : { error: wrong(creds.user) };
      })
      .finally(() => {
        this.verifying--;
      });
  }

  private keyOf(user: string, password: string): string {
    return new Bun.CryptoHasher('sha256').update(this.salt).update(user).update('\0').update(password).digest('base64');
  }

  private remember(key: string, valid: boolean): void {
    if (this.remembered.size >= MAX_REMEMBERED) {
      const oldest = this.remembered.keys().next();
      if (!oldest.done) this.remembered.delete(oldest.value);
    }
    this.remembered.set(key, valid);
  }
}

function wrong(user: string): SpookyError {
  return new SpookyError('unauthorized', `wrong credentials for user ${JSON.stringify(user.slice(0, 64))}`);
}
