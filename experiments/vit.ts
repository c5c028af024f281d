/**
 * A small vision Transformer on Fashion-MNIST — the scaled-down stand-in of P1's DeiT results
 * (DeiT-small/base pre-trained 2:4 with dense fine-tuning, near dense accuracy) and of P2 Table 8
 * (the factorial ablation of S-STE's ingredients on DeiT).
 *
 * What it does: trains `core/vit.ts` (square patches, a class token, pre-norm blocks whose FFN
 * linears are 2:4) once per method of SPEC 2.8 and STEP (SPEC 2.10), and once per cell of the S-STE
 * factorial — soft thresholding (S-STE) or hard (STE) × β rescaling (MSE, frozen) or none × MVUE on
 * `∇Zᵀ` or not × FP8 operands or not — each with `--seeds` seeds (a seed sets the initialisation,
 * the data order and the MVUE draws; two variants with the same seed share all three). Test
 * accuracy is measured on the 10,000 test images, with the model as it trained: 2:4 weights, except
 * T-SR-STE+DF, whose last phase is dense. Every table gives the mean over seeds with its 95%
 * Student-t interval; differences are paired by seed. With hard thresholding the MSE β is exactly
 * 1 (`⟨W, S_h(W)⟩ = ‖S_h(W)‖²`), so those four cells equal their β-off twins and are not retrained.
 *
 * What to expect: P1 — T-SR-STE+DF within about a point of dense; P2 Table 8 — soft thresholding
 * and β rescaling each add accuracy, MVUE and FP8 cost little. At this size (a few hundred steps)
 * differences of a few tenths of a point are inside the intervals.
 *
 * Usage:
 *   apt-get install -y dataset-fashion-mnist      # once: the IDX files (see the README)
 *   deno task vit                                  # the `cpu` preset
 *   deno task vit --preset=gpu --backend=webgpu
 *   deno task vit --methods=dense,s-ste --factorial=false --seeds=2 --steps=100
 *
 * Outputs (in `--out`, default `results/vit`): `summary.json`, `table.md`, `loss.svg` (training
 * loss per method, mean over seeds) and `factorial.svg`.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { Trainer } from "../core/trainer.ts";
import { type ImageBatch, ViT, type ViTConfig } from "../core/vit.ts";
import {
  resolveSparseOptions,
  SPARSE_METHODS,
  type SparseMethod,
  sparseMethodTraits,
  type SparseOptions,
} from "../core/sparse.ts";
import {
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_SOURCE,
  type FashionMnist,
  type ImageSplit,
  loadFashionMnist,
  prepareFashionMnist,
} from "../core/data/mod.ts";
import { uniforms } from "../reference/rng.ts";
import { STREAMS_PER_BLOCK } from "../core/streams.ts";
import { assertInt, assertNumber, parseConfig, parseList, runCli } from "./_config.ts";
import { BACKEND_CHOICES, formatSeconds, selectBackend } from "./lm.ts";
import { lineChart } from "./_plot.ts";
import { writeSummary } from "./_summary.ts";
import {
  formatInterval,
  type MeanInterval,
  meanInterval,
  pairedDifference,
  verdict,
} from "./_stats.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  preset: "cpu", // cpu | tiny | gpu
  methods: SPARSE_METHODS.join(","), // SPEC 2.8's methods and STEP
  factorial: true, // P2 Table 8's S-STE factorial
  seeds: 3, // seeds seed, seed+1, …
  seed: 1,
  backend: "auto", // auto | reference | webgpu (| cpu once available)
  data: DEFAULT_FASHION_MNIST_DIR, // the binary cache
  source: FASHION_MNIST_SOURCE, // the IDX files (Debian package dataset-fashion-mnist)
  out: "results/vit",
  steps: 160, // optimizer steps of every run
  batchSize: 128, // images per step (a multiple of 4: MVUE groups run along the B·T tokens)
  testImages: 10000, // test images scored (the first N of the 10,000)
  evalBatch: 500,
  lr: 5e-3, // peak learning rate
  warmup: 13,
  minLr: 5e-4,
  weightDecay: 0.05,
  patchSize: 14, // 4 patches of 14×14 and the class token (T = 5)
  nLayer: 2,
  nHead: 4,
  nEmbd: 64,
  maskRefresh: 10, // T-SR-STE* transposable-mask refresh (P1: 40 at GPT-2 scale)
  alpha: 6e-5, // T-SR-STE* masked decay
  preconditionFraction: 0.1, // STEP's dense precondition phase
};
type Config = typeof defaults;

const presets: Record<string, Partial<Config>> = {
  // Sized for ≤ 15 minutes on 2 CPU cores with the CPU backend (README: how it was measured):
  // 120 steps took ~9 s per run on the idle machine with causal attention; full attention costs
  // 1.1-1.2× per step at T = 5 (interleaved, shared machine) and 160 steps about 1.27× per run
  // (steps + the fixed 10,000-image test), ~11 min predicted for the 51 runs.
  // Patches of 14 rather than 7: on a shared 2-core machine, 120 steps of 128 images with 5
  // tokens each reached 78% in a probe where 16 patches of 7×7 (17 tokens) reached 63% at the same
  // time per run.
  cpu: {},
  // The test suite's smoke run: a few generated images, one seed, seconds.
  tiny: {
    methods: "dense,step,t-sr-ste+df",
    factorial: false,
    seeds: 1,
    steps: 6,
    batchSize: 8,
    testImages: 16,
    evalBatch: 8,
    nLayer: 1,
    nHead: 2,
    nEmbd: 16,
    warmup: 2,
    maskRefresh: 2,
    preconditionFraction: 0.34,
  },
  // The H100: a DeiT-tiny-like width, several epochs.
  gpu: {
    steps: 6000,
    batchSize: 256,
    patchSize: 7,
    nLayer: 6,
    nHead: 6,
    nEmbd: 192,
    warmup: 300,
    lr: 1e-3,
    minLr: 1e-4,
    maskRefresh: 40,
  },
};

/** One trained configuration: a label and its sparse options. */
interface Variant {
  label: string;
  sparse: SparseOptions;
}

/** A factorial cell: its four switches and the variant that trains it. */
interface Cell {
  soft: boolean;
  beta: boolean;
  mvue: boolean;
  fp8: boolean;
  variant: Variant;
  /** The cell it equals by construction (hard thresholding with β: β ≡ 1). */
  sameAs?: string;
}

function checkConfig(cfg: Config): SparseMethod[] {
  const methods = parseList("methods", cfg.methods, (m) => {
    if (!(SPARSE_METHODS as readonly string[]).includes(m)) {
      throw new TypeError(
        `Bad value for --methods: unknown method ${JSON.stringify(m)} (expected ${SPARSE_METHODS})`,
      );
    }
    return m as SparseMethod;
  });
  assertInt("seeds", cfg.seeds, 1, 30);
  assertInt("seed", cfg.seed, 0);
  assertInt("steps", cfg.steps, 2);
  assertInt("batchSize", cfg.batchSize, 4);
  if (cfg.batchSize % 4 !== 0) {
    throw new RangeError(
      `Bad value for --batchSize: expected a multiple of 4, got ${cfg.batchSize}`,
    );
  }
  assertInt("testImages", cfg.testImages, 1, 10000);
  assertInt("evalBatch", cfg.evalBatch, 1);
  assertNumber("lr", cfg.lr, 0, { exclusiveMin: true });
  assertNumber("minLr", cfg.minLr, 0, { max: cfg.lr });
  assertInt("warmup", cfg.warmup, 0, cfg.steps - 1);
  assertNumber("weightDecay", cfg.weightDecay, 0);
  assertInt("maskRefresh", cfg.maskRefresh, 1);
  assertNumber("alpha", cfg.alpha, 0);
  assertNumber("preconditionFraction", cfg.preconditionFraction, 0, {
    exclusiveMin: true,
    max: 1,
    exclusiveMax: true,
  });
  if (!(BACKEND_CHOICES as readonly string[]).includes(cfg.backend)) {
    throw new TypeError(`Bad value for --backend: expected ${BACKEND_CHOICES}, got ${cfg.backend}`);
  }
  return methods;
}

/** The options of a method under this run's scaled-down hyper-parameters. */
function methodOptions(method: SparseMethod, cfg: Config): SparseOptions {
  const o: SparseOptions = { method };
  const traits = sparseMethodTraits(method);
  if (traits.weight === "transposable") o.maskRefresh = cfg.maskRefresh;
  if (traits.decay === "alpha") o.alpha = cfg.alpha;
  if (traits.precondition) o.preconditionFraction = cfg.preconditionFraction;
  return o;
}

/** The 16 cells of P2 Table 8's factorial (soft × β × MVUE × FP8). */
function factorialCells(): Cell[] {
  const cells: Cell[] = [];
  const on = (b: boolean) => (b ? "on" : "off");
  for (const soft of [true, false]) {
    for (const beta of [true, false]) {
      for (const mvue of [true, false]) {
        for (const fp8 of [true, false]) {
          const label = `soft ${on(soft)}, β ${on(beta)}, MVUE ${on(mvue)}, FP8 ${on(fp8)}`;
          const sparse: SparseOptions = soft
            ? {
              method: fp8 ? "s-ste+fp8" : "s-ste",
              betaRecipe: beta ? "mse-frozen" : "none",
              mvue,
            }
            : { method: "ste", mvue, fp8 };
          const sameAs = !soft && beta
            ? `soft off, β off, MVUE ${on(mvue)}, FP8 ${on(fp8)}`
            : undefined;
          cells.push({ soft, beta, mvue, fp8, variant: { label, sparse }, sameAs });
        }
      }
    }
  }
  return cells;
}

/** A key naming a variant's behaviour (resolved options), so shared runs are trained once. */
function behaviourKey(sparse: SparseOptions): string {
  return JSON.stringify(resolveSparseOptions(sparse));
}

/** The training order of a seed: a Fisher–Yates shuffle per epoch from Philox uniforms. */
function trainOrder(count: number, seed: number, epoch: number): Uint32Array {
  // Block 0's last streams are unused by the model's initialisation (one stream per parameter).
  const u = uniforms(seed, STREAMS_PER_BLOCK - 1 - epoch, count);
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(u[i] * (i + 1)));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function batchOf(split: ImageSplit, indices: ArrayLike<number>, pixels: number): ImageBatch {
  const n = indices.length;
  const images = new Uint8Array(n * pixels), labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    images.set(split.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k] = split.labels[i];
  }
  return { images, labels, batchSize: n };
}

/** One training run's record. */
interface RunRecord {
  key: string;
  seed: number;
  accuracy: number;
  losses: number[];
  seconds: number;
}

async function trainAndTest(
  data: FashionMnist,
  variant: Variant,
  seed: number,
  cfg: Config,
  backend: Backend,
): Promise<Omit<RunRecord, "key">> {
  const start = performance.now();
  const config: ViTConfig = {
    imageSize: data.rows,
    patchSize: cfg.patchSize,
    nLayer: cfg.nLayer,
    nHead: cfg.nHead,
    nEmbd: cfg.nEmbd,
    numClasses: 10,
    sparse: variant.sparse,
  };
  const model = await ViT.create(backend, config, { seed });
  const trainer = new Trainer(model, {
    totalSteps: cfg.steps,
    peakLr: cfg.lr,
    warmupSteps: cfg.warmup,
    minLr: cfg.minLr,
    seed,
    adamw: { weightDecay: cfg.weightDecay },
  });
  const pixels = data.rows * data.cols, n = data.train.count;
  const losses: number[] = [];
  let order = trainOrder(n, seed, 0);
  for (let s = 0; s < cfg.steps; s++) {
    const first = (s * cfg.batchSize) % n;
    const epoch = Math.floor((s * cfg.batchSize) / n);
    if (first < cfg.batchSize && s > 0) order = trainOrder(n, seed, epoch);
    const idx = Array.from({ length: cfg.batchSize }, (_, k) => order[(first + k) % n]);
    losses.push((await trainer.trainStep(batchOf(data.train, idx, pixels))).loss);
  }
  let correct = 0;
  for (let first = 0; first < cfg.testImages; first += cfg.evalBatch) {
    const count = Math.min(cfg.evalBatch, cfg.testImages - first);
    const idx = Array.from({ length: count }, (_, k) => first + k);
    const batch = batchOf(data.test, idx, pixels);
    const predicted = await model.predict(batch);
    backend.release();
    predicted.forEach((c, k) => (correct += c === batch.labels[k] ? 1 : 0));
  }
  for (const p of model.parameters()) backend.dispose(p.value);
  for (const p of model.parameters()) {
    const { m, v } = trainer.optimizer.moments(p.name);
    backend.dispose(m);
    backend.dispose(v);
  }
  return {
    seed,
    accuracy: (100 * correct) / cfg.testImages,
    losses,
    seconds: (performance.now() - start) / 1000,
  };
}

const pct = (i: MeanInterval) => formatInterval(i);

/**
 * Runs the experiment.
 *
 * @param args Command-line overrides.
 * @returns Resolves when the outputs are written.
 */
export async function main(args: readonly string[]): Promise<void> {
  const cfg = parseConfig(defaults, args, presets);
  const methods = checkConfig(cfg);
  const prepared = await prepareFashionMnist({
    source: cfg.source,
    dir: cfg.data,
    log: console.log,
  });
  const data = await loadFashionMnist(cfg.data);
  console.log(`Fashion-MNIST: ${prepared.reused ? "cache reused" : "cache built"} in ${cfg.data}`);
  const backend = await selectBackend(cfg.backend);
  console.log(`backend: ${backend.name} (${backend.device})`);

  const variants = new Map<string, Variant>();
  const methodKeys = methods.map((m) => {
    const variant = { label: m, sparse: methodOptions(m, cfg) };
    const key = behaviourKey(variant.sparse);
    if (!variants.has(key)) variants.set(key, variant);
    return key;
  });
  const cells = cfg.factorial ? factorialCells() : [];
  const cellKeys = new Map<string, string>();
  for (const cell of cells) {
    if (cell.sameAs !== undefined) continue;
    const key = behaviourKey(cell.variant.sparse);
    cellKeys.set(cell.variant.label, key);
    if (!variants.has(key)) variants.set(key, cell.variant);
  }
  for (const cell of cells) {
    if (cell.sameAs !== undefined) cellKeys.set(cell.variant.label, cellKeys.get(cell.sameAs)!);
  }
  const seeds = Array.from({ length: cfg.seeds }, (_, i) => cfg.seed + i);
  console.log(`${variants.size} configurations × ${seeds.length} seeds, ${cfg.steps} steps each`);

  const runs: RunRecord[] = [];
  const started = performance.now();
  const context = { cfg, methods, methodKeys, cells, cellKeys, variants, backend, runs };
  for (const [done, seed] of seeds.entries()) {
    for (const [key, variant] of variants) {
      const r = await trainAndTest(data, variant, seed, cfg, backend);
      runs.push({ key, ...r });
      const elapsed = (performance.now() - started) / 1000;
      console.log(
        `seed ${seed} ${variant.label}: test accuracy ${r.accuracy.toFixed(2)}%, final loss ` +
          `${r.losses.at(-1)!.toFixed(3)}, ${r.seconds.toFixed(0)} s (total ${
            formatSeconds(elapsed)
          })`,
      );
    }
    // The outputs after every complete seed: a run cut short still leaves its finished seeds.
    const md = await writeOutputs(context, seeds.slice(0, done + 1), started);
    if (done === seeds.length - 1) console.log(md);
  }
  console.log(
    `wrote ${cfg.out}/table.md, summary.json, loss.svg${cells.length ? ", factorial.svg" : ""}`,
  );
}

/** What {@linkcode writeOutputs} reports on. */
interface Context {
  cfg: Config;
  methods: SparseMethod[];
  methodKeys: string[];
  cells: Cell[];
  cellKeys: Map<string, string>;
  variants: Map<string, Variant>;
  backend: Backend;
  runs: RunRecord[];
}

/** Writes the tables, summary and charts of the seeds done so far; returns the Markdown. */
async function writeOutputs(ctx: Context, seeds: number[], started: number): Promise<string> {
  const { cfg, methods, methodKeys, cells, cellKeys, variants, backend } = ctx;
  const runs = ctx.runs.filter((r) => seeds.includes(r.seed));
  const totalSeconds = (performance.now() - started) / 1000;
  const accuracies = (key: string) =>
    seeds.map((s) => runs.find((r) => r.key === key && r.seed === s)!.accuracy);
  const paired = (a: string, b: string) => pairedDifference(accuracies(a), accuracies(b));

  // ---- tables ----------------------------------------------------------------------------------
  const denseKey = methods.includes("dense") ? methodKeys[methods.indexOf("dense")] : undefined;
  const methodRows = methods.map((m, i) => {
    const acc = meanInterval(accuracies(methodKeys[i]));
    const vsDense = denseKey === undefined || m === "dense"
      ? undefined
      : paired(methodKeys[i], denseKey);
    return { method: m, accuracy: acc, vsDense };
  });
  const cellRows = cells.map((c) => ({
    ...c,
    accuracy: meanInterval(accuracies(cellKeys.get(c.variant.label)!)),
  }));
  /** Main effect of a factor: per seed, the mean over cells with it on minus with it off. */
  const effect = (factor: "soft" | "beta" | "mvue" | "fp8") => {
    const pool = factor === "beta" ? cells.filter((c) => c.soft) : cells;
    const perSeed = seeds.map((_, si) => {
      const mean = (on: boolean) => {
        const sel = pool.filter((c) => c[factor] === on);
        return sel.reduce((a, c) => a + accuracies(cellKeys.get(c.variant.label)!)[si], 0) /
          sel.length;
      };
      return mean(true) - mean(false);
    });
    return meanInterval(perSeed);
  };
  const effects = cells.length === 0 ? undefined : {
    soft: effect("soft"),
    beta: effect("beta"),
    mvue: effect("mvue"),
    fp8: effect("fp8"),
  };

  const header = [
    `# ViT on Fashion-MNIST: test accuracy (%) per method, ${
      seeds.length === 1 ? "1 seed (no interval)" : `${seeds.length} seeds, 95% intervals`
    }`,
    "",
    `Model: ${cfg.nLayer} blocks × ${cfg.nEmbd} wide, ${cfg.nHead} heads, patches ${cfg.patchSize}×${cfg.patchSize}; ` +
    `${cfg.steps} steps of ${cfg.batchSize} images; ${cfg.testImages} test images; backend ${backend.name}; ` +
    `${runs.length} runs in ${formatSeconds(totalSeconds)} (machine: see the README).`,
    "",
  ];
  const md = [...header, "| method | accuracy | vs dense (paired) |", "|---|---|---|"];
  for (const r of methodRows) {
    md.push(`| ${r.method} | ${pct(r.accuracy)} | ${r.vsDense ? pct(r.vsDense) : "—"} |`);
  }
  if (effects !== undefined) {
    md.push(
      "",
      "## P2 Table 8: the S-STE factorial",
      "",
      "| soft thresholding | β rescaling | MVUE | FP8 | accuracy |",
      "|---|---|---|---|---|",
    );
    for (const c of cellRows) {
      const on = (b: boolean) => (b ? "✓" : "—");
      md.push(
        `| ${on(c.soft)} | ${on(c.beta)} | ${on(c.mvue)} | ${on(c.fp8)} | ${pct(c.accuracy)}${
          c.sameAs ? " (= β off: β ≡ 1 with hard thresholding)" : ""
        } |`,
      );
    }
    md.push(
      "",
      "Main effects (paired by seed; β within soft thresholding): " +
        `soft ${pct(effects.soft)} (claim: helps → ${verdict(effects.soft, { kind: "above" })}), ` +
        `β ${pct(effects.beta)} (helps → ${verdict(effects.beta, { kind: "above" })}), ` +
        `MVUE ${pct(effects.mvue)} (costs ≤ 1 point → ${
          verdict(effects.mvue, { kind: "within", margin: 1 })
        }), ` +
        `FP8 ${pct(effects.fp8)} (costs ≤ 1 point → ${
          verdict(effects.fp8, { kind: "within", margin: 1 })
        }).`,
    );
  }
  const df = methodRows.find((r) => r.method === "t-sr-ste+df");
  if (df?.vsDense !== undefined) {
    md.push(
      "",
      `P1 (2:4 + dense fine-tuning within 1 point of dense): ${
        verdict(df.vsDense, { kind: "within", margin: 1 })
      }.`,
    );
  }

  await Deno.mkdir(cfg.out, { recursive: true });
  await Deno.writeTextFile(`${cfg.out}/table.md`, md.join("\n") + "\n");
  const summary = {
    config: cfg,
    backend: { name: backend.name, device: backend.device },
    totalSeconds,
    methods: methodRows,
    factorial: cellRows.map((c) => ({ ...c, variant: c.variant.label })),
    effects,
    runs: runs.map((r) => ({ ...r, label: variants.get(r.key)!.label })),
  };
  await writeSummary(cfg.out, summary);
  const curve = (key: string) => {
    const own = runs.filter((r) => r.key === key);
    return own[0].losses.map((_, s) =>
      [s, own.reduce((a, r) => a + r.losses[s], 0) / own.length] as const
    );
  };
  await Deno.writeTextFile(
    `${cfg.out}/loss.svg`,
    lineChart(methods.map((m, i) => ({ name: m, points: curve(methodKeys[i]) })), {
      title: "ViT on Fashion-MNIST: training loss (mean over seeds)",
      xLabel: "step",
      yLabel: "loss",
      logY: true,
    }),
  );
  if (cells.length > 0) {
    await Deno.writeTextFile(
      `${cfg.out}/factorial.svg`,
      lineChart(
        cells.filter((c) => c.sameAs === undefined).map((c) => ({
          name: c.variant.label,
          points: curve(cellKeys.get(c.variant.label)!),
        })),
        {
          title: "S-STE factorial (P2 Table 8): training loss (mean over seeds)",
          xLabel: "step",
          yLabel: "loss",
          logY: true,
        },
      ),
    );
  }
  return md.join("\n");
}

if (import.meta.main) await runCli(main);
