/** The syntax tree the parser builds and the compiler lowers. */

export type BinOp = '+' | '-' | '*' | '/' | '^' | '<' | '<=' | '>' | '>=' | '==' | '!=' | 'min' | 'max';
export type UnOp = 'neg' | 'abs' | 'sqrt' | 'log' | 'exp';
export type FnName = 'min' | 'max' | 'abs' | 'sqrt' | 'log' | 'exp' | 'clamp' | 'where';

export type Ast =
  | { readonly t: 'num'; readonly value: number }
  | { readonly t: 'band'; readonly band: number }
  | { readonly t: 'neg'; readonly arg: Ast }
  | { readonly t: 'bin'; readonly op: BinOp; readonly left: Ast; readonly right: Ast }
  | { readonly t: 'call'; readonly fn: FnName; readonly args: readonly Ast[] };
