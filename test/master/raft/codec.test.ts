// The wire codec validates untrusted input and round-trips every message type binary-safely.
import t from 'tap';
import { decodeMessage, decodeMessageBatch, encodeMessage, encodeMessageBatch, messageJson } from '../../../master/raft/codec.js';
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
