/**
 * sharp (libvips) loads on first use: a seeding run into a directory, or a render thread that
 * writes its own indexed PNGs, never asks for it and does not pay its ~50-90 ms of start-up.
 */
import type sharpModule from 'sharp';

export type Sharp = typeof sharpModule;

let loading: Promise<Sharp> | undefined;

export function loadSharp(): Promise<Sharp> {
  return (loading ??= import('sharp').then((m) => m.default));
}
