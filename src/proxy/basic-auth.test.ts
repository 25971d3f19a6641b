import { describe, expect, test } from 'bun:test';
import { BasicAuth, MAX_VERIFYING, MAX_VERIFYING_PER_CLIENT, parseBasic } from './basic-auth.ts';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('parseBasic', () => {
  test.each([
    [null, undefined],
    ['', undefined],
    [`Basic ${b64('alice:s3cret')}`, { user: 'alice', password: 's3cret' }],
    [`basic ${b64('alice:s3cret')}`, { user: 'alice', password: 's3cret' }], // the scheme is case-insensitive
    [`Basic ${b64('alice:pa:ss')}`, { user: 'alice', password: 'pa:ss' }], // the first colon splits
    [`Basic ${b64('alice:')}`, { user: 'alice', password: '' }],
    [`Basic ${b64('jürgen:päss')}`, { user: 'jürgen', password: 'päss' }], // UTF-8 (charset="UTF-8")
    [`Basic ${b64('nocolon')}`, undefined],
    ['Bearer abc', undefined],
    ['Basic not*base64', undefined],
    [`Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString('base64')}`, undefined], // not UTF-8
    [`Basic  ${b64('a:b')}  `, { user: 'a', password: 'b' }],
  ])('%p -> %p', (value, want) => {
    expect(parseBasic(value)).toEqual(want);
  });
});

/** A verify that accepts `password` for hash `hash:<password>` and counts its calls; `gate` holds answers back. */
function fakeVerify() {
  const calls: string[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  const verify = async (password: string, hash: string) => {
    calls.push(hash);
    if (gate) await gate;
    return hash === `hash:${password}`;
  };
  return {
    verify,
    calls,
    hold() {
      gate = new Promise((r) => {
        release = r;
      });
    },
    release: () => release(),
  };
}

const config = {
  realm: 'ops',
  forward_authorization: false,
  users: [
    { username: 'alice', password_hash: 'hash:s3cret' },
    { username: 'bob', password_hash: 'hash:hunter2' },
  ],
};
const outcome = async (auth: BasicAuth, user: string, password: string) => {
  const r = await auth.check(`Basic ${b64(`${user}:${password}`)}`);
  return 'user' in r ? r.user : r.error.code;
};

describe('BasicAuth', () => {
  test('the challenge names the realm and UTF-8', () => {
    expect(new BasicAuth(config).challenge).toBe('Basic realm="ops", charset="UTF-8"');
  });

  test('right, wrong and missing credentials', async () => {
    const f = fakeVerify();
    const auth = new BasicAuth(config, f.verify);
    expect(await outcome(auth, 'alice', 's3cret')).toBe('alice');
    expect(await outcome(auth, 'bob', 'hunter2')).toBe('bob');
    expect(await outcome(auth, 'alice', 'hunter2')).toBe('unauthorized'); // another user's password
    expect(await outcome(auth, 'ALICE', 's3cret')).toBe('unauthorized'); // names are exact
    const none = auth.check(null);
    expect('error' in none && none.error.code).toBe('unauthorized');
  });

  test('an unknown user costs a check like a known one, and is never let in (even with the decoy password)', async () => {
    const f = fakeVerify();
    const auth = new BasicAuth(config, f.verify);
    // Whichever user's hash the name picks, that user's own password does not let the unknown name in.
    expect(await outcome(auth, 'mallory', 's3cret')).toBe('unauthorized');
    expect(await outcome(auth, 'mallory', 'hunter2')).toBe('unauthorized');
    expect(f.calls).toHaveLength(2);
    for (const h of f.calls) expect(['hash:s3cret', 'hash:hunter2']).toContain(h); // a real hash, so it takes as long
  });

  test('an outcome is remembered: the same credentials are checked once', async () => {
    const f = fakeVerify();
    const auth = new BasicAuth(config, f.verify);
    for (let i = 0; i < 3; i++) expect(await outcome(auth, 'alice', 's3cret')).toBe('alice');
    for (let i = 0; i < 3; i++) expect(await outcome(auth, 'alice', 'guess')).toBe('unauthorized');
    expect(f.calls).toHaveLength(2);
    const again = auth.check(`Basic ${b64('alice:s3cret')}`);
    expect(again instanceof Promise).toBe(false); // answered without waiting
  });

  test(`at most ${MAX_VERIFYING} checks at once; more are refused as overloaded, not queued`, async () => {
    const f = fakeVerify();
    f.hold();
    const auth = new BasicAuth(config, f.verify);
    const pending = Array.from({ length: MAX_VERIFYING }, (_, i) => auth.check(`Basic ${b64(`alice:guess${i}`)}`));
    const extra = auth.check(`Basic ${b64('alice:one-more')}`);
    expect('error' in extra && extra.error.code).toBe('overloaded');
    f.release();
    await Promise.all(pending);
    expect(await outcome(auth, 'alice', 's3cret')).toBe('alice'); // slots freed
  });

  test('a burst of requests with the same new credentials shares one check (no 503 for a legitimate client)', async () => {
    const f = fakeVerify();
    f.hold();
    const auth = new BasicAuth(config, f.verify);
    const burst = Array.from({ length: MAX_VERIFYING * 2 }, () => auth.check(`Basic ${b64('alice:s3cret')}`));
    f.release();
    const users = await Promise.all(burst.map(async (r) => ('user' in (await r) ? 'ok' : 'refused')));
    expect(users).toEqual(Array(MAX_VERIFYING * 2).fill('ok'));
    expect(f.calls).toHaveLength(1);
  });

  test('a flood of wrong guesses does not evict a remembered valid login', async () => {
    const f = fakeVerify();
    const auth = new BasicAuth(config, f.verify);
    expect(await outcome(auth, 'alice', 's3cret')).toBe('alice');
    for (let i = 0; i < 5000; i++) await auth.check(`Basic ${b64(`alice:guess${i}`)}`);
    const again = auth.check(`Basic ${b64('alice:s3cret')}`);
    expect(again instanceof Promise).toBe(false); // still remembered: answered even when every check slot is taken
    expect('user' in again && again.user).toBe('alice');
  });

  test('a user name holding NUL does not share a remembered outcome with a password holding NUL', async () => {
    const f = fakeVerify();
    const auth = new BasicAuth({ ...config, users: [{ username: 'alice', password_hash: 'hash:x\0y' }] }, f.verify);
    expect(await outcome(auth, 'alice', 'x\0y')).toBe('alice');
    expect(await outcome(auth, 'alice\0x', 'y')).toBe('unauthorized');
  });

  test(`one client runs at most ${MAX_VERIFYING_PER_CLIENT} checks at once; others still get theirs`, async () => {
    const f = fakeVerify();
    f.hold();
    const auth = new BasicAuth(config, f.verify);
    const mine = Array.from({ length: MAX_VERIFYING_PER_CLIENT }, (_, i) => auth.check(`Basic ${b64(`alice:g${i}`)}`, '198.51.100.7'));
    const extra = auth.check(`Basic ${b64('alice:g-extra')}`, '198.51.100.7');
    expect('error' in extra && extra.error.code).toBe('overloaded');
    const other = auth.check(`Basic ${b64('alice:s3cret')}`, '203.0.113.9');
    expect(other instanceof Promise).toBe(true); // being checked, not refused
    f.release();
    await Promise.all(mine);
    expect(await other).toEqual({ user: 'alice' });
    expect(await outcome(auth, 'alice', 'g-extra')).toBe('unauthorized'); // the client's slots are free again
  });

  test('an unknown name is checked against a hash chosen by the name, always the same one', async () => {
    const f = fakeVerify();
    const auth = new BasicAuth(config, f.verify);
    for (const password of ['p1', 'p2', 'p3']) expect(await outcome(auth, 'mallory', password)).toBe('unauthorized');
    expect(new Set(f.calls).size).toBe(1);
    expect(['hash:s3cret', 'hash:hunter2']).toContain(f.calls[0] as string);
    const names = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8'];
    for (const name of names) await outcome(auth, name, 'x');
    expect(new Set(f.calls.slice(3)).size).toBe(2); // spread over both users' hashes
  });

  test('a hash that cannot be checked is a refusal, not a crash', async () => {
    const auth = new BasicAuth(config, async () => {
      throw new Error('UnsupportedAlgorithm');
    });
    expect(await outcome(auth, 'alice', 's3cret')).toBe('unauthorized');
  });
});
