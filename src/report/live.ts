type Write = NodeJS.WriteStream["write"];

/**
 * Lines drawn at the bottom of a terminal and redrawn in place. While they
 * are up, whatever the program writes to its stdout or stderr (when those are
 * terminals) goes above them: the lines are erased first and drawn again
 * after a complete line, so the program's output is never mixed into them.
 */
export class LiveLines {
  readonly #out: NodeJS.WriteStream;
  readonly #write: (text: string) => void;
  readonly #restore: Array<() => void> = [];
  #lines: readonly string[] = [];
  #drawn = 0;
  /** The program's last write did not end its line: drawing now would join it. */
  #midLine = false;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    const original = out.write;
    this.#write = (text) => void original.call(out, text);
    for (const stream of new Set([process.stdout, process.stderr, out])) {
      if (!stream.isTTY) continue;
      const own = stream.write;
      const hooked = ((chunk: unknown, ...rest: unknown[]) => {
        this.#erase();
        const ok = (own as (...args: unknown[]) => boolean).call(stream, chunk, ...rest);
        const text = typeof chunk === "string" ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString() : "";
        if (text) this.#midLine = !text.endsWith("\n");
        this.#paint();
        return ok;
      }) as Write;
      stream.write = hooked;
      this.#restore.push(() => {
        if (stream.write === hooked) stream.write = own;
      });
    }
  }

  /** Replaces the lines on screen. */
  draw(lines: readonly string[]): void {
    // One write: a terminal never shows the lines erased and not yet drawn again.
    const erase = this.#erasing();
    this.#lines = lines;
    const paint = this.#painting();
    if (erase || paint) this.#write(erase + paint);
  }

  /** Stops: the last lines stay on screen, ended by a newline, and writes go straight through again. */
  stop(): void {
    if (this.#drawn) this.#write("\n");
    this.#drawn = 0;
    this.#lines = [];
    for (const restore of this.#restore.splice(0)) restore();
  }

  #erase(): void {
    const text = this.#erasing();
    if (text) this.#write(text);
  }

  #paint(): void {
    const text = this.#painting();
    if (text) this.#write(text);
  }

  /** What erases the lines drawn (none drawn: ""); they count as erased. */
  #erasing(): string {
    if (!this.#drawn) return "";
    const text = `\r\x1b[K${"\x1b[1A\x1b[K".repeat(this.#drawn - 1)}`;
    this.#drawn = 0;
    return text;
  }

  /** What draws the lines (nothing to draw: ""); they count as drawn. */
  #painting(): string {
    if (this.#midLine || !this.#lines.length || this.#drawn) return "";
    const width = Math.max(20, (this.#out.columns || 100) - 1); // a pseudo-terminal may report 0 columns
    this.#drawn = this.#lines.length;
    return this.#lines.map((l) => (visibleLength(l) > width ? `${l.slice(0, width - 1)}…${l.includes("\x1b[") ? "\x1b[0m" : ""}` : l)).join("\n");
  }
}

/** A line's length on screen, without colour escapes. */
function visibleLength(line: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a colour escape starts with ESC.
  return line.replace(/\x1b\[[0-9;]*m/g, "").length;
}
