/**
 * The registry: the only door from a layer file to code. Each entry names an operator,
 * the exact parameters it accepts (unknown keys are refused) and how to build it.
 */
import { z } from 'zod';
import type { Cog } from '../sources/cog.js';
import { Colormap } from './builtin/colormap.js';
import { Read } from './builtin/read.js';
import { Rescale } from './builtin/rescale.js';
import { Rgb } from './builtin/rgb.js';
import type { Operator } from './operator.js';

export interface BuildEnv {
  /** The layer's sources, opened. */
  sources: ReadonlyMap<string, Cog>;
}

interface Entry<S extends z.ZodType> {
  params: S;
  /** Graph-form inputs this operator takes (`in:`), or 0 for a source. */
  arity: number;
  build(params: z.infer<S>, env: BuildEnv): Operator;
}

const finite = z.number().finite();
const pair = z.tuple([finite, finite]);
const colour = z.string().regex(/^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/, 'expected a colour #rrggbb or #rrggbbaa');

function entry<S extends z.ZodType>(e: Entry<S>): Entry<z.ZodType> {
  return e as unknown as Entry<z.ZodType>;
}

const REGISTRY = new Map<string, Entry<z.ZodType>>([
  ['read', entry({
    arity: 0,
    params: z.strictObject({
      source: z.string().min(1),
      bands: z.array(z.number().int().min(1).max(65535)).min(1).max(256).optional(),
      resampling: z.enum(['nearest', 'bilinear', 'cubic']).optional(),
      nodata: z.union([finite, z.literal('nan'), z.null()]).optional(),
    }),
    build(p, env) {
      const cog = env.sources.get(p.source);
      if (!cog) throw new Error(`source '${p.source}' is not declared under sources: (declared: ${[...env.sources.keys()].join(', ') || 'none'})`);
      return new Read({ ...p, nodata: p.nodata === 'nan' ? NaN : p.nodata }, cog);
    },
  })],
  ['rescale', entry({
    arity: 1,
    params: z.strictObject({ from: pair, to: pair.optional() }),
    build: (p) => new Rescale(p),
  })],
  ['colormap', entry({
    arity: 1,
    params: z.strictObject({
      name: z.string().min(1).max(64).optional(),
      reverse: z.boolean().optional(),
      range: pair.optional(),
      stops: z.array(z.tuple([finite, colour])).min(2).max(1024).optional(),
      classes: z.record(z.string().max(32), colour).optional(),
    }),
    build: (p) => new Colormap(p as ConstructorParameters<typeof Colormap>[0]),
  })],
  ['rgb', entry({
    arity: 1,
    params: z.strictObject({ rescale: z.tuple([pair, pair, pair]).optional(), gamma: finite.positive().max(10).optional() }),
    build: (p) => new Rgb(p),
  })],
]);

export const OPERATOR_NAMES: readonly string[] = [...REGISTRY.keys()];

/** Builds one operator from a layer file's parameters; throws with every problem listed. */
export function buildOperator(op: string, params: unknown, env: BuildEnv): Operator {
  const e = REGISTRY.get(op);
  if (!e) {
    throw new Error(`unknown operator '${op}' (known: ${OPERATOR_NAMES.join(', ')})`);
  }
  const parsed = e.params.safeParse(params ?? {});
  if (!parsed.success) throw new Error(formatIssues(parsed.error));
  return e.build(parsed.data, env);
}

export function arityOf(op: string): number | undefined {
  return REGISTRY.get(op)?.arity;
}

export function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => {
    const where = i.path.length ? `${i.path.join('.')}: ` : '';
    return `${where}${i.message}`;
  }).join('; ');
}
