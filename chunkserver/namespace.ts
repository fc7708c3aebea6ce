// Which namespace this chunkserver's chunks belong to (MasterState.namespaceId, as HDFS's
// DataNodes keep the namespaceID in their VERSION file). Recorded on the first registration that
// names one, and sent with every report after, so a master of another namespace (another cluster,
// or a master that lost its data and started an empty one) refuses this server instead of taking
// its chunks for garbage; and a reply from such a master is not obeyed.
import { existsSync, readFileSync } from 'node:fs';
import { writeFileDurably } from '../common/durable-file.js';
import { DfsError } from '../common/errors.js';

const NAMESPACE_ID = /^[0-9a-f]{16}$/;

export class NamespaceRecord {
  private id?: string;

  constructor(private readonly file: string) {
    if (!existsSync(file)) return;
    const text = readFileSync(file, 'utf8').trim();
    if (!NAMESPACE_ID.test(text)) throw new DfsError('INVALID_ARGUMENT', `${file} does not hold a namespace id (16 hex digits); is --data the right folder?`);
    this.id = text;
  }

  get(): string | undefined {
    return this.id;
  }

  /** temp file, fsync, rename, folder fsync: recorded for good before anything relies on it. */
  async record(id: string): Promise<void> {
    if (!NAMESPACE_ID.test(id)) throw new DfsError('INVALID_ARGUMENT', `a master sent a malformed namespace id ${JSON.stringify(id)}`);
    await writeFileDurably(this.file, `${id}\n`);
    this.id = id;
  }
}
