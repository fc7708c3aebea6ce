/**
 * A line on a terminal redrawn in place, such as `setrep -w`'s progress. What is printed after it
 * must not run into its tail: end() erases it, leaving the cursor at the start of that line.
 * Without a terminal (output to a file or a pipe) nothing is drawn.
 */
export class StatusLine {
  private shown = false;

  constructor(private readonly out: NodeJS.WriteStream | undefined) {}

  draw(text: string): void {
    if (!this.out) return;
    // A line wider than the terminal wraps, and '\r' would then go back only to its last row.
    const width = Math.max(10, (this.out.columns || 80) - 1);
    this.out.write(`\r${text.length > width ? text.slice(0, width - 1) + '…' : text}\x1b[K`);
    this.shown = true;
  }

  end(): void {
    if (this.shown) this.out!.write('\r\x1b[2K');
    this.shown = false;
  }
}
