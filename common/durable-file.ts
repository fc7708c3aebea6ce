// A small file replaced whole or not at all, and still there after a crash: written beside its
// place, fsynced, renamed over it, and its folder fsynced so the rename itself is durable. For
// records read at start-up (a master's membership, a chunkserver's namespace, the scrubber's place).
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function writeFileDurably(file: string, text: string, mode = 0o644): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
