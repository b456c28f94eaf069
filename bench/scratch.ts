/**
 * Directories the steps write pyramids into, removed only when the bench ends.
 *
 * Removing thousands of tiles between two timed runs makes the second run's files dearer to
 * create on some file systems: ext4 without a journal will not reuse an inode within a minute
 * of its deletion (five while its inode table block is dirty), and walks past every such inode
 * in the group at each file it creates. On this kind of machine a seed of 999 tiles into /tmp
 * right after another's removal spent 0.5 s more in the kernel, and gdal2tiles' output, removed
 * just before the seed step, weighed on tilegraph's runs alone. Kept until the end, every timed
 * run writes as into a file system nothing was just deleted from.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

/** A new directory under the system's temporary directory, removed by removeScratch(). */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every directory scratchDir() made. */
export async function removeScratch(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
