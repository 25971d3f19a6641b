import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { connectionUrl, type RedisConnection, RedisStore, type RedisUnavailable, redisScript } from './store.ts';

type Answer = { reply: unknown } | { error: string } | 'hang';

/** A scripted client: each `send` takes the next answer; records what was sent. */
class FakeConnection implements RedisConnection {
  connected = false;
  closed = false;
  readonly sent: string[][] = [];
  constructor(
    private readonly answers: Answer[],
    private readonly connectAnswer: 'ok' | 'refused' | 'hang' = 'ok',
  ) {}
  connect(): Promise<unknown> {
    if (this.connectAnswer === 'hang') return new Promise(() => {});
    if (this.connectAnswer === 'refused') return Promise.reject(new Error('Connection refused'));
    this.connected = true;
    return Promise.resolve();
  }
  send(command: string, args: string[]): Promise<unknown> {
    this.sent.push([command, ...args]);
    const a = this.answers.shift() ?? { error: 'no scripted answer' };
    if (a === 'hang') return new Promise(() => {});
    return 'error' in a ? Promise.reject(new Error(a.error)) : Promise.resolve(a.reply);
  }
  close(): void {
    this.closed = true;
    this.connected = false;
  }
}

const script = redisScript('return 1');

function setup(answers: Answer[][], connect: Array<'ok' | 'refused' | 'hang'> = []) {
  const clock = new ManualClock(0);
  const conns: FakeConnection[] = [];
  const changes: Array<[boolean, string]> = [];
  const store = new RedisStore({
    timeoutMs: 30,
    retryMs: 1000,
    clock,
    connection: () => {
      const c = new FakeConnection(answers[conns.length] ?? [], connect[conns.length] ?? 'ok');
      conns.push(c);
      return c;
    },
    onStateChange: (up, why) => changes.push([up, why]),
  });
  const call = () =>
    store.evalScript(script, ['k'], ['1']).then(
      (reply) => ({ reply }),
      (e: unknown) => ({ failed: (e as RedisUnavailable).reason }),
    );
  return { clock, conns, changes, store, call };
}

describe('RedisStore', () => {
  test('the script goes by digest, with the key count, keys and arguments', async () => {
    const { call, conns } = setup([[{ reply: 7 }]]);
    expect(await call()).toEqual({ reply: 7 });
    expect(conns[0]?.sent).toEqual([['EVALSHA', script.sha, '1', 'k', '1']]);
    expect(script.sha).toBe('e0e1f9fabfc9d4800c877a703b823ac0578ff8db'); // sha1("return 1"), as SCRIPT LOAD gives it
  });

  test('a server that does not know the script gets it with EVAL', async () => {
    const { call, conns } = setup([[{ error: 'NOSCRIPT No matching script. Please use EVAL.' }, { reply: 1 }]]);
    expect(await call()).toEqual({ reply: 1 });
    expect(conns[0]?.sent.map((c) => c[0])).toEqual(['EVALSHA', 'EVAL']);
    expect(conns[0]?.sent[1]?.[1]).toBe('return 1');
  });

  test.each([
    ['an error reply', [[{ error: 'ERR something' }]], [], 'error'],
    ['no answer in time', [['hang']], [], 'timeout'],
    ['a refused connection', [[]], ['refused', 'refused'], 'error'],
    ['a connection that never completes', [[]], ['hang', 'hang'], 'timeout'],
  ] as const)('%s: down at once for retry_ms, then one call tries again', async (_what, answers, connect, reason) => {
    const { call, clock, conns, changes, store } = setup(answers as unknown as Answer[][], [...connect]);
    expect(await call()).toEqual({ failed: reason });
    expect(store.up).toBe(false);
    expect(changes).toHaveLength(1);
    expect(changes[0]?.[0]).toBe(false);
    const sentBefore = conns.reduce((n, c) => n + c.sent.length, 0);
    clock.advance(999);
    expect(await call()).toEqual({ failed: 'down' }); // not tried: nothing sent
    expect(conns.reduce((n, c) => n + c.sent.length, 0)).toBe(sentBefore);
    expect(store.failures).toMatchObject({ [reason]: 1, down: 1 });
  });

  test('after retry_ms one call probes; an answer brings the store back up', async () => {
    const { call, clock, changes, store, conns } = setup([[{ error: 'ERR boom' }, { reply: 'back' }, { reply: 'again' }]]);
    expect(await call()).toEqual({ failed: 'error' });
    clock.advance(1000);
    const probe = call();
    expect(await call()).toEqual({ failed: 'down' }); // a second call while the probe is out is not sent
    expect(await probe).toEqual({ reply: 'back' });
    expect(store.up).toBe(true);
    expect(changes.map((c) => c[0])).toEqual([false, true]);
    expect(await call()).toEqual({ reply: 'again' });
    expect(conns).toHaveLength(1);
  });

  test('a timeout drops the connection (and what waits on it); the next try connects afresh', async () => {
    const { call, clock, conns } = setup([['hang'], [{ reply: 'fresh' }]]);
    expect(await call()).toEqual({ failed: 'timeout' });
    expect(conns[0]?.closed).toBe(true);
    clock.advance(1000);
    expect(await call()).toEqual({ reply: 'fresh' });
    expect(conns).toHaveLength(2);
  });

  test('a server unreachable at start shows as down before any call; the first answer brings it up', async () => {
    const { call, changes, store, clock } = setup([[], [{ reply: 'ok' }]], ['refused', 'ok']);
    await Bun.sleep(0);
    await Bun.sleep(0);
    expect(store.up).toBe(false);
    expect(changes).toEqual([[false, 'Connection refused']]);
    clock.advance(1); // the breaker was left alone: the first call still tries
    expect(await call()).toEqual({ reply: 'ok' });
    expect(store.up).toBe(true);
    expect(changes.map((c) => c[0])).toEqual([false, true]);
  });

  test('a late timeout of an older call does not close the connection a newer call opened', async () => {
    const { call, clock, conns } = setup([['hang', 'hang'], [{ reply: 'fresh' }]]);
    const a = call(); // t=0 on the first connection
    await Bun.sleep(15);
    const b = call(); // t=15, same connection; times out at about 45
    expect(await a).toEqual({ failed: 'timeout' }); // t=30: the first connection is dropped, the store goes down
    clock.advance(1000);
    expect(await call()).toEqual({ reply: 'fresh' }); // the probe opens a second connection
    expect(await b).toEqual({ failed: 'timeout' });
    expect(conns[1]?.closed).toBe(false);
    expect(conns[0]?.closed).toBe(true);
  });

  test('a closed store answers down and sends nothing', async () => {
    const { call, store, conns } = setup([[{ reply: 1 }]]);
    store.close();
    expect(await call()).toEqual({ failed: 'down' });
    expect(conns[0]?.sent).toEqual([]);
  });
});

describe('connectionUrl', () => {
  test('adds the user and the password read from its file, encoded', async () => {
    const file = `${process.env.TMPDIR ?? '/tmp'}/spooky-redis-pass-${process.pid}`;
    await Bun.write(file, ' p@ss:w/rd \n');
    const base = { url: 'redis://10.0.0.1:6379/2', timeout_ms: 50, retry_ms: 1000, key_prefix: 'p:', failure_mode: 'local' as const };
    expect(connectionUrl(base)).toBe('redis://10.0.0.1:6379/2');
    expect(connectionUrl({ ...base, username: 'spooky', password_file: file })).toBe('redis://spooky:p%40ss%3Aw%2Frd@10.0.0.1:6379/2');
    expect(connectionUrl({ ...base, password_file: file })).toBe('redis://default:p%40ss%3Aw%2Frd@10.0.0.1:6379/2');
    expect(() => connectionUrl({ ...base, password_file: `${file}-missing` })).toThrow(/cannot read redis.password_file .*ENOENT/);
  });
});
