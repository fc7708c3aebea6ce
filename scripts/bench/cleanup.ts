// What a benchmark started, it stops: child processes (by pid, never by name) and temporary
// folders, on a normal end, on an error and on Ctrl-C alike.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

type Task = () => void | Promise<void>;

const tasks: Task[] = [];

/** Registers work for the end; it runs last-in first-out, once. Returns a function that unregisters it. */
export function onCleanup(task: Task): () => void {
  tasks.push(task);
  return () => {
    const i = tasks.indexOf(task);
    if (i >= 0) tasks.splice(i, 1);
  };
}

let draining: Promise<void> | undefined;

/**
 * Runs every registered task (newest first), each once, even if an earlier one failed. A call
 * while a run is under way (Ctrl-C during an error's cleanup) waits for that same run, so no
 * caller exits the process while a task is half done.
 */
export function runCleanup(): Promise<void> {
  draining ??= (async () => {
    while (tasks.length > 0) {
      try {
        await tasks.pop()!();
      } catch (err) {
        console.error(`cleanup: ${(err as Error).message}`);
      }
    }
  })().finally(() => {
    draining = undefined;
  });
  return draining;
}

/** On Ctrl-C or SIGTERM: clean up, then exit 130 (as a shell reports an interrupted command). */
export function cleanUpOnSignals(name: string): void {
  const stop = (signal: NodeJS.Signals) => {
    console.error(`\n${name}: ${signal}, stopping what it started`);
    void runCleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** kill -9 by pid, and wait until it is gone. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (!isRunning(child) || child.pid === undefined) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid!, 'SIGKILL');
  await gone;
}

/** spawn() whose child is killed at cleanup if it is still running then. */
export function spawnTracked(command: string, args: string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(command, args, opts);
  const forget = onCleanup(() => killChild(child));
  child.once('exit', forget);
  return child;
}
