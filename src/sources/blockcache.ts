import { BroadcastChannel } from 'node:worker_threads';
import { LRUCache } from 'lru-cache';
import { countExternalMemory } from '../kernels.js';
import type { Samples } from './types.js';

/** Block requests by how they were answered, counted since the last `takeCounts()`. */
export interface BlockCounts {
  /** From this thread's cache (including blocks other threads decoded and offered). */
  cached: number;
  /** Waited for another thread that was decoding the block. */
  waited: number;
  /** Read and decoded here. */
  decoded: number;
}

/**
 * Decoded blocks, shared by every source in this thread and bounded in bytes. It holds
 * promises so that two tiles wanting the same block decode it once; a failed read is
 * dropped so the next request tries again.
 *
 * With `share()` (the render threads call it), the threads of the process also share their
 * decodes: a thread about to decode a block says so on a BroadcastChannel, decodes it into
 * a SharedArrayBuffer, and when done posts it (shared, never copied). The other threads keep
 * them in their own LRU as if they had decoded them, and one that needs a block another is
 * decoding waits for it instead of decoding it again. Without this, neighbouring tiles
 * rendered by different threads decode the same blocks twice.
 */
export class BlockCache {
  private lru!: LRUCache<string, Promise<Samples>>;
  private readonly sizes = new Map<string, number>();
  private exchange?: BlockExchange;
  private counts: BlockCounts = { cached: 0, waited: 0, decoded: 0 };

  constructor(private maxBytes: number) {
    this.resize(maxBytes);
  }

  /** Sets the bound and starts empty: a render thread does this from its settings, before its first tile. */
  resize(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.sizes.clear();
    this.lru = new LRUCache<string, Promise<Samples>>({
      maxSize: Math.max(1, maxBytes),
      // A pending promise's size is unknown: count a nominal 64 KiB until it settles.
      sizeCalculation: (_v, key) => this.sizes.get(key) ?? 65536,
      dispose: (v, key, reason) => {
        this.sizes.delete(key);
        // Pushed out by other blocks (not replaced by its own settled entry, or failed).
        if (reason === 'evict')
          v.then(
            (samples) => {
              if (samples.buffer instanceof SharedArrayBuffer) dropped(samples.buffer);
            },
            () => {},
          );
      },
    });
  }

  /** True once `share()` was called: blocks are then best decoded into shared memory. */
  get sharing(): boolean {
    return this.exchange !== undefined;
  }

  /** Joins the other threads of this process that called `share()`. */
  share(): void {
    this.exchange ??= new BlockExchange((key, samples) => {
      // Another thread decoded it: keep it unless this thread has (or is getting) its own.
      if (!this.lru.has(key) && samples.byteLength <= this.maxBytes) this.settled(key, Promise.resolve(samples), samples);
    });
  }

  /**
   * Lets the blocks other threads have announced arrive first: they sit in this thread's
   * message queue until its event loop turns, and a tile that starts before that would
   * decode them again.
   */
  catchUp(): Promise<void> | undefined {
    return this.exchange ? new Promise((resolve) => setImmediate(resolve)) : undefined;
  }

  get(key: string, load: () => Promise<Samples>): Promise<Samples> {
    const hit = this.lru.get(key);
    if (hit) {
      this.counts.cached++;
      return hit;
    }
    const counted = () => {
      this.counts.decoded++;
      return load();
    };
    const ex = this.exchange;
    const p = ex
      ? ex.fetch(key, counted, () => {
          this.counts.waited++;
        })
      : counted();
    this.lru.set(key, p);
    p.then(
      (samples) => {
        if (this.lru.peek(key) === p) this.settled(key, p, samples);
      },
      () => {
        if (this.lru.peek(key) === p) this.lru.delete(key);
      },
    );
    return p;
  }

  private settled(key: string, p: Promise<Samples>, samples: Samples): void {
    // The LRU keeps an entry's size when the same value is set again: the pending entry (counted
    // at the nominal size) goes first, so that the block is counted at its real one.
    this.lru.delete(key);
    this.sizes.set(key, Math.max(1, samples.byteLength));
    this.lru.set(key, p);
  }

  get bytes(): number {
    return this.lru.calculatedSize ?? 0;
  }

  /** The counts since the last call, and starts counting afresh. */
  takeCounts(): BlockCounts {
    const c = this.counts;
    this.counts = { cached: 0, waited: 0, decoded: 0 };
    return c;
  }
}

const ARRAYS = { Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array } as const;
type ArrayName = keyof typeof ARRAYS;

type Message =
  { kind: 'claim'; key: string } | { kind: 'ready'; key: string; buffer: SharedArrayBuffer; type: ArrayName; length: number } | { kind: 'failed'; key: string };

/** The BroadcastChannel the threads of one process share their decoded blocks on. */
export const BLOCK_CHANNEL = 'tilegraph:decoded-blocks';

/** How long a thread waits for a block another thread claimed before decoding it itself. */
export const CLAIM_WAIT_MS = 2000;

class BlockExchange {
  private readonly channel = new BroadcastChannel(BLOCK_CHANNEL);
  /** Blocks other threads are decoding, with the tiles here waiting for them. */
  private readonly claims = new Map<string, { since: number; waiters: ((s: Samples | null) => void)[]; timer?: NodeJS.Timeout }>();

  constructor(private readonly onReady: (key: string, samples: Samples) => void) {
    // Never keeps a thread alive by itself.
    (this.channel as unknown as { unref(): void }).unref();
    this.channel.onmessage = (event) => this.receive((event as MessageEvent<Message>).data);
  }

  /** The block: from the thread decoding it now, or decoded here and then offered to the others. */
  fetch(key: string, load: () => Promise<Samples>, onWait: () => void): Promise<Samples> {
    const claim = this.claims.get(key);
    // A claim this old was dropped by its thread (a render timed out, the thread was replaced).
    if (claim && performance.now() - claim.since > CLAIM_WAIT_MS) this.settle(key, null);
    else if (claim) {
      onWait();
      return new Promise<Samples | null>((resolve) => {
        claim.waiters.push(resolve);
        claim.timer ??= setTimeout(() => this.settle(key, null), CLAIM_WAIT_MS).unref();
      }).then((samples) => samples ?? this.decodeHere(key, load));
    }
    return this.decodeHere(key, load);
  }

  private async decodeHere(key: string, load: () => Promise<Samples>): Promise<Samples> {
    this.post({ kind: 'claim', key });
    let samples: Samples;
    try {
      samples = toShared(await load());
    } catch (err) {
      this.post({ kind: 'failed', key });
      throw err;
    }
    this.post({ kind: 'ready', key, buffer: samples.buffer as SharedArrayBuffer, type: arrayName(samples), length: samples.length });
    return samples;
  }

  private receive(msg: Message): void {
    if (msg.kind === 'claim') {
      if (!this.claims.has(msg.key)) this.claims.set(msg.key, { since: performance.now(), waiters: [] });
      return;
    }
    if (msg.kind === 'failed') {
      this.settle(msg.key, null);
      return;
    }
    if (!Object.hasOwn(ARRAYS, msg.type)) return;
    const samples = view(msg.type, msg.buffer, msg.length);
    this.onReady(msg.key, samples);
    this.settle(msg.key, samples);
  }

  private settle(key: string, samples: Samples | null): void {
    const claim = this.claims.get(key);
    if (!claim) return;
    this.claims.delete(key);
    if (claim.timer) clearTimeout(claim.timer);
    for (const w of claim.waiters) w(samples);
  }

  private post(msg: Message): void {
    this.channel.postMessage(msg);
  }
}

/**
 * Dropped shared blocks that a thread lets wait for a collection before it asks for one.
 *
 * V8 counts the memory of an ArrayBuffer towards its next collection, but not that of a
 * SharedArrayBuffer. A shared block that a cache kept long enough to outlive two young
 * collections is then freed only by a full one, and a render thread's heap barely grows, so
 * nothing else asks for one: the blocks its caches dropped piled up by the gigabyte. So a
 * thread keeps an account of the shared blocks its cache dropped and the collector has not
 * freed yet; past this many bytes it tells V8 of them as memory of its own (which, as for an
 * ArrayBuffer's, brings a full collection), and takes them back as each is freed.
 */
export const DROPPED_BLOCKS_BYTES = 64 * 2 ** 20;

interface Dropped {
  bytes: number;
  /** Told to V8 (and to be taken back when freed), or still waiting in the account. */
  told: boolean;
}

const waiting = new Set<Dropped>();
let waitingBytes = 0;

const freed = new FinalizationRegistry<Dropped>((d) => {
  if (d.told) countExternalMemory(-d.bytes);
  else {
    waiting.delete(d);
    waitingBytes -= d.bytes;
  }
});

/** A shared block a cache dropped: in the account until the collector frees it. */
function dropped(buffer: SharedArrayBuffer): void {
  const d: Dropped = { bytes: buffer.byteLength, told: false };
  freed.register(buffer, d);
  waiting.add(d);
  waitingBytes += d.bytes;
  if (waitingBytes < DROPPED_BLOCKS_BYTES || !countExternalMemory(waitingBytes)) return;
  for (const w of waiting) w.told = true;
  waiting.clear();
  waitingBytes = 0;
}

function arrayName(samples: Samples): ArrayName {
  for (const name of Object.keys(ARRAYS) as ArrayName[]) if (samples instanceof ARRAYS[name]) return name;
  throw new Error('decoded samples of an unknown array type');
}

/** The same samples in a SharedArrayBuffer (a copy unless they already are). */
function toShared(samples: Samples): Samples {
  if (samples.buffer instanceof SharedArrayBuffer) return samples;
  const shared = view(arrayName(samples), new SharedArrayBuffer(samples.byteLength), samples.length);
  shared.set(samples as never);
  return shared;
}

function view(name: ArrayName, buffer: SharedArrayBuffer, length: number): Samples {
  const Ctor = ARRAYS[name] as unknown as new (buffer: ArrayBufferLike, offset: number, length: number) => Samples;
  return new Ctor(buffer, 0, length);
}

/** This thread's block cache, at 256 MiB until `resize` (a render thread's BLOCK_CACHE_MB). */
export const blockCache = new BlockCache(256 * 1024 * 1024);
