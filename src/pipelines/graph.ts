/**
 * The stage graph rules Orca applies: string refIds, unique, all-or-none, requisites that
 * exist, no self reference, acyclic, at least one initial stage. Also answers "is X upstream of Y" for the
 * SpEL reference rule.
 */
import type { PipelineProblem } from './types.js';

export interface GraphNode {
  index: number;
  refId?: string;
  name?: string;
  parents: string[];
}

type Report = (p: Omit<PipelineProblem, 'pipeline'>) => void;

const describe = (v: unknown) => (typeof v === 'string' ? `"${v}"` : `${typeof v} ${JSON.stringify(v)}`);

/** Read the graph fields of raw stages, reporting type problems; returns the nodes that can be reasoned about. */
export function readGraph(stages: unknown[], base: string, report: Report): GraphNode[] {
  const nodes: GraphNode[] = [];
  const isObj = (s: unknown): s is Record<string, unknown> =>
    !!s && typeof s === 'object' && !Array.isArray(s);
  const withRef = stages.filter((s) => isObj(s) && 'refId' in s).length;
  // Orca numbers stages itself only when NO stage has a refId (its linear shortcut).
  const linear = withRef === 0;
  stages.forEach((raw, index) => {
    // A stage that is not an object (5, null, "x") is reported by the stage rules; here it has no fields.
    const s: Record<string, unknown> = isObj(raw) ? raw : {};
    const name = typeof s.name === 'string' ? s.name : undefined;
    const stage = { index, name, refId: typeof s.refId === 'string' ? s.refId : undefined };
    const path = `${base}[${index}]`;
    if (linear) {
      nodes.push({ index, name, refId: String(index), parents: index === 0 ? [] : [String(index - 1)] });
      return;
    }
    if (!('refId' in s)) {
      report({
        severity: 'error',
        stage,
        path: `${path}.refId`,
        rule: 'refid-all-or-none',
        message:
          'missing refId while other stages have one: Orca starts it as an extra initial stage, in parallel with the first; give every stage a refId (or none, for a linear pipeline)',
      });
    } else if (typeof s.refId !== 'string') {
      report({
        severity: 'error',
        stage,
        path: `${path}.refId`,
        rule: 'refid-string',
        message: `refId must be a string, found ${describe(s.refId)}: Orca casts it with (String) and the execution fails to start (ClassCastException); write "${String(s.refId)}"`,
      });
    } else if (s.refId === '') {
      report({
        severity: 'error',
        stage,
        path: `${path}.refId`,
        rule: 'refid-string',
        message: 'refId is empty',
      });
    }
    const parents: string[] = [];
    const req = s.requisiteStageRefIds;
    if (req !== undefined && req !== null && !Array.isArray(req)) {
      report({
        severity: 'error',
        stage,
        path: `${path}.requisiteStageRefIds`,
        rule: 'requisites-array',
        message: `requisiteStageRefIds must be an array of refId strings, found ${describe(req)}`,
      });
    } else if (Array.isArray(req)) {
      req.forEach((r, i) => {
        if (typeof r !== 'string' || r === '') {
          report({
            severity: 'error',
            stage,
            path: `${path}.requisiteStageRefIds[${i}]`,
            rule: 'requisites-string',
            message: `each requisite must be a non-empty refId string, found ${describe(r)}: Orca compares refIds as strings, so ${describe(r)} matches no stage`,
          });
        } else parents.push(r);
      });
    }
    nodes.push({ index, name, refId: stage.refId, parents });
  });
  return nodes;
}

export function checkGraph(nodes: GraphNode[], base: string, report: Report): void {
  const byRef = new Map<string, GraphNode>();
  for (const n of nodes) {
    if (n.refId === undefined) continue;
    const first = byRef.get(n.refId);
    if (first) {
      report({
        severity: 'error',
        stage: n,
        path: `${base}[${n.index}].refId`,
        rule: 'refid-unique',
        message: `duplicate refId "${n.refId}" (also stage ${first.index}${first.name ? ` "${first.name}"` : ''}): dependencies on it become ambiguous`,
      });
    } else byRef.set(n.refId, n);
  }
  let known: string | undefined;
  for (const n of nodes) {
    n.parents.forEach((p, i) => {
      const path = `${base}[${n.index}].requisiteStageRefIds[${i}]`;
      if (p === n.refId)
        report({
          severity: 'error',
          stage: n,
          path,
          rule: 'requisites-self',
          message: `stage lists itself ("${p}") as a requisite: it can never start`,
        });
      else if (!byRef.has(p)) {
        known ??= [...byRef.keys()]
          .slice(0, 12)
          .map((r) => `"${r}"`)
          .join(', ');
        report({
          severity: 'error',
          stage: n,
          path,
          rule: 'requisites-exist',
          message: `requisite "${p}" matches no stage refId (known: ${known}): Orca drops it and the stage may never start`,
        });
      }
    });
  }
  if (nodes.length && !nodes.some((n) => n.parents.length === 0)) {
    report({
      severity: 'error',
      path: base,
      rule: 'graph-root',
      message: 'no stage has an empty requisiteStageRefIds: nothing can start',
    });
  }
  for (const cycle of findCycles(nodes, byRef)) {
    const first = cycle[0];
    report({
      severity: 'error',
      stage: first,
      path: `${base}[${first.index}].requisiteStageRefIds`,
      rule: 'graph-acyclic',
      message: `cycle: ${cycle.map((n) => `"${n.refId}"`).join(' → ')} → "${first.refId}": these stages wait on each other forever`,
    });
  }
}

/**
 * One representative cycle per strongly connected group, found by DFS over parent edges. Iterative: a chain
 * of 100,000 stages is a deep walk, not a stack overflow.
 */
function findCycles(nodes: GraphNode[], byRef: Map<string, GraphNode>): GraphNode[][] {
  const state = new Map<GraphNode, 1 | 2>();
  const onStack = new Map<GraphNode, number>();
  const cycles: GraphNode[][] = [];
  const stack: GraphNode[] = [];
  const next: number[] = [];
  const enter = (n: GraphNode) => {
    state.set(n, 1);
    onStack.set(n, stack.length);
    stack.push(n);
    next.push(0);
  };
  for (const root of nodes) {
    if (root.refId === undefined || byRef.get(root.refId) !== root || state.has(root)) continue;
    enter(root);
    while (stack.length) {
      const n = stack[stack.length - 1];
      const i = next[next.length - 1]++;
      if (i >= n.parents.length) {
        stack.pop();
        next.pop();
        onStack.delete(n);
        state.set(n, 2);
        continue;
      }
      const parent = byRef.get(n.parents[i]);
      if (!parent || parent === n) continue;
      if (state.get(parent) === 1) cycles.push(stack.slice(onStack.get(parent)).reverse());
      else if (!state.has(parent)) enter(parent);
    }
  }
  return cycles;
}

/** Whether one of `targets` is `node` itself or one of its ancestors; walks up only until it finds one. */
export function isUpstream(node: GraphNode, targets: GraphNode[], byRef: Map<string, GraphNode>): boolean {
  const wanted = new Set(targets.map((t) => t.refId).filter((r): r is string => r !== undefined));
  if (targets.includes(node)) return true;
  if (!wanted.size) return false;
  const seen = new Set<string>();
  const todo = [...node.parents];
  while (todo.length) {
    const r = todo.pop()!;
    if (wanted.has(r)) return true;
    if (seen.has(r)) continue;
    seen.add(r);
    const p = byRef.get(r);
    if (p) for (const q of p.parents) todo.push(q);
  }
  return false;
}
