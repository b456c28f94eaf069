/**
 * The deployment files stay true to the code and to each other.
 *
 * - The Dockerfile is read: its stages, the runtime stage's file set, its settings, user,
 *   health check and entrypoint. No Docker daemon runs here (nor in CI), so the runtime stage's
 *   file set is built without Docker the way the Dockerfile builds it (the same paths, the dev
 *   dependencies pruned by npm), and a server started from it serves a real tile.
 * - compose.yaml passes the Compose specification's JSON schema and dclint's rules, and what it
 *   names exists: services, files, the settings, nginx.conf's upstream servers.
 * - Every manifest in deploy/kubernetes/ passes the Kubernetes OpenAPI schema of its kind
 *   (kubernetes-models), with fields the schema does not declare refused; the manifests agree
 *   with each other, with the image and with the README's Indexed Job. The ConfigMap's layer
 *   file loads, and the seed Job's command runs, in the runtime file set.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { BlockList } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DCLinter } from 'dclint';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { SETTINGS } from '../src/config.js';
import { decode, getJson, lonLatToTile, request, SHIPPED_DATA, startRangeServer, tilePath, type RangeServer } from './helpers/http.js';
import { startServerProcess, type ServerProcess } from './helpers/processes.js';
import { ROOT } from './helpers/root.js';

const SETTING_NAMES = new Set(SETTINGS.map((s) => s.env));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};
const IMAGE = `tilegraph:${pkg.version}`;

/** What the runtime stage copies from the build stage, relative to the app directory: the test builds the same tree. */
const RUNTIME_TREE = ['package.json', 'package-lock.json', 'node_modules', 'dist/src', 'dist/workers', 'native/build/Release/inflate.node'];

// ---------------------------------------------------------------------------------------
// The Dockerfile, read

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Stages and their instructions; comments dropped, continued lines joined (as Docker reads them). */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    if (!full) continue;
    const m = /^(\S+)\s+(.*)$/s.exec(full);
    assert.ok(m, `Dockerfile: cannot read '${full}'`);
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(m[2]!);
      assert.ok(from, `Dockerfile: FROM ${m[2]}`);
      stages.push({ image: from[1]!, name: from[2], instructions: [] });
    } else {
      assert.ok(stages.length, `Dockerfile: ${op} before any FROM`);
      stages.at(-1)!.instructions.push({ op, args: m[2]! });
    }
  }
  return stages;
}

const all = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const one = (stage: Stage, op: string) => {
  const found = all(stage, op);
  assert.equal(found.length, 1, `one ${op} in stage ${stage.name}`);
  return found[0]!;
};

/** JSON (exec) form: `["node", "x.js"]`. */
function execForm(args: string): string[] {
  assert.match(args, /^\[/, `exec form expected: ${args}`);
  const list = JSON.parse(args) as unknown;
  assert.ok(Array.isArray(list) && list.every((a) => typeof a === 'string'), `exec form expected: ${args}`);
  return list;
}

/** `ENV A=1 B=2` of a stage, as one map. */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of all(stage, 'ENV'))
    for (const pair of args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      assert.ok(eq > 0, `ENV in the KEY=value form: ${pair}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  return env;
}

interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

function copiesOf(stage: Stage): Copy[] {
  return all(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    const paths = words.filter((w) => !w.startsWith('--'));
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

/** Where each source of a COPY lands, as an absolute path in the stage. */
function landings(copy: Copy, workdir: string): [source: string, target: string][] {
  const dest = path.posix.resolve(workdir, copy.dest);
  const intoDir = copy.dest.endsWith('/') || copy.sources.length > 1;
  return copy.sources.map((s) => [s, intoDir ? path.posix.join(dest, path.posix.basename(s)) : dest]);
}

const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const buildStage = dockerfile[0]!;
const runtimeStage = dockerfile.at(-1)!;
const runtimeEnv = envOf(runtimeStage);
const runtimeWorkdir = one(runtimeStage, 'WORKDIR');
const healthcheck = (() => {
  const m = /^((?:--\S+\s+)*)CMD\s+(.*)$/s.exec(one(runtimeStage, 'HEALTHCHECK'));
  assert.ok(m, 'HEALTHCHECK [options] CMD [...]');
  return execForm(m[2]!);
})();

/** The runtime stage's file set, relative to its app directory, as copied from the build stage. */
function runtimeTreeOfDockerfile(): string[] {
  const buildWorkdir = one(buildStage, 'WORKDIR');
  const tree: string[] = [];
  for (const copy of copiesOf(runtimeStage).filter((c) => c.from !== undefined)) {
    assert.equal(copy.from, buildStage.name, 'the runtime stage copies from the build stage only');
    for (const [source, target] of landings(copy, runtimeWorkdir)) {
      const rel = path.posix.relative(buildWorkdir, source);
      assert.ok(!rel.startsWith('..'), `${source} is inside the build's ${buildWorkdir}`);
      assert.equal(path.posix.relative(runtimeWorkdir, target), rel, `${source} keeps its place in the tree`);
      tree.push(rel);
    }
  }
  return tree;
}

/** `COPY layers /layers` from the build context into the runtime stage. */
function layersDirOfImage(): string {
  const fromContext = copiesOf(runtimeStage).filter((c) => c.from === undefined);
  assert.deepEqual(
    fromContext.map((c) => c.sources),
    [['layers']],
    'the runtime stage takes only layers/ from the context',
  );
  return path.posix.resolve(runtimeWorkdir, fromContext[0]!.dest);
}

const PORT = Number(runtimeEnv.PORT);
const LAYERS_DIR = runtimeEnv.LAYERS_DIR!;

describe('Dockerfile', () => {
  test('a build stage that installs, compiles and prunes, then a runtime stage on the same Node image', () => {
    assert.equal(dockerfile.length, 2);
    assert.equal(buildStage.name, 'build');
    assert.equal(runtimeStage.name, 'runtime');
    // The native modules built in the first stage run in the second: same image.
    assert.equal(runtimeStage.image, buildStage.image);
    const major = /^node:(\d+)-/.exec(buildStage.image)?.[1];
    assert.equal(major, /^>=(\d+)/.exec(pkg.engines.node)?.[1], 'the image has the Node version package.json asks for');
    const runs = all(buildStage, 'RUN');
    const at = (cmd: string) => runs.findIndex((r) => r.startsWith(cmd));
    assert.ok(at('npm ci') >= 0 && at('npm run build') > at('npm ci') && at('npm prune --omit=dev') > at('npm run build'), runs.join('\n'));
    // The build compiles the WebAssembly kernels, the inflate addon and the TypeScript, into what the runtime stage copies.
    assert.deepEqual(
      pkg.scripts.build.split(' && ').map((step) => step.split(' ')[0]),
      ['asc', 'node-gyp', 'tsc'],
    );
    assert.equal(all(runtimeStage, 'RUN').length, 0, 'nothing is installed or built in the runtime stage');
  });

  test('the runtime stage holds exactly the tree this test builds, and the layers at LAYERS_DIR', () => {
    assert.deepEqual(runtimeTreeOfDockerfile().sort(), [...RUNTIME_TREE].sort());
    assert.equal(layersDirOfImage(), LAYERS_DIR);
  });

  test('settings, port, user, health check and entrypoint', () => {
    for (const name of Object.keys(runtimeEnv)) assert.ok(name === 'NODE_ENV' || SETTING_NAMES.has(name), `ENV ${name} is a setting of src/config.ts`);
    assert.equal(runtimeEnv.NODE_ENV, 'production');
    assert.equal(runtimeEnv.HOST, '0.0.0.0', 'reachable from outside the container');
    assert.ok(PORT > 0);
    assert.equal(one(runtimeStage, 'EXPOSE'), String(PORT));
    const user = one(runtimeStage, 'USER');
    assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user} is not root`);
    assert.equal(healthcheck[0], 'node');
    assert.ok(
      healthcheck.some((a) => a.includes('/healthz')),
      healthcheck.join(' '),
    );
    const entrypoint = execForm(one(runtimeStage, 'ENTRYPOINT'));
    assert.deepEqual(entrypoint, ['node', path.posix.join(runtimeWorkdir, 'dist/src/cli.js')]);
    assert.deepEqual(execForm(one(runtimeStage, 'CMD')), ['serve']);
    assert.equal(one(runtimeStage, 'STOPSIGNAL'), 'SIGTERM');
  });

  test('.dockerignore lets in what the Dockerfile copies from the context, and nothing made or private', () => {
    const patterns = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(patterns[0], '*', 'an allowlist: everything left out first');
    assert.ok(
      patterns.slice(1).every((p) => p.startsWith('!')),
      patterns.join(' '),
    );
    const allowed = new Set(patterns.slice(1).map((p) => p.slice(1).replace(/\/$/, '')));
    for (const stage of dockerfile)
      for (const copy of copiesOf(stage).filter((c) => c.from === undefined))
        for (const source of copy.sources) {
          assert.ok(allowed.has(source), `.dockerignore lets ${source} in`);
          assert.ok(existsSync(path.join(ROOT, source)), `${source} exists`);
        }
    for (const never of ['node_modules', 'dist', '.git', 'test', 'bench', 'bench/data']) assert.ok(!allowed.has(never), `${never} stays out`);
  });
});

// ---------------------------------------------------------------------------------------
// Kubernetes: every manifest against the OpenAPI schema of its kind

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // The manifests are plain YAML data, walked by path below.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any;
  data?: Record<string, string>;
};

const MODELS: Record<string, { prototype: { validate(): void } }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
};

/**
 * Validates a manifest with the Kubernetes OpenAPI schema of its kind (kubernetes-models):
 * throws naming the path of a wrong type, a missing required field or a value outside an
 * enum. Returns the fields that the schema does not declare: its compiled validator reads
 * every property it knows, so a key it never read is one the API server would refuse under
 * strict field validation (a misspelling such as `readinesProbe`).
 */
function validateManifest(doc: Manifest): string[] {
  const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  assert.ok(model, `no schema here for ${doc.apiVersion} ${doc.kind}`);
  const read = new Set<string>();
  const watch = (value: unknown, at: string): unknown =>
    value !== null && typeof value === 'object'
      ? new Proxy(value, {
          get(target, key, receiver) {
            const v: unknown = Reflect.get(target, key, receiver);
            if (typeof key !== 'string') return v;
            read.add(`${at}/${key}`);
            return watch(v, `${at}/${key}`);
          },
        })
      : value;
  model.prototype.validate.call(watch(doc, ''));
  const unknown: string[] = [];
  const walk = (value: unknown, at: string) => {
    if (value === null || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) {
      const p = `${at}/${k}`;
      if (read.has(p)) walk(v, p);
      else unknown.push(p);
    }
  };
  walk(doc, '');
  return unknown;
}

const K8S_DIR = path.join(ROOT, 'deploy/kubernetes');
const manifests: { file: string; doc: Manifest }[] = readdirSync(K8S_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(K8S_DIR, file), 'utf8')).map((d) => {
      assert.deepEqual(d.errors, [], file);
      return { file, doc: d.toJS() as Manifest };
    }),
  );
const find = (kind: string, name: string): Manifest => {
  const m = manifests.find((x) => x.doc.kind === kind && x.doc.metadata.name === name);
  assert.ok(m, `deploy/kubernetes has a ${kind} ${name}`);
  return m.doc;
};
const envMap = (container: { env?: { name: string; value?: string }[] }) => new Map((container.env ?? []).map((e) => [e.name, e.value]));
const clone = <T>(v: T): T => structuredClone(v);

const server = find('Deployment', 'tilegraph');
const serverContainer = server.spec.template.spec.containers[0];
const seedJob = find('Job', 'seed-worldcover');
const seedContainer = seedJob.spec.template.spec.containers[0];
const layersMap = find('ConfigMap', 'tilegraph-layers');

/** The README's Indexed Job example in the Seeding section. */
function readmeJob(): Manifest {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('completionMode: Indexed'));
  assert.ok(block, 'README shows an Indexed Job');
  return parse(block) as Manifest;
}

describe('Kubernetes manifests', () => {
  test('every manifest is valid for the Kubernetes API and has no field its schema lacks', () => {
    assert.deepEqual(
      [...new Set(manifests.map((m) => m.file))],
      ['deployment.yaml', 'hpa.yaml', 'layers.yaml', 'redis.yaml', 'seed-job.yaml', 'seed-worker.yaml', 'service.yaml'],
    );
    for (const { file, doc } of manifests) assert.deepEqual(validateManifest(doc), [], `${file}: ${doc.kind} ${doc.metadata.name}`);
  });

  test('the same validator refuses a misspelled field, a wrong type, a missing name and a value outside the enum', () => {
    const misspelled = clone(server);
    misspelled.spec.template.spec.containers[0].readinesProbe = misspelled.spec.template.spec.containers[0].readinessProbe;
    delete misspelled.spec.template.spec.containers[0].readinessProbe;
    assert.deepEqual(validateManifest(misspelled), ['/spec/template/spec/containers/0/readinesProbe']);
    const wrongType = clone(server);
    wrongType.spec.template.spec.containers[0].ports[0].containerPort = '8080';
    assert.throws(() => validateManifest(wrongType), /containers\/0\/ports\/0\/containerPort must be integer/);
    const unnamed = clone(server);
    delete unnamed.spec.template.spec.containers[0].name;
    assert.throws(() => validateManifest(unnamed), /containers\/0 must have required property '?name'?/);
    const badMode = clone(seedJob);
    badMode.spec.completionMode = 'Indexd';
    assert.throws(() => validateManifest(badMode), /completionMode must be equal to one of the allowed values/);
    assert.throws(() => validateManifest({ ...clone(server), kind: 'Deploymnet' }), /no schema here for apps\/v1 Deploymnet/);
  });

  test('the Deployment: probes, port, settings, resources, a non-root user, and the layers at LAYERS_DIR', () => {
    const pod = server.spec.template.spec;
    assert.equal(server.spec.replicas, undefined, 'the HPA sets the count');
    assert.deepEqual(server.spec.selector.matchLabels, server.spec.template.metadata.labels);
    const http = serverContainer.ports.find((p: { name: string }) => p.name === 'http');
    assert.equal(http.containerPort, PORT);
    const env = envMap(serverContainer);
    assert.equal(env.get('PORT') ?? String(PORT), String(PORT));
    for (const name of env.keys()) assert.ok(SETTING_NAMES.has(name), `env ${name} is a setting`);
    assert.deepEqual(
      [serverContainer.readinessProbe.httpGet, serverContainer.livenessProbe.httpGet],
      [
        { path: '/readyz', port: 'http' },
        { path: '/healthz', port: 'http' },
      ],
    );
    for (const kind of ['requests', 'limits']) assert.ok(serverContainer.resources[kind].cpu && serverContainer.resources[kind].memory, kind);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    assert.ok(pod.terminationGracePeriodSeconds >= 30, 'room to drain a render of RENDER_TIMEOUT_MS (15 s)');
    assert.deepEqual(serverContainer.args, execForm(one(runtimeStage, 'CMD')));
    const mount = serverContainer.volumeMounts.find((m: { mountPath: string }) => m.mountPath === LAYERS_DIR);
    assert.ok(mount?.readOnly, `layers mounted read-only at the image's LAYERS_DIR ${LAYERS_DIR}`);
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(volume.configMap.name, layersMap.metadata.name);
  });

  test('Service, HPA and Redis point at what exists', () => {
    const svc = find('Service', 'tilegraph');
    assert.deepEqual(svc.spec.selector, server.spec.template.metadata.labels);
    assert.equal(svc.spec.ports[0].targetPort, 'http');
    const hpa = find('HorizontalPodAutoscaler', 'tilegraph');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'tilegraph' });
    assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
    // REDIS_URL names the Redis Service, on its port.
    const redisUrl = new URL(envMap(serverContainer).get('REDIS_URL')!);
    const redisSvc = find('Service', redisUrl.hostname);
    assert.equal(String(redisSvc.spec.ports[0].port), redisUrl.port);
    assert.deepEqual(redisSvc.spec.selector, find('Deployment', 'redis').spec.template.metadata.labels);
    assert.equal(envMap(seedContainer).get('REDIS_URL'), redisUrl.href.replace(/\/$/, ''));
  });

  test('the seed Job: Indexed, one shard per completion, the image and layers of the servers', () => {
    assert.equal(seedJob.spec.completionMode, 'Indexed');
    const args: string[] = seedContainer.args;
    assert.equal(args[0], 'seed');
    assert.ok(`${args[1]}.yaml` in layersMap.data!, `the layer ${args[1]} is in the ConfigMap`);
    const shard = args[args.indexOf('--shard') + 1];
    assert.equal(shard, `$(JOB_COMPLETION_INDEX)/${seedJob.spec.completions}`);
    assert.ok(seedJob.spec.parallelism <= seedJob.spec.completions);
    for (const name of envMap(seedContainer).keys()) assert.ok(SETTING_NAMES.has(name), `env ${name} is a setting`);
    assert.equal(envMap(seedContainer).get('ALLOWED_HOSTS'), envMap(serverContainer).get('ALLOWED_HOSTS'));
    const volumes = seedJob.spec.template.spec.volumes as { name: string; configMap?: { name: string }; emptyDir?: object }[];
    const mounts = seedContainer.volumeMounts as { name: string; mountPath: string }[];
    const volumeAt = (dir: string) => volumes.find((v) => v.name === mounts.find((m) => m.mountPath === dir)?.name);
    assert.equal(volumeAt(LAYERS_DIR)?.configMap?.name, layersMap.metadata.name, "the servers' layers");
    // The run writes its manifest and progress in the working directory: a writable volume, the root filesystem being read-only.
    assert.equal(seedContainer.securityContext.readOnlyRootFilesystem, true);
    assert.ok(volumeAt(seedContainer.workingDir)?.emptyDir, `workingDir ${seedContainer.workingDir} is writable`);
    for (const { doc } of manifests)
      for (const c of doc.spec?.template?.spec?.containers ?? [])
        if (c.image.startsWith('tilegraph:')) assert.equal(c.image, IMAGE, 'the image is tagged with the version');
  });

  test("the README's Indexed Job is valid and runs what seed-job.yaml runs", () => {
    const job = readmeJob();
    assert.deepEqual(validateManifest(job), []);
    const c = job.spec.template.spec.containers[0];
    assert.deepEqual(
      [c.image, c.args, job.spec.completions, job.spec.parallelism, job.spec.backoffLimitPerIndex, job.spec.template.spec.restartPolicy],
      [
        seedContainer.image,
        seedContainer.args,
        seedJob.spec.completions,
        seedJob.spec.parallelism,
        seedJob.spec.backoffLimitPerIndex,
        seedJob.spec.template.spec.restartPolicy,
      ],
    );
  });
});

// ---------------------------------------------------------------------------------------
// compose.yaml: the Compose specification's schema (dclint), then what it names

type ComposeService = {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  networks?: string[] | Record<string, { ipv4_address?: string }>;
};
const COMPOSE_FILE = path.join(ROOT, 'compose.yaml');
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  networks: Record<string, { ipam: { config: { subnet: string }[] } }>;
};

/** dclint on a Compose file: its schema check (the Compose specification's JSON schema) and its default rules. */
function lintCompose(file: string): string[] {
  const linter = new DCLinter({ rules: {}, quiet: false, debug: false, exclude: [] });
  // dclint's declaration files leave the result untyped under NodeNext resolution: its shape, as documented.
  const results = linter.lintFiles([file], false) as { messages: { type: string; rule: string; message: string }[] }[];
  return results.flatMap((r) => r.messages.map((m) => `${m.type} ${m.rule}: ${m.message}`));
}

const nginxConf = readFileSync(path.join(ROOT, 'nginx.conf'), 'utf8');
const tilegraphServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

/** `host:container[:mode]` volumes of a service, as [absolute host path, container path]. */
const bindMounts = (s: ComposeService) =>
  (s.volumes ?? []).filter((v) => v.startsWith('./')).map((v) => [path.join(ROOT, v.split(':')[0]!), v.split(':')[1]!] as const);

describe('compose.yaml', () => {
  test('passes the Compose specification schema and dclint, without a warning', () => {
    assert.deepEqual(lintCompose(COMPOSE_FILE), []);
  });

  test('the same check refuses a misspelled key and a condition that does not exist', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-compose-'));
    try {
      const text = readFileSync(COMPOSE_FILE, 'utf8');
      for (const [name, bad] of [
        ['misspelled.yaml', text.replace(/^ {4}healthcheck:/m, '    healtcheck:')],
        ['condition.yaml', text.replace('condition: service_healthy', 'condition: service_ready')],
      ] as const) {
        assert.notEqual(bad, text);
        await writeFile(path.join(dir, name), bad);
        const messages = lintCompose(path.join(dir, name));
        assert.ok(
          messages.some((m) => m.startsWith('error invalid-schema')),
          `${name}: ${messages.join('; ')}`,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('two tilegraph servers built from the Dockerfile, with Redis, the layers and real settings', () => {
    assert.deepEqual(tilegraphServices.map(([name]) => name).sort(), ['tilegraph-1', 'tilegraph-2']);
    const [nginxName, nginx] = Object.entries(compose.services).find(([, s]) => s.image?.startsWith('nginx:'))!;
    const nginxAddress = (nginx.networks as Record<string, { ipv4_address: string }>)[Object.keys(compose.networks)[0]!]!.ipv4_address;
    const subnet = compose.networks[Object.keys(compose.networks)[0]!]!.ipam.config[0]!.subnet.split('/');
    const net = new BlockList();
    net.addSubnet(subnet[0]!, Number(subnet[1]), 'ipv4');
    assert.ok(net.check(nginxAddress, 'ipv4'), `${nginxName}'s address is in the network`);
    for (const [name, s] of tilegraphServices) {
      assert.ok(existsSync(path.join(ROOT, s.build!, 'Dockerfile')), `${name} builds the Dockerfile`);
      assert.equal(s.image, IMAGE);
      for (const key of Object.keys(s.environment ?? {})) assert.ok(SETTING_NAMES.has(key), `${name}: ${key} is a setting`);
      const redis = new URL(String(s.environment!.REDIS_URL));
      assert.ok(compose.services[redis.hostname], `REDIS_URL names the service ${redis.hostname}`);
      assert.equal(redis.port, '6379');
      assert.equal(s.environment!.TRUSTED_PROXIES, nginxAddress, "X-Forwarded-* believed from nginx's address");
      const layers = bindMounts(s).find(([, target]) => target === LAYERS_DIR);
      assert.ok(layers && existsSync(path.join(layers[0], 'dem-relief.yaml')), `${name} mounts the layers at ${LAYERS_DIR}`);
    }
  });

  test('every service waited for as healthy has a health check (its own, or the Dockerfile one)', () => {
    for (const [name, s] of Object.entries(compose.services))
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        assert.ok(compose.services[dep], `${name} depends on ${dep}, which exists`);
        if (condition !== 'service_healthy') continue;
        const target = compose.services[dep]!;
        assert.ok(target.healthcheck || (target.build !== undefined && healthcheck.length), `${dep} has a health check`);
      }
  });

  test("nginx runs the repository's nginx.conf with only its upstream servers replaced by the two services", async () => {
    const nginx = Object.values(compose.services).find((s) => s.image?.startsWith('nginx:'))!;
    const mounts = bindMounts(nginx);
    assert.deepEqual(
      mounts.map(([host]) => path.relative(ROOT, host)),
      ['nginx.conf'],
    );
    const [shell, flag, script] = nginx.command!;
    assert.deepEqual([shell, flag], ['sh', '-c']);
    const steps = script!.split(' && ');
    assert.equal(steps.at(-1), "exec nginx -g 'daemon off;'", 'nginx in the foreground, as the process that gets the signals');
    // The logs nginx.conf names go to the container's output.
    for (const [directive, to] of [
      ['access_log', '/dev/stdout'],
      ['error_log', '/dev/stderr'],
    ])
      assert.ok(steps.includes(`ln -sf ${to} ${new RegExp(`^\\s*${directive} (\\S+)`, 'm').exec(nginxConf)![1]}`), directive);
    // The first step, run here with the container's paths mapped to this machine's.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-compose-'));
    try {
      let sed = steps[0]!;
      for (const [host, container] of mounts) sed = sed.replaceAll(container, host);
      const out = path.join(dir, 'nginx.conf');
      sed = sed.replace(/> \S+$/, `> ${out}`);
      const r = spawnSync('sh', ['-c', sed], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const before = nginxConf.split('\n');
      const afterLines = (await readFile(out, 'utf8')).split('\n');
      assert.equal(afterLines.length, before.length);
      const changed = before.flatMap((l, i) => (l === afterLines[i] ? [] : [[l.trim(), afterLines[i]!.trim()]]));
      assert.deepEqual(changed, [
        ['server 127.0.0.1:8080 max_fails=3 fail_timeout=10s;', `server tilegraph-1:${PORT} max_fails=3 fail_timeout=10s;`],
        ['server 127.0.0.1:8081 max_fails=3 fail_timeout=10s;', `server tilegraph-2:${PORT} max_fails=3 fail_timeout=10s;`],
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Published on the port nginx.conf listens on; its health check asks a location it has.
    const listen = /^\s*listen (\d+);$/m.exec(nginxConf)![1];
    assert.equal(nginx.ports![0]!.split(':').at(-1), listen);
    const probe = nginx.healthcheck!.test.at(-1)!;
    assert.ok(nginxConf.includes(`location = ${new URL(probe).pathname} {`), probe);
  });
});

// ---------------------------------------------------------------------------------------
// The runtime file set, built without Docker, serves

/** A command of the runtime tree, as a child process (never blocking this one, which serves the test's range server). */
function runTree(cwd: string, args: readonly string[], env: Record<string, string>): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (status) => resolve({ status, out }));
  });
}

describe('the runtime stage, built without Docker', { timeout: 120_000 }, () => {
  let tmp: string;
  let tree: string;
  let served: ServerProcess | undefined;
  let range: RangeServer | undefined;

  before(async () => {
    // A space in the path: the WebAssembly kernels and the inflate addon are found from file URLs,
    // which spell it %20 (the addon once failed to load from such a directory).
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tilegraph image-'));
    tree = path.join(tmp, 'app');
    // As the Dockerfile: the build's output and its node_modules (pruned below, as the build
    // stage prunes), and the shipped layers in the place of /layers.
    // cp -R keeps node_modules/.bin's links as links, and is several times faster than fs.cp.
    const copy = (from: string, to: string) => {
      mkdirSync(path.dirname(to), { recursive: true });
      const r = spawnSync('cp', ['-R', from, to], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    for (const rel of RUNTIME_TREE) copy(path.join(ROOT, rel), path.join(tree, rel));
    copy(path.join(ROOT, 'layers'), path.join(tmp, 'layers'));
    const prune = spawnSync('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: tree, encoding: 'utf8' });
    assert.equal(prune.status, 0, prune.stderr);
  });
  after(async () => {
    await served?.stop();
    await range?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('npm prune left the production dependencies and removed every dev-only package', () => {
    const lock = JSON.parse(readFileSync(path.join(tree, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const installed = (dir: string, p: string) => existsSync(path.join(dir, p, 'package.json'));
    const devOnly = Object.entries(lock.packages).filter(([p, v]) => p && v.dev);
    assert.ok(devOnly.length > 50);
    for (const [p] of devOnly) assert.ok(!installed(tree, p), `${p} is gone`);
    for (const [p, v] of Object.entries(lock.packages)) if (p && !v.dev && installed(ROOT, p)) assert.ok(installed(tree, p), `${p} is kept`);
    // The tools by name. (geotiff, a dev dependency, stays: proj4 declares it as an optional peer.)
    for (const name of ['typescript', 'eslint', 'prettier', 'playwright-core', 'leaflet', '@types/node', 'dclint', 'kubernetes-models'])
      assert.ok(name in pkg.devDependencies && !installed(tree, `node_modules/${name}`), name);
  });

  test('the server starts from it, lists the shipped layers and serves a tile, the preview page and its assets', async () => {
    const env = { ...runtimeEnv, HOST: '127.0.0.1' };
    served = await startServerProcess(path.join(tmp, 'layers'), env, { cwd: tree, cli: path.posix.relative(runtimeWorkdir, entrypointScript()) });
    const { json } = await getJson<{ layers: { name: string; bounds: number[]; minzoom: number }[]; refused: unknown[] }>(served.url, '/layers');
    assert.deepEqual(json.refused, []);
    assert.equal(json.layers.length, readdirSync(path.join(ROOT, 'layers')).filter((f) => f.endsWith('.yaml')).length);
    const dem = json.layers.find((l) => l.name === 'dem-relief')!;
    const [w, s, e, n] = dem.bounds;
    const tile = await request(served.url, tilePath('dem-relief', lonLatToTile((w! + e!) / 2, (s! + n!) / 2, dem.minzoom + 4)));
    assert.equal(tile.status, 200);
    assert.equal(tile.headers['content-type'], 'image/png');
    const px = await decode(tile.body);
    assert.deepEqual([px.format, px.width, px.height], ['png', 256, 256]);
    const map = await request(served.url, '/map/dem-relief');
    assert.equal(map.status, 200);
    // MapLibre's script and style, served from the pruned node_modules.
    const assets = [...new Set(map.body.toString().match(/\/assets\/maplibre-gl@[^'"\s]+\.(?:mjs|css)/g))];
    assert.equal(assets.length, 2, 'the page loads MapLibre from this server');
    for (const asset of assets) assert.equal((await request(served.url, asset)).status, 200, asset);
  });

  test("the image's HEALTHCHECK command passes against it, and fails once it has stopped", async () => {
    assert.ok(served, 'the server runs');
    const port = new URL(served.url).port;
    const check = () => runTree(tree, healthcheck.slice(1), { PORT: port });
    assert.equal((await check()).status, 0);
    await served.stop();
    assert.equal(served.child.exitCode, 0, 'SIGTERM drains and exits 0');
    assert.equal((await check()).status, 1);
  });

  test("the ConfigMap's layer files load from it, and the seed Job's command runs (its COG from a local copy)", async () => {
    range = await startRangeServer(SHIPPED_DATA);
    const dir = path.join(tmp, 'configmap');
    await mkdir(dir);
    const allowed = envMap(serverContainer).get('ALLOWED_HOSTS')!.split(',');
    for (const [name, text] of Object.entries(layersMap.data!)) {
      assert.match(name, /^[a-z0-9][a-z0-9_-]{0,63}\.yaml$/);
      let local = text;
      for (const url of Object.values((parse(text) as { sources: Record<string, string> }).sources).filter((u) => /^https?:/.test(u))) {
        assert.ok(allowed.includes(new URL(url).host), `ALLOWED_HOSTS names ${new URL(url).host}`);
        const file = path.posix.basename(new URL(url).pathname);
        assert.ok(existsSync(path.join(SHIPPED_DATA, file)), `a copy of ${file} is shipped`);
        local = local.replaceAll(url, `${range.url}/${file}`);
      }
      await writeFile(path.join(dir, name), local);
    }
    const env = { ALLOWED_HOSTS: range.host, WORKERS: '1', LAYERS_DIR: dir };
    const cli = path.posix.relative(runtimeWorkdir, entrypointScript());
    const layers = await runTree(tree, [cli, 'layers'], env);
    assert.equal(layers.status, 0, layers.out);
    assert.match(layers.out, new RegExp(`^${Object.keys(layersMap.data!).length} valid, 0 refused$`, 'm'));
    const args = (seedContainer.args as string[]).map((a) => a.replace('$(JOB_COMPLETION_INDEX)', '0'));
    const seed = await runTree(tree, [cli, ...args, '--dry-run'], env);
    assert.equal(seed.status, 0, seed.out);
    assert.match(seed.out, /^total [1-9]\d* tiles$/m);
  });
});

/** The entrypoint's script, as an absolute path in the image. */
function entrypointScript(): string {
  return execForm(one(runtimeStage, 'ENTRYPOINT'))[1]!;
}
