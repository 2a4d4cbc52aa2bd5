/** A counting semaphore: at most `size` tasks run at once; the rest wait in order. */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      // A freed slot passes straight to the next waiter, so #free never overshoots.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
