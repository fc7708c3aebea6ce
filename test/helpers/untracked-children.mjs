// Loaded into every test process (package.json, tap's "node-arg"), after tap's own loaders.
//
// tap's process tracker (@tapjs/processinfo) puts itself into every node process a test starts:
// a spawn hook rewrites the child's NODE_OPTIONS whatever its environment says. In each child it
// starts a module-loader thread: 0.35 s more to start and 0.5 s of CPU (`dfs --version` 0.29 s
// alone, 0.65 s under it), and the suite starts thousands (every dfs CLI run, every master and
// chunkserver). It records processes for coverage, and with coverage off (package.json,
// "disable-coverage") nothing reads that: children then start without it. With coverage on, it
// is left as it was.
if (process.env.TAP_DISABLE_COVERAGE === '1') {
  const hooks = globalThis[Symbol.for('process-on-spawn@*:singletonId')];
  if (hooks && Array.isArray(hooks.listeners)) hooks.listeners.length = 0;
  if (process.env.NODE_OPTIONS) {
    process.env.NODE_OPTIONS = process.env.NODE_OPTIONS.split(/\s+/).filter((o) => o !== '' && !o.includes('@tapjs/processinfo')).join(' ');
  }
}
