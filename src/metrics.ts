import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The `layer` label of every ad-hoc pipeline (POST /pipelines): each posted document is a layer
 * of its own, and as labels of their own they would add series without end. No layer name has
 * parentheses, so no layer meets it.
 */
export const ADHOC_LAYER_LABEL = '(ad-hoc)';

/** A layer's `layer` label: its name, or ADHOC_LAYER_LABEL for an ad-hoc pipeline (the layers with a render budget). */
export function layerLabel(layer: { name: string; budget?: unknown }): string {
  return layer.budget ? ADHOC_LAYER_LABEL : layer.name;
}

/** Prometheus metrics of one server process (GET /metrics). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'tilegraph_http_requests_total',
    help: 'HTTP requests by layer, route, status and cache tier',
    labelNames: ['layer', 'route', 'status', 'cache'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'tilegraph_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['layer', 'route', 'status', 'cache'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly renders = new Counter({
    name: 'tilegraph_renders_total',
    help: 'Tiles actually rendered (not served from a cache)',
    labelNames: ['layer'] as const,
    registers: [this.registry],
  });
  readonly renderStage = new Histogram({
    name: 'tilegraph_render_stage_seconds',
    help: 'Render duration by stage (read, ops, encode)',
    labelNames: ['layer', 'stage'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly renderErrors = new Counter({
    name: 'tilegraph_render_errors_total',
    help: 'Renders that failed',
    labelNames: ['layer'] as const,
    registers: [this.registry],
  });
  readonly blockReads = new Counter({
    name: 'tilegraph_block_reads_total',
    help: 'COG blocks the render threads needed, by how they got them: cached, waited (for another thread decoding it) or decoded',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly qualityWarnings = new Counter({
    name: 'tilegraph_quality_warnings_total',
    help: 'Quality checks that failed with on_fail: warn',
    labelNames: ['layer', 'check'] as const,
    registers: [this.registry],
  });
  readonly queue = new Gauge({ name: 'tilegraph_pool_queue_length', help: 'Tiles waiting for a render thread', registers: [this.registry] });
  readonly utilization = new Gauge({ name: 'tilegraph_pool_utilization', help: 'Render pool utilisation (0..1)', registers: [this.registry] });
  readonly l1Bytes = new Gauge({ name: 'tilegraph_cache_l1_bytes', help: 'Bytes held by the in-process tile cache', registers: [this.registry] });
  readonly blockCacheBytes = new Gauge({
    name: 'tilegraph_block_cache_bytes',
    help: "Bytes of decoded COG blocks each render thread's cache holds (BLOCK_CACHE_MB bounds each), as of its last tile; blocks the threads share count in each",
    labelNames: ['thread'] as const,
    registers: [this.registry],
  });
  readonly threadHeapBytes = new Gauge({
    name: 'tilegraph_render_thread_heap_bytes',
    help: "Each render thread's JavaScript heap in use, sampled at most once a second",
    labelNames: ['thread'] as const,
    registers: [this.registry],
  });
  readonly threadArrayBufferBytes = new Gauge({
    name: 'tilegraph_render_thread_array_buffer_bytes',
    help: 'Array buffers each render thread allocated and still holds (rasters, decoded blocks, shared ones included), sampled at most once a second',
    labelNames: ['thread'] as const,
    registers: [this.registry],
  });
  readonly threadCollections = new Counter({
    name: 'tilegraph_render_thread_gc_total',
    help: "Each render thread's garbage collections by kind: major (the whole heap, mark-compact) and minor (the young generation), counted with its memory samples",
    labelNames: ['thread', 'kind'] as const,
    registers: [this.registry],
  });
  readonly l2Seconds = new Histogram({
    name: 'tilegraph_l2_seconds',
    help: 'Redis (L2) command latency by operation: get, set, lock, unlock',
    labelNames: ['op'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });
  readonly l2Errors = new Counter({
    name: 'tilegraph_l2_errors_total',
    help: 'Redis (L2) commands that failed or timed out, by operation',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly l2Breaker = new Gauge({
    name: 'tilegraph_l2_breaker_open',
    help: '1 while the circuit breaker skips Redis (L2), 0 while it is used',
    registers: [this.registry],
  });
  readonly lockWaits = new Counter({
    name: 'tilegraph_lock_waits_total',
    help: 'Waits for a tile another process was rendering, by outcome: entry (it arrived), took_over (its holder gave up), gave_up, redis_down',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly layers = new Gauge({ name: 'tilegraph_layers', help: 'Layers loaded and refused', labelNames: ['state'] as const, registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tilegraph_' });
  }
}
