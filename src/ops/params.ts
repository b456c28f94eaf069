/** Schema pieces that several operators' parameters share. */
import { z } from 'zod';

export const finite = z.number().finite();
export const pair = z.tuple([finite, finite]);
export const colour = z.string().regex(/^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/, 'expected a colour #rrggbb or #rrggbbaa');
/** Bands one operator may take: a graph works on whole arrays per band, so this bounds its memory. */
export const MAX_BANDS = 256;
/** 1-based band numbers. */
export const bandList = z.array(z.number().int().min(1).max(65535)).min(1).max(MAX_BANDS);
export const onFail = z.enum(['warn', 'raise']).default('warn');
