// The Grafana dashboard (deploy/grafana/berth.json) queries only metrics and labels berth exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/report/metrics.js';

const dashboard: unknown = JSON.parse(readFileSync(new URL('../../deploy/grafana/berth.json', import.meta.url), 'utf8'));

// --- A small PromQL reader: enough to find metric selectors, their matchers and grouping labels. ---

interface Token {
  kind: 'ident' | 'string' | 'number' | 'range' | 'var' | 'punct';
  text: string;
}

const LEXER: [Token['kind'] | 'space', RegExp][] = [
  ['space', /\s+/y],
  ['string', /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/y],
  ['range', /\[[^\]]*\]/y],
  ['var', /\$\{?\w+\}?/y],
  ['number', /\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*/iy],
  ['ident', /[A-Za-z_:][A-Za-z0-9_:]*/y],
  ['punct', /=~|!~|!=|==|>=|<=|[^\s]/y],
];

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  next: for (let at = 0; at < expr.length; ) {
    for (const [kind, re] of LEXER) {
      re.lastIndex = at;
      const text = re.exec(expr)?.[0];
      if (!text) continue;
      if (kind !== 'space') tokens.push({ kind, text });
      at += text.length;
      continue next;
    }
    throw new Error(`cannot read ${JSON.stringify(expr.slice(at))}`);
  }
  return tokens;
}

/** A metric selector (`name{label=…}`) and the labels its matchers name. */
interface Selector {
  metric: string;
  labels: string[];
  at: number;
}
/** `by (…)` / `without (…)`: labels that must exist on every metric in the aggregated expression. */
interface Grouping {
  labels: string[];
  metrics: string[];
}
interface Refs {
  selectors: Selector[];
  groupings: Grouping[];
}

const KEYWORDS = new Set(['bool', 'and', 'or', 'unless', 'offset', 'atan2']);
const UNSUPPORTED = new Set(['on', 'ignoring', 'group_left', 'group_right']);

/** Index of the parenthesis matching the one at `from`, walking forward (step 1) or backward (step -1). */
function matching(tokens: Token[], from: number, step: 1 | -1): number {
  const [open, close] = step === 1 ? ['(', ')'] : [')', '('];
  for (let i = from, depth = 0; i >= 0 && i < tokens.length; i += step) {
    if (tokens[i]?.text === open) depth++;
    else if (tokens[i]?.text === close && --depth === 0) return i;
  }
  throw new Error('unbalanced parentheses');
}

/** Identifiers from `(` at `from` to its `)`; returns them and the index of the `)`. */
function identList(tokens: Token[], from: number): { names: string[]; end: number } {
  if (tokens[from]?.text !== '(') throw new Error('expected (');
  const end = matching(tokens, from, 1);
  return { names: tokens.slice(from + 1, end).filter((t) => t.kind === 'ident').map((t) => t.text), end };
}

function references(expr: string): Refs {
  // Grafana's label_values(metric, label) (template variables) is a selector naming one label.
  const lv = /^\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)\s*$/.exec(expr);
  if (lv?.[1] && lv[2]) return { selectors: [{ metric: lv[1], labels: [lv[2]], at: 0 }], groupings: [] };

  const tokens = tokenize(expr);
  const selectors: Selector[] = [];
  const spans: { labels: string[]; from: number; to: number }[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const next = tokens[i + 1]?.text;
    if (token.kind === 'punct' && token.text === '{') throw new Error('selectors without a metric name are not supported');
    if (token.kind !== 'ident' || KEYWORDS.has(token.text)) continue;
    if (UNSUPPORTED.has(token.text)) throw new Error(`${token.text}(…) is not supported`);
    if (token.text === 'by' || token.text === 'without') {
      const { names, end } = identList(tokens, i + 1);
      // `sum by (x) (expr)` or `sum (expr) by (x)`
      const [from, to] = tokens[end + 1]?.text === '(' ? [end + 1, matching(tokens, end + 1, 1)] : [matching(tokens, i - 1, -1), i - 1];
      spans.push({ labels: names, from, to });
      i = end;
    } else if (next === '(' || next === 'by' || next === 'without') {
      continue; // a function or an aggregation
    } else {
      const selector: Selector = { metric: token.text, labels: [], at: i };
      if (next === '{') {
        const end = tokens.findIndex((t, j) => j > i && t.text === '}');
        selector.labels = tokens.slice(i + 2, end).filter((t) => t.kind === 'ident').map((t) => t.text);
        i = end;
      }
      selectors.push(selector);
    }
  }
  const groupings = spans.map((s) => ({ labels: s.labels, metrics: selectors.filter((x) => x.at > s.from && x.at < s.to).map((x) => x.metric) }));
  return { selectors, groupings };
}

// --- What berth exports: the real registry. ---

interface Exported {
  type: string;
  labels: string[];
}

function exportedMetrics(): Map<string, Exported> {
  const out = new Map<string, Exported>();
  for (const metric of new Metrics().registry.getMetricsAsArray()) {
    // prom-client's typings say `type` is an enum; at run time it is 'counter', 'histogram', … and labelNames is untyped.
    const type: unknown = Reflect.get(metric, 'type');
    const labels: unknown = Reflect.get(metric, 'labelNames');
    const names = Array.isArray(labels) ? labels.filter((l): l is string => typeof l === 'string') : [];
    out.set(metric.name, { type: String(type), labels: names });
  }
  return out;
}

/** The labels a series name has, or undefined when berth exports no such series. */
function seriesLabels(name: string, exported: Map<string, Exported>): string[] | undefined {
  const direct = exported.get(name);
  if (direct && direct.type !== 'histogram' && direct.type !== 'summary') return direct.labels;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = m?.[1] ? exported.get(m[1]) : undefined;
  if (!m || base?.type !== 'histogram') return undefined;
  return m[2] === 'bucket' ? [...base.labels, 'le'] : base.labels;
}

/** Everything in `expr` that berth does not export: unknown metrics, and labels a metric lacks. */
function problems(expr: string, exported: Map<string, Exported>): string[] {
  const refs = references(expr);
  const out: string[] = [];
  const check = (metric: string, labels: string[], where: string): void => {
    const known = seriesLabels(metric, exported);
    if (!known) out.push(`unknown metric ${metric}`);
    else for (const l of labels) if (l !== '__name__' && !known.includes(l)) out.push(`${metric} has no label ${l} (${where})`);
  };
  for (const s of refs.selectors) check(s.metric, s.labels, 'selector');
  for (const g of refs.groupings) for (const m of g.metrics) check(m, g.labels, 'grouping');
  return [...new Set(out)];
}

// --- Walking the dashboard. ---

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objects(v: unknown, key: string): { [key: string]: Json }[] {
  return isObject(v) && Array.isArray(v[key]) ? v[key].filter(isObject) : [];
}

/** Every panel, rows' nested panels included. */
function allPanels(v: unknown): { [key: string]: Json }[] {
  return objects(v, 'panels').flatMap((p) => [p, ...allPanels(p)]);
}

/** Every value under a `datasource` key, anywhere. */
function datasourceRefs(v: unknown): Json[] {
  if (Array.isArray(v)) return v.flatMap(datasourceRefs);
  if (!isObject(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => (k === 'datasource' ? [x, ...datasourceRefs(x)] : datasourceRefs(x)));
}

const variables = objects(isObject(dashboard) ? dashboard['templating'] : undefined, 'list');
const panels = allPanels(dashboard);
const queryPanels = panels.filter((p) => p['type'] !== 'row');

/** Every PromQL query: panel targets and query variables, with where each came from. */
function queries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of queryPanels) for (const t of objects(p, 'targets')) if (typeof t['expr'] === 'string') out.push({ where: `panel ${String(p['title'])} ${String(t['refId'])}`, expr: t['expr'] });
  for (const v of variables.filter((x) => x['type'] === 'query')) {
    const q = v['query'];
    const expr = isObject(q) ? q['query'] : q;
    if (typeof expr === 'string') out.push({ where: `variable ${String(v['name'])}`, expr });
  }
  return out;
}

describe('grafana dashboard', () => {
  const exported = exportedMetrics();

  it('the extractor finds metrics and labels, not functions or grouping labels', () => {
    const a = references('sum by (env, result) (rate(berth_reconcile_total{env=~"$env"}[5m]))');
    assert.deepEqual(a.selectors.map((s) => [s.metric, s.labels]), [['berth_reconcile_total', ['env']]]);
    assert.deepEqual(a.groupings, [{ labels: ['env', 'result'], metrics: ['berth_reconcile_total'] }]);
    const b = references('histogram_quantile(0.95, sum by (le) (rate(berth_reconcile_duration_seconds_bucket[5m])))');
    assert.deepEqual(b.selectors.map((s) => s.metric), ['berth_reconcile_duration_seconds_bucket']);
    assert.deepEqual(b.groupings, [{ labels: ['le'], metrics: ['berth_reconcile_duration_seconds_bucket'] }]);
    const c = references('sum(rate(berth_a_total[$__rate_interval])) without (x) / sum(berth_b) or vector(0)');
    assert.deepEqual(c.selectors.map((s) => s.metric), ['berth_a_total', 'berth_b']);
    assert.deepEqual(c.groupings, [{ labels: ['x'], metrics: ['berth_a_total'] }]);
    assert.deepEqual(references('label_values(berth_reconcile_total, env)').selectors.map((s) => [s.metric, s.labels]), [['berth_reconcile_total', ['env']]]);
  });

  it('the check reports invented metrics, wrong suffixes and missing labels', () => {
    assert.deepEqual(problems('sum by (env, result) (rate(berth_reconcile_total{env=~"$env"}[5m]))', exported), []);
    assert.deepEqual(problems('histogram_quantile(0.95, sum by (le) (rate(berth_reconcile_duration_seconds_bucket[5m])))', exported), []);
    assert.deepEqual(problems('sum(rate(berth_nope_total[5m]))', exported), ['unknown metric berth_nope_total']);
    assert.deepEqual(problems('rate(berth_reconcile_total_bucket[5m])', exported), ['unknown metric berth_reconcile_total_bucket']);
    assert.deepEqual(problems('berth_reconcile_duration_seconds', exported), ['unknown metric berth_reconcile_duration_seconds']);
    assert.deepEqual(problems('sum by (le) (rate(berth_reconcile_duration_seconds_sum[5m]))', exported), ['berth_reconcile_duration_seconds_sum has no label le (grouping)']);
    assert.deepEqual(problems('sum(rate(berth_webhook_requests_total{env="prod"}[5m]))', exported), ['berth_webhook_requests_total has no label env (selector)']);
    assert.deepEqual(problems('label_values(berth_reconcile_total, app)', exported), ['berth_reconcile_total has no label app (selector)']);
  });

  it('the panel walker reaches a collapsed row\'s panels', () => {
    const sample = { panels: [{ id: 1, type: 'row', panels: [{ id: 2, type: 'timeseries' }] }, { id: 3 }] };
    assert.deepEqual(allPanels(sample).map((p) => p['id']), [1, 2, 3]);
  });

  it('every query names only metrics and labels berth exports', () => {
    const all = queries();
    assert.ok(all.length >= queryPanels.length, 'every panel has a query');
    const found = all.flatMap(({ where, expr }) => problems(expr, exported).map((p) => `${where}: ${p}`));
    assert.deepEqual(found, []);
    const used = new Set(all.flatMap(({ expr }) => references(expr).selectors.map((s) => s.metric.replace(/_(bucket|sum|count)$/, ''))));
    const berth = [...exported.keys()].filter((n) => n.startsWith('berth_'));
    assert.deepEqual(berth.filter((n) => !used.has(n)), [], 'every berth_* metric has a panel');
  });

  it('panels have unique ids, titles, targets and fit 24 columns', () => {
    const ids = panels.map((p) => p['id']);
    assert.equal(new Set(ids).size, ids.length, `duplicate panel ids: ${ids.join(',')}`);
    for (const p of panels) {
      const title = p['title'];
      assert.ok(typeof title === 'string' && title.length > 0, `panel ${String(p['id'])} has a title`);
      assert.ok(typeof p['id'] === 'number', `${title} has a numeric id`);
      const g = p['gridPos'];
      assert.ok(isObject(g), `${title} has a gridPos`);
      const [x, y, w, h] = [g['x'], g['y'], g['w'], g['h']];
      assert.ok(typeof x === 'number' && typeof y === 'number' && typeof w === 'number' && typeof h === 'number', `${title}: gridPos is numeric`);
      assert.ok(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24, `${title}: gridPos ${JSON.stringify(g)} fits 24 columns`);
      if (p['type'] !== 'row') assert.ok(objects(p, 'targets').length > 0, `${title} has a target`);
    }
  });

  it('every datasource reference uses the datasource variable', () => {
    const refs = datasourceRefs(dashboard);
    assert.ok(refs.length > queryPanels.length);
    for (const r of refs) assert.deepEqual(r, { type: 'prometheus', uid: '${datasource}' });
    const ds = variables.find((v) => v['name'] === 'datasource');
    assert.equal(ds?.['type'], 'datasource');
    assert.equal(ds?.['query'], 'prometheus');
    const env = variables.find((v) => v['name'] === 'env');
    assert.ok(env?.['multi'] === true && env['includeAll'] === true, 'env is multi-select with All');
  });

  it('every selector of a metric with an env label filters by $env', () => {
    for (const { where, expr } of queries().filter((q) => !q.where.startsWith('variable'))) {
      for (const s of references(expr).selectors) {
        if (seriesLabels(s.metric, exported)?.includes('env')) assert.match(expr, new RegExp(`${s.metric}\\{[^}]*env=~"\\$env"`), `${where}: ${s.metric} filters by $env`);
      }
    }
  });
});
