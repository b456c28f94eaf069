/**
 * sharp (libvips) loads on first use: a seeding run into a directory, or a render thread that
 * writes its own indexed PNGs, never asks for it and does not pay its import (about 90 ms on the main thread, 40 ms in a
 * render thread).
 */
import type sharpModule from 'sharp';

export type Sharp = typeof sharpModule;

let loading: Promise<Sharp> | undefined;

export function loadSharp(): Promise<Sharp> {
  return (loading ??= import('sharp').then((m) => m.default));
}
