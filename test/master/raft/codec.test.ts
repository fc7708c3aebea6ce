// The wire codec validates untrusted input and round-trips every message type binary-safely.
import t from 'tap';
import { decodeBinaryBatch, decodeMessage, decodeMessageBatch, encodeBinaryBatch, encodeMessage, encodeMessageBatch, messageJson } from '../../../master/raft/codec.js';
import type { Entry, Message } from '../../../master/raft/types.js';

const samples: Message[] = [
  { type: 'preVote', from: 'm1', to: 'm2', term: 3, lastLogIndex: 9, lastLogTerm: 2 },
  { type: 'voteResp', from: 'm2', to: 'm1', term: 3, reject: false },
  { type: 'append', from: 'm1', to: 'm2', term: 3, prevLogIndex: 4, prevLogTerm: 2, commit: 4, entries: [{ term: 3, index: 5, data: Uint8Array.of(0, 255, 10, 13) }, { term: 3, index: 6, data: new Uint8Array() }] },
  { type: 'appendResp', from: 'm2', to: 'm1', term: 3, index: 4, reject: true, rejectHintIndex: 3, rejectHintTerm: 1 },
  { type: 'heartbeat', from: 'm1', to: 'm3', term: 3, commit: 6, context: 'm1:7' },
  { type: 'heartbeatResp', from: 'm3', to: 'm1', term: 3, context: '' },
  { type: 'snapshot', from: 'm1', to: 'm3', term: 3, meta: { index: 100, term: 2 }, totalBytes: 1000, offset: 512, data: new Uint8Array(256).map((_, i) => i) },
  { type: 'snapshotResp', from: 'm3', to: 'm1', term: 3, snapshotIndex: 100, offset: 768 },
];

t.test('every message type round-trips through JSON, bytes intact', async (t) => {
  const decoded = decodeMessageBatch(encodeMessageBatch(samples));
  t.same(decoded, samples);
  t.same(decodeMessageBatch(Buffer.from(encodeMessageBatch(samples))), samples, 'from raw bytes too');
});

t.test('messageJson is the plain encoding (entries last), and encodes an entry shared by several appends once', async (t) => {
  const cache = new Map<Entry, string>();
  for (const m of samples) t.equal(messageJson(m, cache), JSON.stringify(encodeMessage(m)), m.type);
  const append = samples[2] as Extract<Message, { type: 'append' }>;
  t.equal(cache.size, 2, 'the append\'s two entries are cached');
  const toM3: Message = { ...append, to: 'm3' };
  const text = messageJson(toM3, cache);
  t.same(decodeMessage(JSON.parse(text)), toM3, 'a second follower\'s append decodes to its message, from the cached entries');
  t.equal(cache.size, 2, 'nothing encoded again');
  t.equal(messageJson(append), JSON.stringify(encodeMessage(append)), 'without a cache too');
});

t.test('malformed input is rejected with RAFT_BAD_MESSAGE', async (t) => {
  const good = encodeMessage(samples[2]!) as Record<string, unknown>;
  const bad: unknown[] = [
    null,
    'x',
    { ...good, type: 'nope' },
    { ...good, term: -1 },
    { ...good, term: 1.5 },
    { ...good, term: '3' },
    { ...good, from: '' },
    { ...good, from: 'x'.repeat(500) },
    { ...good, entries: 'no' },
    { ...good, entries: [{ term: 3, index: 9, data: '' }] },
    { ...good, entries: [{ term: 3, index: 5, data: '***' }] },
    { ...good, entries: [{ term: 3, index: 5, data: '****' }] },
    { ...good, entries: [{ term: 3, index: 5, data: 'YW J' }] },
    { ...good, entries: [{ term: 3, index: 5, data: 'QR==' }] }, // not canonical: the last bits are not zero
    { ...good, entries: [{ term: 3, index: 5, data: 'YQ=a' }] },
    { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 0, context: 'c'.repeat(1000) },
    { ...(encodeMessage(samples[6]!) as object), offset: 900 },
  ];
  for (const value of bad) t.throws(() => decodeMessage(value), { code: 'RAFT_BAD_MESSAGE' }, JSON.stringify(value)?.slice(0, 80));
  t.throws(() => decodeMessageBatch('{not json'), { code: 'RAFT_BAD_MESSAGE' });
  t.throws(() => decodeMessageBatch({ messages: {} }), { code: 'RAFT_BAD_MESSAGE' });
  t.throws(() => decodeMessageBatch({ messages: Array(5000).fill(encodeMessage(samples[0]!)) }), { code: 'RAFT_BAD_MESSAGE' });
});

t.test('prototype keys in input are not trusted', async (t) => {
  const value = JSON.parse('{"__proto__":{"type":"heartbeat"},"from":"a","to":"b","term":1,"commit":0,"context":""}') as unknown;
  t.throws(() => decodeMessage(value), { code: 'RAFT_BAD_MESSAGE' });
});

t.test('the binary encoding (dfs-raft/2) round-trips every message type, its bytes raw after the header', async (t) => {
  const body = encodeBinaryBatch(samples);
  t.same(decodeBinaryBatch(body), samples);
  const headerBytes = body.readUInt32BE(0);
  const header = JSON.parse(body.subarray(4, 4 + headerBytes).toString()) as { messages: { entries?: { size: number }[]; size?: number }[] };
  t.same(header.messages[2]!.entries, [{ term: 3, index: 5, size: 4 }, { term: 3, index: 6, size: 0 }], 'entries carry their size, not their bytes');
  t.equal(header.messages[6]!.size, 256, 'a snapshot chunk too');
  t.equal(body.byteLength, 4 + headerBytes + 4 + 0 + 256, 'the bytes follow the header, nothing else');
  t.same([...body.subarray(4 + headerBytes, 4 + headerBytes + 4)], [0, 255, 10, 13], 'raw, in the order they appear');
  const framed = encodeBinaryBatch(samples, 4);
  t.same(framed.subarray(4), body, 'headroom leaves bytes in front and changes nothing after');
  const decoded = decodeBinaryBatch(body) as Extract<Message, { type: 'append' }>[];
  body.fill(0, 4 + headerBytes);
  t.same([...decoded[2]!.entries[0]!.data], [0, 255, 10, 13], 'a decoded entry owns its bytes: the frame may be reused');
  const big: Message = { type: 'append', from: 'm1', to: 'm2', term: 1, prevLogIndex: 0, prevLogTerm: 0, commit: 0, entries: Array.from({ length: 64 }, (_, i) => ({ term: 1, index: i + 1, data: new Uint8Array(5600).fill(i) })) };
  const binary = encodeBinaryBatch([big]).byteLength;
  const json = Buffer.byteLength(encodeMessageBatch([big]));
  t.ok(binary < json * 0.8, `64 entries of 5.6 KiB: ${binary} bytes binary, ${json} as JSON`);
  t.same(decodeBinaryBatch(encodeBinaryBatch([big])), [big]);
});

t.test('a malformed binary body is rejected with RAFT_BAD_MESSAGE', async (t) => {
  const withHeader = (header: unknown, tail: Uint8Array = new Uint8Array()) => {
    const h = Buffer.from(JSON.stringify(header));
    const out = Buffer.alloc(4 + h.byteLength + tail.byteLength);
    out.writeUInt32BE(h.byteLength, 0);
    h.copy(out, 4);
    out.set(tail, 4 + h.byteLength);
    return out;
  };
  const append = { type: 'append', from: 'm1', to: 'm2', term: 3, prevLogIndex: 4, prevLogTerm: 2, commit: 4 };
  const good = withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 5, size: 2 }] }] }, Uint8Array.of(7, 8));
  t.same((decodeBinaryBatch(good)[0] as Extract<Message, { type: 'append' }>).entries[0]!.data, Uint8Array.of(7, 8), 'the well-formed one decodes');
  const longHeader = Buffer.from(good);
  longHeader.writeUInt32BE(good.byteLength, 0);
  const bad: [string, Uint8Array][] = [
    ['empty', new Uint8Array()],
    ['half a length', Uint8Array.of(0, 0)],
    ['a header longer than the body', longHeader],
    ['a header that is not JSON', Buffer.concat([Uint8Array.of(0, 0, 0, 3), Buffer.from('{x}')])],
    ['a JSON body (dfs-raft/1) on a binary stream', Buffer.from(encodeMessageBatch(samples))],
    ['bytes after the last payload', Buffer.concat([good, Uint8Array.of(9)])],
    ['a payload past the end', withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 5, size: 3 }] }] }, Uint8Array.of(7, 8))],
    ['no size', withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 5 }] }] })],
    ['a negative size', withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 5, size: -1 }] }] })],
    ['a size over the limit', withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 5, size: 2 ** 40 }] }] })],
    ['base64 data in the header', withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 5, size: 0, data: 'AAAA' }] }] })],
    ['entries not contiguous', withHeader({ messages: [{ ...append, entries: [{ term: 3, index: 9, size: 2 }] }] }, Uint8Array.of(7, 8))],
    ['a snapshot chunk past totalBytes', withHeader({ messages: [{ type: 'snapshot', from: 'm1', to: 'm3', term: 3, meta: { index: 1, term: 1 }, totalBytes: 1, offset: 0, size: 2 }] }, Uint8Array.of(7, 8))],
    ['too many messages', withHeader({ messages: Array(5000).fill(samples[0]) })],
  ];
  for (const [what, body] of bad) t.throws(() => decodeBinaryBatch(body), { code: 'RAFT_BAD_MESSAGE' }, what);
});
