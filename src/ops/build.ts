/**
 * Operator graphs from their plain JSON description: the list form (each step one
 * `{op: params}`) or the graph form (`nodes`, `output`). The loader builds them to check a
 * layer file; a render thread builds them again from the canonical config.
 */
import { Graph, GraphError, Sequential, topologicalOrder, type BuildContext, type GraphNode, type Operator } from './operator.js';
import { buildOperator, type CodeOperators } from './registry.js';

/** Bounds the work a hostile file can cause when its graph is built and rendered. */
export const MAX_NODES = 256;

/** `code` builds the operators that take functions: only the programmatic API passes it (see CodeOperators). */
export function buildGraph(pipeline: unknown, env: Pick<BuildContext, 'sources' | 'file'> & { code?: CodeOperators }): Operator {
  if (Array.isArray(pipeline)) {
    if (pipeline.length > MAX_NODES) throw new GraphError('pipeline', `${pipeline.length} steps; at most ${MAX_NODES}`);
    const steps: Operator[] = [];
    pipeline.forEach((step, i) => {
      const keys = step && typeof step === 'object' ? Object.keys(step) : [];
      if (keys.length !== 1)
        throw new GraphError(
          `step ${i + 1}`,
          `each step is one operator name with its parameters, e.g. '- rescale: { from: [0, 100] }'; got keys ${keys.join(', ') || 'none'}`,
        );
      const op = keys[0]!;
      try {
        steps.push(
          buildOperator(
            op,
            (step as Record<string, unknown>)[op],
            { sources: env.sources, file: env.file, inputs: i === 0 ? 0 : 1, upstream: steps[i - 1] },
            env.code,
          ),
        );
      } catch (err) {
        throw new GraphError(`step ${i + 1} (${op})`, (err as Error).message);
      }
    });
    const seq = new Sequential(
      steps,
      steps.map((s, i) => `step ${i + 1} (${s.op})`),
    );
    if (seq.arity !== 0) throw new GraphError('step 1', `a pipeline starts with a source operator such as 'read', not '${steps[0]!.op}'`);
    checkDrawable(seq.shape([]), 'pipeline');
    return seq;
  }
  const { nodes, output } = pipeline as { nodes: Record<string, Record<string, unknown>>; output: string };
  const names = Object.keys(nodes);
  if (names.length > MAX_NODES) throw new GraphError('nodes', `${names.length} nodes; at most ${MAX_NODES}`);
  // Edges first: every input exists and there is no cycle, before anything is built.
  const edges = new Map<string, { inputs: string[] }>();
  for (const name of names) {
    const inputs = nodes[name]!.in;
    if (inputs !== undefined && !(Array.isArray(inputs) && inputs.length <= 16 && inputs.every((i) => typeof i === 'string')))
      throw new GraphError(name, "'in' is a list of node names");
    for (const i of (inputs as string[] | undefined) ?? [])
      if (!Object.hasOwn(nodes, i)) throw new GraphError(name, `input '${i}' is not a node of this graph`);
    edges.set(name, { inputs: (inputs as string[] | undefined) ?? [] });
  }
  const built = new Map<string, GraphNode>();
  for (const name of topologicalOrder(edges)) {
    const { op, in: _in, ...params } = nodes[name]!;
    if (typeof op !== 'string') throw new GraphError(name, "every node needs 'op', the operator's name");
    const inputs = edges.get(name)!.inputs;
    try {
      built.set(name, {
        operator: buildOperator(
          op,
          params,
          { sources: env.sources, file: env.file, inputs: inputs.length, upstream: inputs[0] ? built.get(inputs[0])?.operator : undefined },
          env.code,
        ),
        inputs,
      });
    } catch (err) {
      throw new GraphError(name, (err as Error).message);
    }
  }
  const graph = new Graph(built, output);
  checkDrawable(graph.shape(), output);
  return graph;
}

function checkDrawable(s: { kind: string; bands: number }, node: string): void {
  if (s.kind === 'bands' && s.bands !== 1 && s.bands !== 3 && s.bands !== 4) {
    throw new GraphError(node, `the output has ${s.bands} bands: it must be RGBA, or 1, 3 or 4 bands`);
  }
}
