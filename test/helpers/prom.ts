// A strict parser for the Prometheus text exposition format (0.0.4), enough to hold /metrics to
// it: HELP and TYPE at most once per family and before its samples, a family's samples together,
// names and label names as the format allows them, label values quoted with only \\, \" and \n
// escapes, values Go's ParseFloat takes (Inf and NaN in any case), no series twice, and histogram
// samples only as _bucket (with le), _sum and _count. Anything else throws, naming the line.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Family { name: string; type: MetricType; help?: string; samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<MetricType, string[]> = {
  counter: [''], gauge: [''], untyped: [''], histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'],
};

/** As Go's strconv.ParseFloat, which Prometheus uses: Inf and NaN in any case (prom-client writes `Nan`). */
function parseValue(raw: string, where: string): number {
  const word = raw.toLowerCase();
  if (word === '+inf' || word === 'inf' || word === '+infinity' || word === 'infinity') return Infinity;
  if (word === '-inf' || word === '-infinity') return -Infinity;
  if (word === 'nan') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) throw new Error(`${where}: bad value ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** `{a="x",b="y"}` (from just after the name) → labels and where the value starts. */
function parseLabels(line: string, at: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i);
    const name = line.slice(i, eq);
    if (eq < 0 || !LABEL_NAME.test(name) || line[eq + 1] !== '"') throw new Error(`${where}: bad label at column ${i}`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    let value = '';
    for (i = eq + 2; line[i] !== '"'; i++) {
      if (i >= line.length) throw new Error(`${where}: unterminated label value`);
      if (line[i] !== '\\') value += line[i];
      else if (line[++i] === 'n') value += '\n';
      else if (line[i] === '\\' || line[i] === '"') value += line[i];
      else throw new Error(`${where}: bad escape \\${line[i]}`);
    }
    labels[name] = value;
    i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } at column ${i}`);
  }
  return { labels, end: i + 1 };
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  let current: Family | undefined;
  const family = (name: string, where: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', samples: [] }));
    else if (f !== current && f.samples.length > 0) throw new Error(`${where}: ${name}'s samples are not together`);
    current = f;
    return f;
  };
  text.split('\n').forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line === '') return;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      const f = family(name, where);
      if (f.samples.length > 0) throw new Error(`${where}: ${kind} for ${name} after its samples`);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        f.help = rest;
      } else {
        if (!TYPES.has(rest as MetricType) || f.type !== 'untyped') throw new Error(`${where}: bad or second TYPE for ${name}`);
        f.type = rest as MetricType;
      }
      return;
    }
    if (line.startsWith('#')) return; // a plain comment
    const nameEnd = line.search(/[{ ]/);
    const name = line.slice(0, nameEnd);
    if (nameEnd <= 0 || !NAME.test(name)) throw new Error(`${where}: bad sample ${JSON.stringify(line)}`);
    const { labels, end } = line[nameEnd] === '{' ? parseLabels(line, nameEnd, where) : { labels: {}, end: nameEnd };
    const parts = line.slice(end).trim().split(' ');
    if (line[end] !== ' ' || parts.length < 1 || parts.length > 2) throw new Error(`${where}: expected a value (and a timestamp) after the labels`);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp`);
    const base = [...families.values()].find((f) => f === current && SUFFIXES[f.type].some((s) => f.name + s === name));
    const f = base ?? family(name, where);
    if (!SUFFIXES[f.type].some((s) => f.name + s === name)) throw new Error(`${where}: ${name} does not belong to ${f.type} ${f.name}`);
    if (f.type === 'histogram' && name.endsWith('_bucket') !== ('le' in labels)) throw new Error(`${where}: le goes on a histogram's buckets, only there`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(key)) throw new Error(`${where}: series ${key} twice`);
    seriesSeen.add(key);
    f.samples.push({ name, labels, value: parseValue(parts[0]!, where) });
  });
  return families;
}

/** The sum of the samples named `name` whose labels include `labels` (0 when there are none). */
export function sum(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
  }
  return total;
}

/** GETs and parses a server's /metrics. */
export async function scrape(addr: string): Promise<Map<string, Family>> {
  const res = await fetch(`http://${addr}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${addr}/metrics: ${res.status}`);
  return parsePrometheusText(await res.text());
}
