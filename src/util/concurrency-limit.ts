/**
 * At most `max` calls of `run` at once; the others wait in call order, and a call that ends passes its place
 * straight to the first of them. A bound on what concurrent calls hold together (`Serial` is one at a time).
 */
export class ConcurrencyLimit {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next !== undefined) next()
      else this.active--
    }
  }
}
