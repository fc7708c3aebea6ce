import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes every rename into a folder done before a call durable. Concurrent callers share fsyncs
 * (group commit): one that arrives while a sync runs waits for the next, which starts when that
 * one ends and serves everyone who arrived meanwhile. With 64 small files in flight, each
 * replica's folder sync had been one journal commit of its own.
 */
export class GroupDirSync {
  /** The sync in progress, and the one queued after it. */
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  /** `syncOnce` runs one fsync of the folder (the store times it). */
  constructor(private readonly syncOnce: () => Promise<void>) {}

  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    const next = this.running.catch(() => undefined).then(() => {
      this.next = undefined;
      return this.start();
    });
    this.next = next;
    return next;
  }

  private start(): Promise<void> {
    const sync: Promise<void> = this.syncOnce().finally(() => {
      if (this.running === sync) this.running = undefined;
    });
    this.running = sync;
    return sync;
  }
}
