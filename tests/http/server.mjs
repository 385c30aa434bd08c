// Starts a server process (flashline serve or the scripted server) on a free port (--port 0; the
// URL is read from its stderr), and stops it by pid so no process is left behind.
import { spawn } from 'node:child_process';

export async function startServer(command, args, { readyTimeoutMs = 600_000 } = {}) {
  const proc = spawn(command, [...args, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready:\n${log}`)), readyTimeoutMs);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/serving \S+ on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready:\n${log}`));
    });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    url,
    pid: proc.pid,
    log: () => log,
    // SIGTERM (the graceful path; SIGUSR1 for mpirun, which forwards it to every rank), then
    // SIGKILL if it has not exited in 30 s.
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      process.kill(proc.pid, signal);
      const timer = setTimeout(() => process.kill(proc.pid, 'SIGKILL'), 30_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

// The JSON events of a server-sent-events body, and whether [DONE] closed it.
export function sseEvents(text) {
  const events = [];
  let done = false;
  for (const block of text.split('\n\n')) {
    if (!block.startsWith('data: ')) continue;
    const data = block.slice(6);
    if (data === '[DONE]') {
      done = true;
      break;
    }
    events.push(JSON.parse(data));
  }
  return { events, done };
}

export async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}
