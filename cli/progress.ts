import { formatBytes } from '../common/config.js';

/** A one-line progress display on stderr (bytes, MiB/s, ETA), redrawn at most 10 times a second. */
export class Progress {
  private readonly startMs = Date.now();
  private lastDrawMs = 0;
  private bytes = 0;

  constructor(private readonly label: string, private total: number | undefined, private readonly enabled: boolean) {}

  update(bytes: number, total?: number): void {
    this.bytes = bytes;
    if (total !== undefined) this.total = total;
    const now = Date.now();
    if (!this.enabled || now - this.lastDrawMs < 100) return;
    this.lastDrawMs = now;
    this.draw(now);
  }

  private draw(now: number): void {
    const secs = Math.max((now - this.startMs) / 1000, 0.001);
    const rate = this.bytes / secs;
    let line = `${this.label}  ${formatBytes(this.bytes)}`;
    if (this.total !== undefined && this.total > 0) {
      const pct = Math.min(100, (this.bytes / this.total) * 100);
      const eta = rate > 0 ? Math.max(0, (this.total - this.bytes) / rate) : 0;
      line += ` / ${formatBytes(this.total)} (${pct.toFixed(0)}%)  ETA ${eta.toFixed(0)}s`;
    }
    line += `  ${(rate / (1024 * 1024)).toFixed(1)} MiB/s`;
    process.stderr.write(`\r\x1b[2K${line}`);
  }

  /** Prints a line of its own above the bar (which is redrawn on the next update). */
  log(message: string): void {
    process.stderr.write(this.enabled ? `\r\x1b[2K${message}\n` : `${message}\n`);
  }

  done(): void {
    if (!this.enabled) return;
    this.draw(Date.now());
    process.stderr.write('\n');
  }
}
