/**
 * The commands' flags: node:util's parser, refusing a flag given twice. The parser keeps the
 * last value and says nothing, so `seed dem --zoom 10-12 --zoom 14` would seed zoom 14 alone
 * and `--shard 1/4 ... --shard 2/4` one shard while the operator thinks it was another.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Parsed<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;

/**
 * `parseArgs(config)`, throwing when an option is given more than once. `setting` maps an
 * option's name to what it sets, for options that are one setting under two names (serve's
 * `--port` and `--PORT`); by default each name is its own.
 */
export function parseFlags<T extends ParseArgsConfig>(config: T, setting: (name: string) => string = (name) => name): Parsed<T> {
  const parsed = parseArgs({ ...config, tokens: true });
  const seen = new Map<string, string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option' || config.options?.[token.name]?.multiple) continue;
    const key = setting(token.name);
    const given = token.value === undefined ? token.rawName : `${token.rawName} ${token.value}`;
    const before = seen.get(key);
    if (before !== undefined) throw new Error(`${token.rawName} is given twice (${before}, then ${given}): give it once`);
    seen.set(key, given);
  }
  return parsed as unknown as Parsed<T>;
}

/**
 * A number flag's value, from `min` to `max`, or `fallback` (a number, or undefined for "not given") when the flag is absent: a whole
 * number in decimal digits (with `fraction`, digits with a decimal fraction, such as a
 * percentage's 12.5). Not the other forms Number() reads: 0x10 and 1e1 are refused, and so is
 * a blank, which Number() reads as 0.
 */
export function numberFlag<F extends number | undefined>(
  flag: string,
  text: string | undefined,
  fallback: F,
  min: number,
  max: number,
  fraction = false,
): number | F {
  if (text === undefined) return fallback;
  const n = (fraction ? /^[0-9]+(\.[0-9]+)?$/ : /^[0-9]+$/).test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new Error(`--${flag} ${text}: expected a ${fraction ? 'number' : 'whole number'} from ${min} to ${max}`);
  return n;
}
