/**
 * Work deferred to the end of this turn of the event loop: done in one
 * immediate, in the order it was asked for.
 *
 * Work asked for while that immediate's work, and the promise reactions it
 * sets off, are still running joins the same turn. So SQLite's group commit
 * (store/sqlite.ts) runs here, and the device answers its transactions
 * produce (http/mdm-handler.ts) are written right after it, back to back,
 * rather than in an immediate of the next turn, which would come after the
 * next poll's reads. Answers written back to back wake a reader on this
 * machine (a TLS proxy, the bench's client) once, not once each, and that
 * wake-up is paid for in this process (BENCHMARKS.md, 2026-12-04, second session).
 *
 * A task must not throw: one that does is a bug, thrown again on its own
 * (an uncaught exception) once the other tasks have run.
 */

let tasks: Array<() => void> = [];
let booked = false;
let running = false;

export function atTurnEnd(task: () => void): void {
  tasks.push(task);
  if (booked || running) return;
  booked = true;
  setImmediate(runTurnEnd);
}

function runTurnEnd(): void {
  booked = false;
  running = true;
  runTasks();
  // A nextTick asked for from a microtask runs once the microtask queue is
  // empty: after every reaction to what the tasks settled, and theirs.
  queueMicrotask(() => process.nextTick(finishTurn));
}

function finishTurn(): void {
  runTasks();
  running = false;
}

function runTasks(): void {
  while (tasks.length > 0) {
    const now = tasks;
    tasks = [];
    for (const task of now) {
      try {
        task();
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}
