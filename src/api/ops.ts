/**
 * `ops`: a builder for every operator of the registry, each typed by its class's parameter
 * schema (what a layer file may write under it), and `tap` and `lambda`, which take a
 * program's functions. Builders return the plain step objects of a layer file's pipeline,
 * `{ rescale: { from: [0, 100] } }`; `Graph` (src/api/graph.ts) takes them.
 */
import type { z } from 'zod';
import { OPERATORS } from '../ops/registry.js';
import { LambdaStep, TapStep, type LambdaFn, type LambdaOptions, type TapFn } from './code.js';

type Builtin = (typeof OPERATORS)[number];

/** The registry's operator names: `read`, `rescale`, `colormap`, ... */
export type OperatorName = Builtin['op'];

/** An operator's parameters as a layer file writes them (defaults may be left out). */
export type OperatorParams<N extends OperatorName> = z.input<Extract<Builtin, { readonly op: N }>['params']>;

/** One step of a built-in operator: `{ name: params }`. */
export type BuiltinStep<N extends OperatorName = OperatorName> = N extends OperatorName ? { readonly [K in N]: OperatorParams<N> } : never;

/** Steps whose parameters carry a program's function; only `ops.tap` and `ops.lambda` make them. */
export interface TapStepObject {
  readonly tap: { readonly code: TapStep };
}
export interface LambdaStepObject {
  readonly lambda: { readonly code: LambdaStep };
}

/** One step of a graph built in code. */
export type Step = BuiltinStep | TapStepObject | LambdaStepObject;

/** A node of the graph form: a step and the nodes it takes its inputs from, `{ ...ops.blend({ mode: 'multiply' }), in: ['colour', 'shade'] }`. */
export type GraphNode = Step & { readonly in?: readonly string[] };

/** Parameters that may all be left out make the argument optional (`ops.hillshade()`). */
type Builder<N extends OperatorName> =
  object extends OperatorParams<N> ? (params?: OperatorParams<N>) => BuiltinStep<N> : (params: OperatorParams<N>) => BuiltinStep<N>;

export type Ops = { readonly [N in OperatorName]: Builder<N> } & {
  /** Shows `fn` the raster of the step before it (and the tile) and passes it on unchanged. */
  readonly tap: (fn: TapFn) => TapStepObject;
  /** Runs `fn` on the step's inputs: its output shape declared in `options`. */
  readonly lambda: (fn: LambdaFn, options: LambdaOptions) => LambdaStepObject;
};

const builtins = Object.fromEntries(OPERATORS.map(({ op }) => [op, (params?: unknown) => ({ [op]: params ?? {} })]));

export const ops: Ops = Object.freeze({
  ...builtins,
  tap: (fn: TapFn): TapStepObject => ({ tap: { code: new TapStep(fn) } }),
  lambda: (fn: LambdaFn, options: LambdaOptions): LambdaStepObject => ({ lambda: { code: new LambdaStep(fn, options) } }),
}) as Ops;
