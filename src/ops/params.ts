/** Schema pieces that several operators' parameters share. */
import { z } from 'zod';

export const finite = z.number().finite();
export const pair = z.tuple([finite, finite]);
export const colour = z.string().regex(/^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/, 'expected a colour #rrggbb or #rrggbbaa');
/** 1-based band numbers. */
export const bandList = z.array(z.number().int().min(1).max(65535)).min(1).max(256);
export const onFail = z.enum(['warn', 'raise']).default('warn');
