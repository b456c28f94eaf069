import type { z } from 'zod';
import type { Cog, CogMeta } from '../sources/cog.js';
import type { OutputShape, Raster, TileContext } from './raster.js';

/** What an operator may look at when it is built: the layer's sources and where it stands. */
export interface BuildContext {
  /**
   * The layer's sources by name; their metadata (bands, nodata, palette) decides defaults. A
   * mosaic's is its first member's; its members keep their own nodata unless a read names one.
   */
  sources: ReadonlyMap<string, { readonly meta: CogMeta; readonly mosaic?: boolean }>;
  /** How many inputs (`in:`) it has. */
  inputs: number;
  /** The operator feeding its first input, already built. */
  upstream?: Operator;
  /**
   * A file the operator reads (a model), as the layer file names it: its absolute path, once
   * checked to lie inside the layers directory. Throws when it may not be read.
   */
  file?: (ref: string) => string;
}

/**
 * A built-in operator's class: its registry name and its parameters' schema, declared once on
 * the class (the parameter types are inferred from the schema), and a constructor that
 * checks its parameters against that schema.
 */
export interface OperatorClass {
  readonly op: string;
  readonly params: z.ZodType;
  new (params: never, ctx: BuildContext): Operator;
}

/**
 * One step of a layer's graph. The constructor takes parameters, checks them against the
 * class's schema and does the one-time work (a colour map builds its lookup table there);
 * `apply` does the per-tile work; `config()` returns the plain JSON that rebuilds it through
 * the registry.
 */
export abstract class Operator {
  /** The registry name (`read`, `colormap`, ...): the class's static `op`. */
  get op(): string {
    return (this.constructor as unknown as OperatorClass).op;
  }

  /** How many inputs `apply` takes: 0 for a source such as `read`. */
  abstract readonly arity: number;

  /** Pixels of context this operator needs around each output pixel (hillshade: 1). */
  buffer(): number {
    return 0;
  }

  /** The operators inside this one: a list's steps, a graph's nodes. */
  children(): readonly Operator[] {
    return [];
  }

  /**
   * One-time work that needs the sources' bytes (rescale `from: auto`), done when a render
   * thread builds the graph, never per tile and never in the loader.
   */
  prepare(_sources: ReadonlyMap<string, Cog>): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Checks that need I/O, done once by the loader after the graph is built (a model file that
   * loads, with the inputs and outputs the node names): a failure refuses the layer.
   */
  check(): Promise<void> {
    return Promise.resolve();
  }

  /** What it produces from inputs of these shapes; throws when it cannot take them. */
  abstract shape(inputs: OutputShape[]): OutputShape;

  /** Null means "nothing here": the tile does not touch the data. */
  abstract apply(inputs: Raster[], ctx: TileContext): Raster | null | Promise<Raster | null>;

  /** Parameters with defaults filled in, as plain JSON. */
  abstract config(): Record<string, unknown>;
}

/** Parameters checked against an operator's schema (defaults filled in), or an error listing every problem. */
export function parseParams<S extends z.ZodType>(schema: S, params: unknown): z.output<S> {
  const parsed = schema.safeParse(params ?? {});
  if (!parsed.success) throw new Error(formatIssues(parsed.error));
  return parsed.data;
}

export function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
}

/** Every operator of a graph, depth first, the root included. */
export function* operatorsOf(root: Operator): Generator<Operator> {
  yield root;
  for (const child of root.children()) yield* operatorsOf(child);
}

/** An error in a graph's structure or parameters, naming the node it concerns. */
export class GraphError extends Error {
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(`node '${node}': ${message}`);
  }
}

/** A list of operators, each taking the previous one's output. */
export class Sequential extends Operator {
  static readonly op = 'sequential';
  readonly arity: number;
  private readonly total: number;

  constructor(
    readonly steps: readonly Operator[],
    readonly names: readonly string[] = steps.map((s, i) => `${i}:${s.op}`),
  ) {
    super();
    if (steps.length === 0) throw new GraphError('pipeline', 'an empty pipeline draws nothing');
    this.arity = steps[0]!.arity;
    steps.forEach((s, i) => {
      if (i > 0 && s.arity !== 1)
        throw new GraphError(this.names[i]!, `'${s.op}' takes ${s.arity} inputs and cannot follow another step in a list; use the graph form (nodes/output)`);
    });
    this.total = steps.reduce((sum, s) => sum + s.buffer(), 0);
  }

  override buffer(): number {
    return this.total;
  }

  override children(): readonly Operator[] {
    return this.steps;
  }

  /** The steps by the names `TileContext.tap` gives them, in order. */
  named(): [string, Operator][] {
    return this.steps.map((s, i) => [this.names[i]!, s]);
  }

  shape(inputs: OutputShape[]): OutputShape {
    return this.stepShapes(inputs).at(-1)!;
  }

  /** What each step produces, in order, from inputs of these shapes. */
  stepShapes(inputs: OutputShape[]): OutputShape[] {
    let cur = inputs;
    return this.steps.map((s, i) => {
      let out: OutputShape;
      try {
        out = s.shape(cur);
      } catch (err) {
        throw err instanceof GraphError ? err : new GraphError(this.names[i]!, (err as Error).message);
      }
      cur = [out];
      return out;
    });
  }

  async apply(inputs: Raster[], ctx: TileContext): Promise<Raster | null> {
    let cur: Raster[] = inputs;
    for (const [i, step] of this.steps.entries()) {
      const r = await step.apply(cur, ctx);
      ctx.tap?.(this.names[i]!, step, r);
      if (r === null) return null;
      cur = [r];
    }
    return cur[0]!;
  }

  config(): Record<string, unknown> {
    return { steps: this.steps.map((s) => ({ [s.op]: s.config() })) };
  }
}

export interface GraphNode {
  operator: Operator;
  inputs: string[];
}

/**
 * Named nodes joined by their `in:` edges, with one output. Checked when built: every input
 * exists, no cycles, every operator accepts its inputs' shapes.
 */
export class Graph extends Operator {
  static readonly op = 'graph';
  readonly arity = 0;
  private readonly order: string[];
  private readonly shapes = new Map<string, OutputShape>();
  private readonly need: number;

  constructor(
    readonly nodes: ReadonlyMap<string, GraphNode>,
    readonly output: string,
  ) {
    super();
    if (!nodes.has(output)) throw new GraphError(output, `the output names a node that does not exist`);
    for (const [name, node] of nodes) {
      if (node.inputs.length !== node.operator.arity) {
        throw new GraphError(name, `'${node.operator.op}' takes ${node.operator.arity} input(s), got ${node.inputs.length}`);
      }
      for (const i of node.inputs) if (!nodes.has(i)) throw new GraphError(name, `input '${i}' is not a node of this graph`);
    }
    this.order = topologicalOrder(nodes);
    for (const name of this.order) {
      const node = nodes.get(name)!;
      try {
        this.shapes.set(name, node.operator.shape(node.inputs.map((i) => this.shapes.get(i)!)));
      } catch (err) {
        throw err instanceof GraphError ? err : new GraphError(name, (err as Error).message);
      }
    }
    // The buffer `read` must pad by: the most context needed along any path to the output.
    const below = new Map<string, number>();
    for (const name of [...this.order].reverse()) {
      const own = below.get(name) ?? 0;
      const node = nodes.get(name)!;
      for (const i of node.inputs) below.set(i, Math.max(below.get(i) ?? 0, own + node.operator.buffer()));
    }
    let need = 0;
    for (const name of this.order) {
      const node = nodes.get(name)!;
      if (node.inputs.length === 0) need = Math.max(need, (below.get(name) ?? 0) + node.operator.buffer());
    }
    this.need = need;
  }

  override buffer(): number {
    return this.need;
  }

  override children(): readonly Operator[] {
    return [...this.nodes.values()].map((n) => n.operator);
  }

  /** The nodes by name, each after its inputs. */
  named(): [string, Operator][] {
    return this.order.map((name) => [name, this.nodes.get(name)!.operator]);
  }

  shape(): OutputShape {
    return this.shapes.get(this.output)!;
  }

  /** What the named node produces. */
  shapeOf(name: string): OutputShape | undefined {
    return this.shapes.get(name);
  }

  async apply(_inputs: Raster[], ctx: TileContext): Promise<Raster | null> {
    // Promises per node, so a node feeding two others runs once and independent reads overlap.
    return this.run(this.output, new Map(), ctx);
  }

  // Methods, not closures made for each tile, so that V8 keeps their optimised code (see
  // src/tiles/plan.ts SourcePixels).
  private run(name: string, memo: Map<string, Promise<Raster | null>>, ctx: TileContext): Promise<Raster | null> {
    let p = memo.get(name);
    if (!p) {
      p = this.evaluate(name, memo, ctx);
      memo.set(name, p);
    }
    return p;
  }

  private async evaluate(name: string, memo: Map<string, Promise<Raster | null>>, ctx: TileContext): Promise<Raster | null> {
    const node = this.nodes.get(name)!;
    const pending: Promise<Raster | null>[] = [];
    for (const input of node.inputs) pending.push(this.run(input, memo, ctx));
    const ins = await Promise.all(pending);
    // An input with nothing to draw leaves its consumers nothing to draw either.
    const r = ins.some((i) => i === null) ? null : await node.operator.apply(ins as Raster[], ctx);
    ctx.tap?.(name, node.operator, r);
    return r;
  }

  config(): Record<string, unknown> {
    const nodes: Record<string, unknown> = {};
    for (const name of [...this.nodes.keys()].sort()) {
      const n = this.nodes.get(name)!;
      nodes[name] = { op: n.operator.op, ...(n.inputs.length ? { in: n.inputs } : {}), ...n.operator.config() };
    }
    return { nodes, output: this.output };
  }
}

/** Nodes ordered so that each comes after its inputs; throws GraphError on a cycle. */
export function topologicalOrder(nodes: ReadonlyMap<string, { inputs: readonly string[] }>): string[] {
  const order: string[] = [];
  const state = new Map<string, 1 | 2>(); // 1 visiting, 2 done
  for (const start of nodes.keys()) {
    if (state.get(start) === 2) continue;
    // Iterative depth-first search: a 20,000-node chain must not overflow the stack.
    const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const inputs = nodes.get(top.name)!.inputs;
      if (top.next < inputs.length) {
        const i = inputs[top.next++]!;
        const s = state.get(i);
        if (s === 1) throw new GraphError(i, `cycle: ${[...stack.map((f) => f.name), i].join(' -> ')}`);
        if (s === undefined) {
          state.set(i, 1);
          stack.push({ name: i, next: 0 });
        }
      } else {
        state.set(top.name, 2);
        order.push(top.name);
        stack.pop();
      }
    }
  }
  return order;
}
