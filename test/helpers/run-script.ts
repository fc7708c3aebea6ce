// Runs one of the project's scripts (a benchmark) as a user would: node, no NODE_OPTIONS, its
// output collected, stopped with Ctrl-C (it cleans up after itself) if it outlives `timeoutMs`.
import { spawn } from 'node:child_process';

export interface ScriptRun { code: number; stdout: string; stderr: string }

export function runScript(script: string, args: string[], timeoutMs: number): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    // No NODE_OPTIONS: the script and every process it starts run as a user's do
    // (test/helpers/untracked-children.mjs keeps tap's tracker out).
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`${script} did not finish within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
