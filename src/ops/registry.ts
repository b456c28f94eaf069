/**
 * The registry: the only door from a layer file to code. Each operator class declares its
 * name and the exact parameters it accepts (unknown keys are refused) on itself.
 */
import { Expression, NormalizedDifference, Select } from './builtin/bands.js';
import { Blend } from './builtin/blend.js';
import { AssertRange, AssertValidFraction } from './builtin/checks.js';
import { Colormap } from './builtin/colormap.js';
import { Hillshade } from './builtin/hillshade.js';
import { Mask } from './builtin/mask.js';
import { Model } from './builtin/model.js';
import { Read } from './builtin/read.js';
import { Rescale } from './builtin/rescale.js';
import { Rgb } from './builtin/rgb.js';
import type { BuildContext, Operator, OperatorClass } from './operator.js';

// `as const`: each class keeps its own type, so that the programmatic API (src/api/ops.ts)
// derives a typed builder per operator from this list.
export const OPERATORS = [
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
  Mask,
  Model,
] as const satisfies readonly OperatorClass[];

export const OPERATOR_NAMES: readonly string[] = OPERATORS.map((o) => o.op);

/**
 * Operators that take a function (`tap`, `lambda`): built from the objects only the
 * programmatic API makes (src/api/code.ts), and only when a program passes this in. Layer
 * files never do, so for them these names stay refused. Undefined: not such an object.
 */
export type CodeOperators = (op: string, params: unknown, ctx: BuildContext) => Operator | undefined;

/** Builds one operator from a layer file's parameters; throws with every problem listed. */
export function buildOperator(op: string, params: unknown, ctx: BuildContext, code?: CodeOperators): Operator {
  const cls: OperatorClass | undefined = OPERATORS.find((o) => o.op === op);
  if (!cls) {
    const built = code?.(op, params, ctx);
    if (built) return built;
    if (op === 'tap') throw new Error("'tap' takes a callable and exists only for programmatic use; it is refused in layer files");
    if (op === 'lambda') throw new Error("'lambda' takes a function and exists only for programmatic use; it is refused in layer files");
    throw new Error(`unknown operator '${op}' (known: ${OPERATOR_NAMES.join(', ')})`);
  }
  return new cls(params as never, ctx);
}
