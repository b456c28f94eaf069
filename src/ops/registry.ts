/**
 * The registry: the only door from a layer file to code. Each operator class declares its
 * name and the exact parameters it accepts (unknown keys are refused) on itself.
 */
import { Expression, NormalizedDifference, Select } from './builtin/bands.js';
import { Blend } from './builtin/blend.js';
import { AssertRange, AssertValidFraction } from './builtin/checks.js';
import { Colormap } from './builtin/colormap.js';
import { Hillshade } from './builtin/hillshade.js';
import { Read } from './builtin/read.js';
import { Rescale } from './builtin/rescale.js';
import { Rgb } from './builtin/rgb.js';
import type { BuildContext, Operator, OperatorClass } from './operator.js';

export const OPERATORS: readonly OperatorClass[] = [
  Read,
  Select,
  Expression,
  NormalizedDifference,
  Rescale,
  Colormap,
  Rgb,
  AssertRange,
  AssertValidFraction,
  Hillshade,
  Blend,
];

export const OPERATOR_NAMES: readonly string[] = OPERATORS.map((o) => o.op);

/** Builds one operator from a layer file's parameters; throws with every problem listed. */
export function buildOperator(op: string, params: unknown, ctx: BuildContext): Operator {
  const cls = OPERATORS.find((o) => o.op === op);
  if (!cls) {
    if (op === 'tap') throw new Error("'tap' takes a callable and exists only for programmatic use; it is refused in layer files");
    throw new Error(`unknown operator '${op}' (known: ${OPERATOR_NAMES.join(', ')})`);
  }
  return new cls(params as never, ctx);
}
