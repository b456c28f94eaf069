/**
 * The registry: the only door from a layer file to code. Each entry names an operator,
 * the exact parameters it accepts (unknown keys are refused) and how to build it.
 */
import { z } from 'zod';
import type { Cog } from '../sources/cog.js';
import { Expression, NormalizedDifference, Select } from './builtin/bands.js';
import { Blend } from './builtin/blend.js';
import { AssertRange, AssertValidFraction } from './builtin/checks.js';
import { Colormap } from './builtin/colormap.js';
import { Hillshade } from './builtin/hillshade.js';
import { Read } from './builtin/read.js';
import { Rescale } from './builtin/rescale.js';
import { Rgb } from './builtin/rgb.js';
import type { Operator } from './operator.js';

export interface BuildEnv {
  /** The layer's sources, opened. */
  sources: ReadonlyMap<string, Cog>;
}

/** Where an operator stands in its graph, for those whose build depends on it. */
export interface BuildSite {
  /** How many inputs (`in:`) it has. */
  inputs: number;
  /** The operator feeding its first input, already built. */
  upstream?: Operator;
}

interface Entry<S extends z.ZodType> {
  params: S;
  build(params: z.infer<S>, env: BuildEnv, site: BuildSite): Operator;
}

const finite = z.number().finite();
const pair = z.tuple([finite, finite]);
const colour = z.string().regex(/^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/, 'expected a colour #rrggbb or #rrggbbaa');

function entry<S extends z.ZodType>(e: Entry<S>): Entry<z.ZodType> {
  return e as unknown as Entry<z.ZodType>;
}

const bandList = z.array(z.number().int().min(1).max(65535)).min(1).max(256);
const onFail = z.enum(['warn', 'raise']).optional();

const REGISTRY = new Map<string, Entry<z.ZodType>>([
  ['read', entry({
    params: z.strictObject({
      source: z.string().min(1),
      bands: bandList.optional(),
      resampling: z.enum(['nearest', 'bilinear', 'cubic']).optional(),
      nodata: z.union([finite, z.literal('nan'), z.null()]).optional(),
    }),
    build(p, env) {
      const cog = env.sources.get(p.source);
      if (!cog) throw new Error(`source '${p.source}' is not declared under sources: (declared: ${[...env.sources.keys()].join(', ') || 'none'})`);
      return new Read({ ...p, nodata: p.nodata === 'nan' ? NaN : p.nodata }, cog);
    },
  })],
  ['select', entry({
    params: z.strictObject({ bands: bandList }),
    build: (p) => new Select(p),
  })],
  ['expression', entry({
    params: z.strictObject({ expr: z.string().min(1).max(2000) }),
    build: (p, _env, site) => new Expression(p, site.inputs),
  })],
  ['normalized_difference', entry({
    params: z.strictObject({ bands: z.tuple([z.number().int().min(1), z.number().int().min(1)]).optional() }),
    build: (p) => new NormalizedDifference(p),
  })],
  ['rescale', entry({
    params: z.strictObject({ from: z.union([pair, z.literal('auto')], { error: "expected [min, max] (finite numbers) or 'auto'" }), to: pair.optional() }),
    build: (p, _env, site) => {
      const up = site.upstream;
      return new Rescale(p, p.from === 'auto' && up instanceof Read ? () => up.percentiles() : undefined);
    },
  })],
  ['colormap', entry({
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
    params: z.strictObject({ rescale: z.tuple([pair, pair, pair]).optional(), gamma: finite.positive().max(10).optional() }),
    build: (p) => new Rgb(p),
  })],
  ['assert_range', entry({
    params: z.strictObject({ min: finite.optional(), max: finite.optional(), on_fail: onFail }),
    build: (p) => new AssertRange(p),
  })],
  ['assert_valid_fraction', entry({
    params: z.strictObject({ min: z.number().min(0).max(1), on_fail: onFail }),
    build: (p) => new AssertValidFraction(p),
  })],
  ['hillshade', entry({
    params: z.strictObject({
      azimuth: z.number().min(0).max(360).optional(),
      altitude: z.number().min(0).max(90).optional(),
      zFactor: finite.positive().max(1e6).optional(),
    }),
    build: (p) => new Hillshade(p),
  })],
  ['blend', entry({
    params: z.strictObject({ mode: z.enum(['multiply', 'overlay', 'normal']).optional(), opacity: z.number().min(0).max(1).optional() }),
    build: (p) => new Blend(p),
  })],
]);

export const OPERATOR_NAMES: readonly string[] = [...REGISTRY.keys()];

/** Builds one operator from a layer file's parameters; throws with every problem listed. */
export function buildOperator(op: string, params: unknown, env: BuildEnv, site: BuildSite): Operator {
  const e = REGISTRY.get(op);
  if (!e) {
    if (op === 'tap') throw new Error("'tap' takes a callable and exists only for programmatic use; it is refused in layer files");
    throw new Error(`unknown operator '${op}' (known: ${OPERATOR_NAMES.join(', ')})`);
  }
  const parsed = e.params.safeParse(params ?? {});
  if (!parsed.success) throw new Error(formatIssues(parsed.error));
  return e.build(parsed.data, env, site);
}

export function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => {
    const where = i.path.length ? `${i.path.join('.')}: ` : '';
    return `${where}${i.message}`;
  }).join('; ');
}
