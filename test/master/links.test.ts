// The leader's end of a chunkserver's link (master/service/links.ts): the core hears of a drop
// however late the route ran, a socket closed before it did included.
import { EventEmitter } from 'node:events';
import t from 'tap';
import type { Request, Response } from 'express';
import { ChunkserverLinks } from '../../master/service/links.js';
import type { Leadership } from '../../master/service/leadership.js';

function setup() {
  const events: string[] = [];
  const listeners: ((isLeader: boolean) => void)[] = [];
  const lead = {
    requireLeader: () => undefined,
    config: { addr: '127.0.0.1:1' },
    replicator: { isLeader: () => true, onLeaderChange: (fn: (isLeader: boolean) => void) => listeners.push(fn) },
    core: {
      connectionOpened: (id: string, stream: number) => events.push(`open ${id} ${stream}`),
      connectionDropped: (id: string, stream: number) => events.push(`drop ${id} ${stream}`),
    },
    now: () => 0,
    flushLog: () => undefined,
  } as unknown as Leadership;
  const links = new ChunkserverLinks(lead);
  const link = (id: string, socketDestroyed: boolean) => {
    const res = Object.assign(new EventEmitter(), {
      writeHead: () => undefined, write: () => true, end() { res.emit('close'); },
    });
    const req = { query: { id }, socket: { destroyed: socketDestroyed } };
    links.accept(req as unknown as Request, res as unknown as Response);
    return res;
  };
  return { events, links, link, leaderChange: (isLeader: boolean) => listeners.forEach((fn) => fn(isLeader)) };
}

t.test('a link whose socket closed before the route ran is dropped at once', async (t) => {
  const { events, links, link } = setup();
  const res = link('cs1', true);
  t.same(events, ['open cs1 1', 'drop cs1 1'], 'opened and dropped, so the server is suspect now');
  res.emit('close'); // the late event, should one come, changes nothing
  t.same(events, ['open cs1 1', 'drop cs1 1'], 'dropped once');
  links.closeAll();
});

t.test('a live link drops when its socket closes, once', async (t) => {
  const { events, links, link } = setup();
  const res = link('cs2', false);
  t.same(events, ['open cs2 1'], 'open while the socket lives');
  res.emit('close');
  res.emit('close');
  t.same(events, ['open cs2 1', 'drop cs2 1'], 'one drop');
  link('cs2', false);
  links.closeAll();
  t.same(events, ['open cs2 1', 'drop cs2 1', 'open cs2 2', 'drop cs2 2'], 'closing every link drops the newer one');
});

t.test('a dead request that arrives after the server\'s newer link leaves that link alone', async (t) => {
  const { events, links, link } = setup();
  const live = link('cs3', false);
  let ended = false;
  live.on('close', () => (ended = true));
  link('cs3', true); // an older dial, its socket closed, whose route ran late
  t.notOk(ended, 'the live link is not ended');
  t.same(events, ['open cs3 1'], 'nothing reported: the server is still connected');
  links.closeAll();
  t.same(events, ['open cs3 1', 'drop cs3 1'], 'and the live link is the one open');
});

t.test('a master that starts leading re-announces the links it holds (its core forgot them)', async (t) => {
  const { events, links, link, leaderChange } = setup();
  link('cs4', false);
  link('cs5', false);
  t.same(events, ['open cs4 1', 'open cs5 2']);
  leaderChange(false);
  t.same(events, ['open cs4 1', 'open cs5 2'], 'losing the lead announces nothing');
  leaderChange(true);
  t.same(events, ['open cs4 1', 'open cs5 2', 'open cs4 1', 'open cs5 2'], 'each open link again, with its own stream');
  links.closeAll();
  t.same(events.slice(4), ['drop cs4 1', 'drop cs5 2'], 'and their drops reach the core as before');
});
