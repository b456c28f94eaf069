/**
 * Tokens of the expression language: numbers, names (bands and functions) and operators.
 * Numbers run into no letters (`2b1` is malformed, not 2 times b1), and the operators of
 * other languages that look plausible here (`**`, `=`, `!`) are refused with a hint.
 */
import { fail, quote } from './error.js';

export type OpText = '+' | '-' | '*' | '/' | '^' | '(' | ')' | ',' | '<' | '<=' | '>' | '>=' | '==' | '!=';

export type Token =
  | { readonly kind: 'num'; readonly value: number; readonly text: string; readonly pos: number }
  | { readonly kind: 'ident'; readonly text: string; readonly pos: number }
  | { readonly kind: 'op'; readonly text: OpText; readonly pos: number }
  | { readonly kind: 'eof'; readonly pos: number };

const NUMBER_RE = /(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;
const IDENT_RE = /[A-Za-z_][A-Za-z0-9_]*/y;
const WORD_TAIL_RE = /[A-Za-z0-9_.]*/y;
const WHITESPACE_RE = /\s/;

function describeChar(source: string, pos: number): string {
  const cp = source.codePointAt(pos)!;
  if (cp > 0x20 && cp < 0x7f) return `'${String.fromCharCode(cp)}'`;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function describeToken(tok: Token): string {
  switch (tok.kind) {
    case 'num':
      return `number ${quote(tok.text)}`;
    case 'ident':
      return `name ${quote(tok.text)}`;
    case 'op':
      return `'${tok.text}'`;
    case 'eof':
      return 'end of expression';
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

export class Lexer {
  private i = 0;
  constructor(private readonly src: string) {}

  next(): Token {
    const src = this.src;
    while (this.i < src.length && WHITESPACE_RE.test(src[this.i]!)) this.i++;
    const pos = this.i;
    if (pos >= src.length) return { kind: 'eof', pos };
    const c = src.charCodeAt(pos);

    if (isDigit(c) || (c === 46 /* . */ && isDigit(src.charCodeAt(pos + 1)))) {
      NUMBER_RE.lastIndex = pos;
      NUMBER_RE.exec(src);
      const end = NUMBER_RE.lastIndex;
      WORD_TAIL_RE.lastIndex = end;
      WORD_TAIL_RE.exec(src);
      if (WORD_TAIL_RE.lastIndex > end) fail(`malformed number ${quote(src.slice(pos, WORD_TAIL_RE.lastIndex))}`, pos);
      const text = src.slice(pos, end);
      const value = Number(text);
      if (!Number.isFinite(value)) fail(`number ${quote(text)} out of range`, pos);
      this.i = end;
      return { kind: 'num', value, text, pos };
    }

    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 /* _ */) {
      IDENT_RE.lastIndex = pos;
      IDENT_RE.exec(src);
      this.i = IDENT_RE.lastIndex;
      return { kind: 'ident', text: src.slice(pos, this.i), pos };
    }

    const two = src.slice(pos, pos + 2);
    switch (two) {
      case '<=':
      case '>=':
      case '==':
      case '!=':
        this.i = pos + 2;
        return { kind: 'op', text: two, pos };
      case '**':
        fail(`unexpected '**' (use '^' for powers)`, pos);
    }
    const one = src[pos]!;
    switch (one) {
      case '+':
      case '-':
      case '*':
      case '/':
      case '^':
      case '(':
      case ')':
      case ',':
      case '<':
      case '>':
        this.i = pos + 1;
        return { kind: 'op', text: one, pos };
      case '=':
        return fail(`unexpected character '=' (use '==' to compare)`, pos);
      case '!':
        return fail(`unexpected character '!' (use '!=' to compare)`, pos);
    }
    fail(`unexpected character ${describeChar(src, pos)}`, pos);
  }
}
