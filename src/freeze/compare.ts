/**
 * What differs between a frozen artifact and the layer as it is now, as lines an operator reads:
 * each names the input, the dependency or the tile, what it was and what it is.
 *
 * Inputs (the canonical config, every source's bytes) must be the frozen ones: a sample of tiles
 * cannot speak for the rest of the map once they differ. Software (Node, sharp, libvips, the
 * dependency lock) may differ as long as every sample tile is the same: that is the proof the
 * artifact asks for, and the report says what changed.
 */
import type { Dependencies, FileHash, SampleTile, SourceRecord } from './manifest.js';

export interface Finding {
  /** `input` and `tile` findings fail a verification; `software` findings are reported. */
  kind: 'input' | 'software' | 'tile';
  message: string;
  /** Lines under the message (a config diff). */
  detail?: string[];
}

/** A sample tile as rendered now: also the error that stopped it. */
export type RenderedTile = SampleTile & { error?: string };

/** Lines under one finding (config values, mosaic members). */
const MAX_LINES = 20;

export function compareConfig(was: { hash: string; config: unknown }, now: { hash: string; config: unknown }): Finding[] {
  if (was.hash === now.hash) return [];
  const lines: string[] = [];
  valueChanges(was.config, now.config, '', lines);
  return [{ kind: 'input', message: `config changed: sha256 was ${was.hash}, now ${now.hash}`, detail: capped(lines) }];
}

/** Every value of the canonical config that differs, by its path: `pipeline[1].colormap.stops[0][1]: was "#2b6b3a", now "#2b6b3b"`. */
function valueChanges(a: unknown, b: unknown, at: string, out: string[]): void {
  const container = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
  if (container(a) && container(b) && Array.isArray(a) === Array.isArray(b)) {
    const list = Array.isArray(a);
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(list ? (p, q) => Number(p) - Number(q) : undefined);
    for (const k of keys) valueChanges(a[k], b[k], list ? `${at}[${k}]` : at ? `${at}.${k}` : k, out);
    return;
  }
  const show = (v: unknown) => {
    const text = v === undefined ? '(none)' : JSON.stringify(v);
    return text.length > 100 ? `${text.slice(0, 99)}…` : text;
  };
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${at || '(the config)'}: was ${show(a)}, now ${show(b)}`);
}

/** Lines listed one by one at most MAX_LINES; the rest are counted. */
function capped(lines: string[]): string[] {
  return lines.length > MAX_LINES ? [...lines.slice(0, MAX_LINES), `... and ${lines.length - MAX_LINES} more`] : lines;
}

export function compareSources(was: readonly SourceRecord[], now: readonly SourceRecord[]): Finding[] {
  const out: Finding[] = [];
  const input = (message: string) => out.push({ kind: 'input', message });
  const current = new Map(now.map((s) => [s.name, s]));
  for (const w of was) {
    const n = current.get(w.name);
    if (!n) {
      input(`source '${w.name}' (${w.ref}) is no longer in the layer`);
      continue;
    }
    if (w.kind === 'mosaic' || n.kind === 'mosaic') {
      if (w.kind !== 'mosaic' || n.kind !== 'mosaic') input(`source '${w.name}' was ${kindOf(w)} (${w.ref}), now ${kindOf(n)} (${n.ref})`);
      else out.push(...compareMembers(w.name, w.ref, w.members, n.members));
      continue;
    }
    if (w.location !== n.location) {
      input(
        `source '${w.name}' reads ${n.ref} now, it read ${w.ref}${w.sha256 === n.sha256 ? ' (the same bytes)' : `: sha256 was ${w.sha256}, now ${n.sha256}`}`,
      );
      continue;
    }
    if (w.sha256 !== n.sha256) input(`source '${w.name}' (${w.ref}) changed: sha256 was ${w.sha256}, now ${n.sha256}${sizes(w, n)}`);
  }
  for (const n of now) if (!was.some((w) => w.name === n.name)) input(`source '${n.name}' (${n.ref}) is new`);
  return out;
}

function compareMembers(name: string, ref: string, was: readonly FileHash[], now: readonly FileHash[]): Finding[] {
  const lines: string[] = [];
  const current = new Map(now.map((m) => [m.location, m]));
  const frozen = new Map(was.map((m) => [m.location, m]));
  for (const w of was) {
    const n = current.get(w.location);
    if (!n) lines.push(`member ${w.location} is gone`);
    else if (n.sha256 !== w.sha256) lines.push(`member ${w.location} changed: sha256 was ${w.sha256}, now ${n.sha256}${sizes(w, n)}`);
  }
  for (const n of now) if (!frozen.has(n.location)) lines.push(`member ${n.location} is new`);
  // The first member wins where members overlap (method: first): their order is an input too.
  const order = (list: readonly FileHash[]) => list.map((m) => m.location).join('\n');
  if (!lines.length && order(was) !== order(now)) lines.push('its members are listed in another order');
  return lines.length
    ? [
        {
          kind: 'input',
          message: `source '${name}' (${ref}): ${lines.length} member change(s)`,
          detail: capped(lines),
        },
      ]
    : [];
}

function kindOf(s: SourceRecord): string {
  return s.kind === 'mosaic' ? 'a mosaic' : s.kind === 'url' ? 'a URL' : 'a file';
}

function sizes(w: FileHash, n: FileHash): string {
  return w.size === n.size ? ` (${n.size} bytes, as before)` : ` (${n.size} bytes, was ${w.size})`;
}

const SOFTWARE: [keyof Dependencies, string][] = [
  ['tilegraph', 'tilegraph'],
  ['node', 'Node'],
  ['zlib', "Node's zlib"],
  ['sharp', 'sharp'],
  ['libvips', 'libvips'],
  ['platform', 'platform'],
];

export function compareSoftware(was: Dependencies, now: Dependencies): Finding[] {
  const out: Finding[] = SOFTWARE.filter(([k]) => was[k] !== now[k]).map(([k, label]) => ({
    kind: 'software',
    message: `${label} was ${was[k]}, now ${now[k]}`,
  }));
  if (was.packageLock !== now.packageLock)
    out.push({
      kind: 'software',
      message:
        now.packageLock === null
          ? 'package-lock.json: there is none beside the installed package now'
          : `package-lock.json changed: sha256 was ${was.packageLock ?? '(none)'}, now ${now.packageLock}`,
    });
  return out;
}

/** The tiles whose answer differs: a PNG's bytes, empty or not, refused or failed. */
export function compareTiles(was: readonly SampleTile[], now: readonly RenderedTile[]): Finding[] {
  const out: Finding[] = [];
  was.forEach((w, i) => {
    const n = now[i]!;
    const same = n.error === undefined && (w.empty ? n.empty === true : w.refused !== undefined ? w.refused === n.refused : w.sha256 === n.sha256);
    if (!same) out.push({ kind: 'tile', message: `tile ${w.z}/${w.x}/${w.y}: was ${describe(w)}, now ${describe(n)}` });
  });
  return out;
}

function describe(t: RenderedTile): string {
  if (t.error !== undefined) return `an error (${t.error})`;
  if (t.empty) return 'empty';
  if (t.refused !== undefined) return `refused (${t.refused})`;
  return `sha256 ${t.sha256} (${t.bytes} bytes)`;
}
