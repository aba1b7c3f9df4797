/**
 * Runs the tasks of one key one at a time, in the order they came, in this
 * process (tasks of other keys run as they come): for a check and the write
 * it decides, which two requests at once would each make on what the other
 * has not written yet. A task's failure does not hold back the next.
 */
export class OneAtATime {
  /** Per key, the end of its last task (settled either way). */
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key);
    const mine = before ? before.then(task) : task();
    const settled = mine.then(
      () => {},
      () => {},
    );
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return mine;
  }
}
