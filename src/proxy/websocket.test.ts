import { describe, expect, test } from 'bun:test';
import { handshakeFields, handshakeProblem, isWebSocketUpgrade } from './websocket.ts';

/** A header lookup over a plain record (names lower case). */
const fields = (h: Record<string, string>) => ({ get: (name: string) => h[name] ?? null });

describe('isWebSocketUpgrade', () => {
  const cases: [string, string, Record<string, string>, boolean][] = [
    ['the browser handshake', 'GET', { upgrade: 'websocket', connection: 'Upgrade' }, true],
    ['tokens in lists, any case', 'GET', { upgrade: 'foo, WebSocket', connection: 'keep-alive, upgrade' }, true],
    ['not GET', 'POST', { upgrade: 'websocket', connection: 'upgrade' }, false],
    ['no Connection: upgrade', 'GET', { upgrade: 'websocket', connection: 'keep-alive' }, false],
    ['no Upgrade', 'GET', { connection: 'upgrade' }, false],
    ['another protocol (h2c)', 'GET', { upgrade: 'h2c', connection: 'Upgrade, HTTP2-Settings' }, false],
    ['a token that only contains the word', 'GET', { upgrade: 'websocketx', connection: 'upgrade' }, false],
  ];
  for (const [name, method, headers, want] of cases) test(name, () => expect(isWebSocketUpgrade(method, fields(headers))).toBe(want));
});

describe('handshakeFields', () => {
  test("drops the client's handshake fields, keeps the rest in order, and lists the offered subprotocols", () => {
    const built: [string, string][] = [
      ['host', 'example.com'],
      ['sec-websocket-key', 'abc'],
      ['sec-websocket-version', '13'],
      ['cookie', 'a=b'],
      ['sec-websocket-extensions', 'permessage-deflate'],
      ['sec-websocket-protocol', 'chat, superchat'],
      ['x-forwarded-for', '10.0.0.1'],
    ];
    expect(handshakeFields(built, fields({ 'sec-websocket-protocol': ' chat ,superchat,, ' }))).toEqual({
      headers: [
        ['host', 'example.com'],
        ['cookie', 'a=b'],
        ['x-forwarded-for', '10.0.0.1'],
      ],
      protocols: ['chat', 'superchat'],
    });
  });
  test('no subprotocol offered: an empty list', () => {
    expect(handshakeFields([['host', 'h']], fields({})).protocols).toEqual([]);
  });
});

describe('handshakeProblem', () => {
  const good = { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
  const cases: [string, Record<string, string>, string | undefined][] = [
    ['a sound handshake', good, undefined],
    ['with distinct token subprotocols', { ...good, 'sec-websocket-protocol': 'chat, chat.v2' }, undefined],
    ['no key', { 'sec-websocket-version': '13' }, 'missing or invalid Sec-WebSocket-Key'],
    ['a key that is not 16 bytes', { ...good, 'sec-websocket-key': 'x' }, 'missing or invalid Sec-WebSocket-Key'],
    ['version 8', { ...good, 'sec-websocket-version': '8' }, 'unsupported Sec-WebSocket-Version (13 is supported)'],
    ['duplicate subprotocols', { ...good, 'sec-websocket-protocol': 'chat, chat' }, 'invalid Sec-WebSocket-Protocol (a list of distinct tokens)'],
    [
      'subprotocols that differ only in case',
      { ...good, 'sec-websocket-protocol': 'chat, CHAT' },
      'invalid Sec-WebSocket-Protocol (a list of distinct tokens)',
    ],
    ['a subprotocol with a space', { ...good, 'sec-websocket-protocol': 'a b' }, 'invalid Sec-WebSocket-Protocol (a list of distinct tokens)'],
    ['an empty subprotocol', { ...good, 'sec-websocket-protocol': 'a,,b' }, 'invalid Sec-WebSocket-Protocol (a list of distinct tokens)'],
    ['a non-ASCII subprotocol', { ...good, 'sec-websocket-protocol': 'é' }, 'invalid Sec-WebSocket-Protocol (a list of distinct tokens)'],
  ];
  for (const [name, headers, want] of cases) test(name, () => expect(handshakeProblem(fields(headers))).toBe(want));
});
