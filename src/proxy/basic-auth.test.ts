import { describe, expect, test } from 'bun:test';
import { BasicAuth, MAX_VERIFYING, parseBasic } from './basic-auth.ts';

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
    expect(await outcome(auth, 'mallory', 's3cret')).toBe('unauthorized');
    expect(f.calls).toEqual(['hash:s3cret']); // checked against a real hash, so it takes as long
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

  test('a hash that cannot be checked is a refusal, not a crash', async () => {
    const auth = new BasicAuth(config, async () => {
      throw new Error('UnsupportedAlgorithm');
    });
    expect(await outcome(auth, 'alice', 's3cret')).toBe('unauthorized');
  });
});
