/**
 * What bounds a 2:4 GEMM in WGSL (issue 15, target: compressed forward ≥ 1.4× the best dense WGSL
 * kernel at 8192×768→3072 and 8192×3072→768). One command, llm.c zoo style, the dense winner as
 * the same-run baseline:
 *
 * 1. Dense baseline: the wide kernel's wired plan and 128×128 split-K at both shapes (best = ref).
 * 2. `reg` micro-benchmarks (`_sparse_micro.ts`): the 2:4 inner loop with every operand in
 *    registers, per formulation of the per-row pick: `switch` over the six codes, `switch-pid`
 *    (pattern ids 0–5, dense case labels), `switch-pair` (one 36-way branch per two rows),
 *    `select` chains, `index` (dynamic vec4 component `x[i]`), `array` (dynamic index into a
 *    function-scope array), `mask` (weights expanded to four with zeros: dense work); the pattern
 *    shared by the workgroup, by a warp, or per lane; plus `fma` (independent FMA chains: the FMA
 *    roofline re-measured) and `dense` (the same loop, four FMAs, fixed weights; the faster of the
 *    two is the roof).
 * 3. `wg` micro-benchmarks: the same with the operands read from a workgroup-resident slice each
 *    iteration as the real kernel reads them (no global loads, no barriers), and `gather` (the two
 *    activations read at the row's indices: no branch, no select, 4 useful FMAs per load).
 * 4. Full kernels: `matmul_sparse_switch.ts` in its `switch`, `select`, `gather` and
 *    same-structure `dense` modes at a few tilings, each checked on 64 sampled outputs.
 *
 * Per row: ms, useful and dense-equivalent TFLOP/s, FMA-issue slots per useful FMA (same-run FMA
 * roofline rate ÷ useful FMA rate), fractions of the FMA and workgroup-load rooflines, and the
 * dense-equivalent rate ÷ the best dense kernel's (a `reg` row's ratio is the ceiling of any kernel
 * built on that formulation: it pays no memory). Micro rows of one group compute the same FMAs in
 * the same order and must agree bit for bit; a mismatch or a failed sample check fails the run
 * (exit 1) after the files are written.
 *
 * Usage: deno run -A experiments/zoo/sparse_bound.ts --out=DIR [--quick] [--parts=dense,reg,wg,full]
 * (`--quick`: tiny shapes and grids, for a software adapter; the figures then mean nothing).
 *
 * @module
 */

import { describeAdapter, GpuRuntime } from "../../gpu/runtime.ts";
import type { MatmulDims } from "../../gpu/kernels/matmul.ts";
import {
  dispatchMatmulWide,
  WIDE_128,
  wideFits,
  widePlan,
  wideTilingName,
} from "../../gpu/kernels/matmul_wide.ts";
import {
  dispatchSparseSwitch,
  matmulSparseSwitchSpec,
  type Pick24,
  type SparseSwitchTiling,
  SWITCH_TILINGS,
  switchTilingFits,
  switchTilingName,
} from "../../gpu/kernels/matmul_sparse_switch.ts";
import { seededFloats } from "../../reference/testing.ts";
import { cliConfig } from "../lm.ts";
import {
  H100_WGSL,
  kernelTimer,
  sampleCheck,
  switchWeights,
  uploadSeeded,
} from "../speed_bench.ts";
import {
  CODES24,
  MICRO_THREADS,
  microFmas,
  microLoads,
  microName,
  microSpec,
  type MicroVariant,
} from "./_sparse_micro.ts";

// ---- configuration ------------------------------------------------------------------------------
const DEFAULTS = {
  /** Directory for sparse_bound.json and sparse_bound.md (empty: print only). */
  out: "",
  /** Tiny shapes and grids (a dry run on a software adapter). */
  quick: false,
  /** Parts to run, in this order. */
  parts: "dense,reg,wg,full",
  /** Start no new row after this many seconds (rows left are listed as skipped). */
  budgetS: 115,
  /** GPU work per timed batch (ms) and timed batches per row (median). */
  batchMs: 40,
  batches: 3,
  /** Micro dispatches: workgroups, and the useful-FMA work sized to take this long at 51.2 TFLOP/s. */
  microWorkgroups: 4224,
  microMs: 2,
};
const config = cliConfig(DEFAULTS);
if (config.quick) Object.assign(config, { microWorkgroups: 2, batchMs: 5, batches: 1 });
const TOKENS = config.quick ? 256 : 8192;
/** The two forward products `[T, K] → [T, R]`: fc 768→3072 and proj 3072→768 (quick: ÷ 12). */
const SHAPES = (config.quick ? [[64, 256], [256, 64]] : [[768, 3072], [3072, 768]]).map((
  [k, r],
) => ({ name: `${TOKENS}×${k}→${r}`, K: k, R: r }));

const started = performance.now();
const rt = await GpuRuntime.create();
const lines: string[] = [];
const say = (s = "") => {
  console.log(s);
  lines.push(s);
};
const adapter = describeAdapter(rt.adapter);
const { latency, time: timeIt, timer } = await kernelTimer(rt, config);
say(`# 2:4 selection bound (issue 15)\n`);
say(`- adapter: ${adapter}; date ${new Date().toISOString()}`);
say(`- command: deno run -A experiments/zoo/sparse_bound.ts ${Deno.args.join(" ")}`);
say(
  `- timer: ${timer.timer}, ≥ ${config.batchMs} ms of work per batch, median of ${config.batches}; ` +
    `round-trip latency ${latency.trivialDispatch.toFixed(2)} ms`,
);
say(
  `- rooflines: FMA re-measured below (the faster of \`reg fma\` and \`reg dense\`; issue 15's figure ${H100_WGSL.fmaTflops} ` +
    `TFLOP/s), workgroup loads ${
      H100_WGSL.wgVec4PerS / 1e12
    } T vec4/s (issue 15's micro-benchmark)`,
);

interface Row {
  part: string;
  shape?: string;
  name: string;
  ms: number | null;
  usefulTflops?: number;
  denseEqTflops?: number;
  slotsPerUsefulFma?: number;
  fmaFraction?: number;
  loadFraction?: number;
  vsDense?: number;
  check: string;
  /** The call's work, and its executed FMAs per second. */
  work?: Work;
  fmaPerS?: number;
}
const rows: Row[] = [];
const failures: string[] = [];
const skipped: string[] = [];
const overBudget = (name: string) => {
  if ((performance.now() - started) / 1e3 < config.budgetS) return false;
  skipped.push(name);
  return true;
};
const f = (v: number | undefined | null, d = 2) => v == null ? "—" : v.toFixed(d);
/** Three significant digits (TFLOP/s are tiny on a software adapter). */
const num = (v: number) => v >= 100 ? v.toFixed(0) : v.toPrecision(3);
const t = (v: number | undefined) => v == null ? "—" : num(v);
const pct = (v: number | undefined) => v == null ? "—" : `${(100 * v).toFixed(0)}%`;
const tableRow = (r: Row) =>
  `| ${r.name} | ${f(r.ms, 4)} | ${t(r.usefulTflops)} | ${t(r.denseEqTflops)} | ${
    f(r.slotsPerUsefulFma)
  } | ${pct(r.fmaFraction)} | ${pct(r.loadFraction)} | ${
    r.vsDense == null ? "—" : `${r.vsDense.toFixed(2)}×`
  } | ${r.check} |`;
/** FMAs and workgroup `vec4` loads of one call. */
interface Work {
  useful: number;
  executed: number;
  loads: number;
  /** The dense FMAs the call stands for (2:4: twice the useful ones). */
  denseEqFmas: number;
}

/** A timed row's rates against the same-run FMA roofline and the dense reference `refTflops`. */
function rateRow(
  base: { part: string; name: string; shape?: string; check: string },
  ms: number,
  work: Work,
  refTflops: number,
): Row {
  const perS = (n: number) => n / (ms * 1e-3);
  const denseEq = 2 * perS(work.denseEqFmas) / 1e12;
  return {
    ...base,
    ms,
    work,
    fmaPerS: perS(work.executed),
    usefulTflops: 2 * perS(work.useful) / 1e12,
    denseEqTflops: denseEq,
    slotsPerUsefulFma: fmaRoof / perS(work.useful),
    fmaFraction: perS(work.executed) / fmaRoof,
    loadFraction: perS(work.loads) / H100_WGSL.wgVec4PerS,
    vsDense: refTflops > 0 ? denseEq / refTflops : undefined,
  };
}

/** A table cell for a kernel that did not compile (a limit of the device, not a failure). */
const compileNote = (e: unknown) =>
  `compile: ${(e as Error).message.replaceAll("|", "/").replaceAll("\n", " ").slice(0, 160)}`;
const HEADER = [
  `| variant | ms | useful TFLOP/s | dense-eq TFLOP/s | FMA slots / useful FMA | FMA roof | wg-load roof | dense-eq ÷ best dense | check |`,
  `|---|---:|---:|---:|---:|---:|---:|---:|---|`,
];

/** Best dense TFLOP/s per shape name, and over both shapes (the micro rows' reference). */
const bestDense = new Map<string, number>();
const denseRef = () => Math.max(0, ...bestDense.values());
/** The same-run FMA roofline in FMAs per second (the `reg fma`/`reg dense` rows; issue 15's until measured). */
let fmaRoof = H100_WGSL.fmaTflops * 1e12 / 2, fmaMeasured = false;

// A row that hangs (a slow compile) must not lose the rows before it: past the budget plus a
// grace, write what was measured and stop.
const watchdog = setTimeout(() => {
  finish(`stopped by the watchdog at ${config.budgetS + 20} s: the row after the last one hung`);
  Deno.exit(3);
}, (config.budgetS + 20) * 1e3);

// ---- 1. dense baseline ---------------------------------------------------------------------------
if (config.parts.includes("dense")) {
  say(`\n## 1. Dense baseline: the wide kernel, C = X·Wᵀ (TFLOP/s = 2·T·R·K / time)\n`);
  say(`| shape | plan | ms | TFLOP/s | FMA roof | check |`);
  say(`|---|---|---:|---:|---:|---|`);
  for (const s of SHAPES) {
    const dims: MatmulDims = { batch: 1, m: TOKENS, n: s.R, k: s.K, transA: false, transB: true };
    const X = uploadSeeded(rt, TOKENS * s.K, 1 + s.K), W = uploadSeeded(rt, s.R * s.K, 2 + s.R);
    const cBuf = rt.alloc(4 * TOKENS * s.R);
    const plans = [widePlan(dims)];
    if (wideFits(dims, WIDE_128)) plans.push(widePlan(dims, { tiling: WIDE_128 }));
    for (const plan of plans) {
      const name = `${wideTilingName(plan.tiling)}${
        plan.checked ? " checked" : ""
      } split ${plan.splits}`;
      if (overBudget(`dense ${s.name} ${name}`)) continue;
      const parts = plan.splits > 1 ? rt.alloc(4 * plan.splits * TOKENS * s.R) : undefined;
      const record = () =>
        dispatchMatmulWide(rt, { a: X.buffer, b: W.buffer, c: cBuf, parts }, dims, plan);
      record();
      const got = new Float32Array(await rt.read(cBuf, 4 * TOKENS * s.R));
      const check = sampleCheck(
        got,
        TOKENS,
        s.R,
        s.K,
        (i, kk) => X.at(i * s.K + kk),
        (j, kk) => W.at(j * s.K + kk),
      );
      if (!check.startsWith("ok")) failures.push(`dense ${s.name} ${name}: ${check}`);
      const ms = await timeIt(record);
      const tflops = 2 * TOKENS * s.R * s.K / ms / 1e9;
      bestDense.set(s.name, Math.max(bestDense.get(s.name) ?? 0, tflops));
      rows.push({ part: "dense", shape: s.name, name, ms, denseEqTflops: tflops, check });
      say(
        `| ${s.name} | ${name} | ${ms.toFixed(4)} | ${num(tflops)} | ${
          pct(tflops / H100_WGSL.fmaTflops)
        } | ${check} |`,
      );
      if (parts) rt.free(parts);
    }
    for (const b of [X.buffer, W.buffer, cBuf]) rt.free(b);
    await rt.sync();
  }
  say(
    `\nBest dense (the reference of every ratio below): ${
      [...bestDense].map(([k, v]) => `${k} ${num(v)} TFLOP/s`).join(", ")
    }`,
  );
}

// ---- 2, 3. micro-benchmarks ------------------------------------------------------------------------
// Core rows first (the budget skips from the end): the FMA roofline, each formulation at 8 tokens
// and 8 rows per thread; the extras (amortisation over 4 and 16 tokens, 16 rows, pattern sources,
// switch-pair, array) run after the full kernels.
const micro = (
  operands: MicroVariant["operands"],
  forms: readonly MicroVariant["form"][],
  threadMs: readonly number[],
  rows = 8,
  source: MicroVariant["source"] = "warp",
): MicroVariant[] =>
  threadMs.flatMap((threadM) => forms.map((form) => ({ form, operands, threadM, rows, source })));
const REG_CORE = [
  // Both all-FMA loops set the roofline: on the H100 the fixed-weight \`dense\` loop issues FMAs
  // faster than the \`fma\` chains (their dependency chains), so the higher rate is the roof.
  ...micro("reg", ["fma", "dense"], [8, 16]),
  ...micro("reg", ["switch", "mask", "select", "index", "switch-pid"], [8]),
];
const REG_EXTRA = [
  ...micro("reg", ["switch", "dense", "mask", "select", "index", "switch-pid"], [4, 16]),
  ...micro("reg", ["switch", "select", "dense"], [8], 16),
  ...micro("reg", ["switch", "select"], [8], 8, "wg"),
  ...micro("reg", ["switch", "select"], [8], 8, "lane"),
  ...micro("reg", ["switch-pair", "array"], [4, 8, 16]),
];
// 16 rows per thread: 14.2 useful FMAs per workgroup load, past the 13.8 break-even.
const WG = [
  ...micro("wg", ["switch", "dense", "mask", "select", "gather"], [8, 16]),
  ...micro("wg", ["switch", "dense", "select", "gather"], [8], 16),
];

// Inputs shared by every micro kernel: activations, weights, code words (and the same patterns as
// pattern ids, for switch-pid), 8 nibbles a word.
const NW = 4096;
const patterns = seededFloats(8 * NW, 77, (u) => Math.floor(u * 6));
const codeWords = new Uint32Array(NW), pidWords = new Uint32Array(NW);
for (let i = 0; i < 8 * NW; i++) {
  codeWords[i >> 3] |= CODES24[patterns[i]] << (4 * (i & 7));
  pidWords[i >> 3] |= patterns[i] << (4 * (i & 7));
}
const NX = 4096;
const [xin, win, codeBuf, pidBuf] = [
  seededFloats(4 * NX, 78),
  seededFloats(4 * NX, 79),
  codeWords,
  pidWords,
]
  .map((v) => rt.upload(v));
const threads = config.microWorkgroups * MICRO_THREADS;
const outBuf = rt.alloc(16 * threads);
/** First output of each group (operands, tokens, rows, pattern source): the others must match. */
const reference = new Map<string, { name: string; out: Float32Array }>();

async function runMicro(part: string, title: string, variants: MicroVariant[]): Promise<void> {
  say(`\n## ${title} (${config.microWorkgroups} workgroups × ${MICRO_THREADS} threads)\n`);
  say(HEADER.join("\n"));
  for (const v of variants) {
    const name = microName(v);
    if (overBudget(name)) continue;
    const spec = microSpec(v);
    try {
      await rt.compile(spec);
    } catch (e) {
      rows.push({ part, name, ms: null, check: compileNote(e) });
      say(tableRow(rows.at(-1)!));
      continue;
    }
    const fmas = microFmas(v);
    const iters = config.quick ? 8 : Math.max(
      8,
      Math.round(config.microMs * 1e-3 * H100_WGSL.fmaTflops * 1e12 / 2 / (threads * fmas.useful)),
    );
    const params = new Uint32Array([iters, NX, NW, 0]);
    const record = () =>
      rt.dispatch(spec, [outBuf, xin, win, v.form === "switch-pid" ? pidBuf : codeBuf], [
        config.microWorkgroups,
      ], params);
    rt.write(outBuf, new Float32Array(4 * threads).fill(NaN));
    record();
    const out = new Float32Array(await rt.read(outBuf, 16 * threads));
    let check = "—";
    if (v.form !== "fma" && v.form !== "dense") {
      const group = `${v.operands} t${v.threadM} r${v.rows} ${v.source}`;
      const ref = reference.get(group);
      if (!ref) {
        reference.set(group, { name, out });
        check = out.every(Number.isFinite) ? "reference" : "FAIL non-finite";
      } else {
        const bad = out.findIndex((y, i) => y !== ref.out[i]);
        check = bad < 0
          ? `= ${ref.name.split(" ")[1]}`
          : `FAIL out[${bad}] ${out[bad]} ≠ ${ref.out[bad]}`;
      }
      if (check.startsWith("FAIL")) failures.push(`${name}: ${check}`);
    }
    const ms = await timeIt(record);
    const calls = threads * iters;
    const row = rateRow({ part, name, check }, ms, {
      useful: calls * fmas.useful,
      executed: calls * fmas.executed,
      loads: calls * microLoads(v),
      // dense references: all FMAs; 2:4: each useful FMA stands for two dense ones
      denseEqFmas: calls * fmas.useful * (v.form === "fma" || v.form === "dense" ? 1 : 2),
    }, denseRef());
    if (v.form === "fma" || v.form === "dense") {
      fmaRoof = fmaMeasured ? Math.max(fmaRoof, row.fmaPerS!) : row.fmaPerS!;
      fmaMeasured = true;
      Object.assign(
        row,
        rateRow(row, ms, { ...row.work!, denseEqFmas: calls * fmas.useful }, denseRef()),
      );
    }
    rows.push(row);
    say(tableRow(row));
  }
}
if (config.parts.includes("reg")) await runMicro("reg", "2. Operands in registers", REG_CORE);
if (config.parts.includes("wg")) await runMicro("wg", "3. Operands from workgroup memory", WG);

// ---- 4. full kernels ---------------------------------------------------------------------------------
const TILINGS: SparseSwitchTiling[] = config.quick
  ? [{ threadM: 8, rows: 8, warpsR: 2, warpsA: 1, groups: 4 }, {
    threadM: 4,
    rows: 8,
    warpsR: 1,
    warpsA: 2,
    groups: 1,
  }]
  : [
    ...SWITCH_TILINGS.slice(0, 3), // the zoo's three fastest
    // Every warp on the same rows: the pattern is workgroup-uniform and the compiler can see it.
    { threadM: 4, rows: 16, warpsR: 1, warpsA: 8, groups: 1 },
    { threadM: 8, rows: 8, warpsR: 1, warpsA: 4, groups: 1 },
  ];
if (config.parts.includes("full")) {
  say(`\n## 4. Full 2:4 kernels, Cᵀ = W̃·Xᵀ from the compressed weight (matmul_sparse_switch.ts)\n`);
  say(HEADER.join("\n").replace("| variant |", "| shape, variant |"));
  for (const s of SHAPES) {
    const { K, R } = s;
    const x = seededFloats(TOKENS * K, 3 + K), { w, compressed, dense } = switchWeights(rt, R, K);
    const xBuf = rt.upload(x);
    const out = rt.alloc(4 * R * TOKENS);
    for (const t of TILINGS) {
      if (!switchTilingFits(t, { A: TOKENS, R, K })) continue;
      for (
        const mode of [
          "switch",
          "select",
          "gather",
          "dense",
        ] as const satisfies readonly (Pick24 | "dense")[]
      ) {
        const name = `${s.name} ${mode === "dense" ? "same-structure dense" : mode} ${
          switchTilingName(t)
        }`;
        if (overBudget(name)) continue;
        const spec = matmulSparseSwitchSpec(t, false, mode);
        try {
          await rt.compile(spec);
        } catch (e) {
          rows.push({ part: "full", shape: s.name, name, ms: null, check: compileNote(e) });
          say(tableRow(rows.at(-1)!));
          continue;
        }
        const bufs = [xBuf, ...(mode === "dense" ? dense : compressed), out];
        const record = () => dispatchSparseSwitch(rt, spec, t, bufs, { A: TOKENS, R, K });
        rt.write(out, new Float32Array(R * TOKENS).fill(NaN));
        record();
        const got = new Float32Array(await rt.read(out, 4 * R * TOKENS));
        const check = sampleCheck(
          got,
          R,
          TOKENS,
          K,
          (j, kk) => w[j * K + kk],
          (a, kk) => x[a * K + kk],
        );
        if (!check.startsWith("ok")) failures.push(`${name}: ${check}`);
        const ms = await timeIt(record);
        const useful = TOKENS * R * K / 2;
        const row = rateRow({ part: "full", shape: s.name, name, check }, ms, {
          useful,
          executed: mode === "dense" ? 2 * useful : useful,
          loads: (TOKENS / t.threadM) * (R / t.rows) * (K / 4) *
            ((mode === "gather" ? t.rows * t.threadM / 2 : t.threadM) +
              (mode === "dense" ? t.rows : t.rows / 2 + t.rows / 8)),
          denseEqFmas: 2 * useful,
        }, bestDense.get(s.name) ?? 0);
        rows.push(row);
        say(tableRow(row));
      }
    }
    for (const b of [xBuf, ...compressed, ...dense, out]) rt.free(b);
    await rt.sync();
  }
}
if (config.parts.includes("reg")) {
  await runMicro("reg", "5. Operands in registers: more shapes and formulations", REG_EXTRA);
}
for (const b of [xin, win, codeBuf, pidBuf, outBuf]) rt.free(b);
timer.destroy();
rt.destroy();

// ---- verdict -------------------------------------------------------------------------------------------
/** The fastest row of a part (2:4 rows only: no `fma`, `dense` or `mask`). */
function best(part: string): Row | undefined {
  return rows.filter((r) =>
    r.part === part && r.denseEqTflops != null && !r.check.startsWith("FAIL") &&
    !/ (fma|dense|mask) /.test(` ${r.name} `.replace("same-structure dense", " dense "))
  ).sort((a, b) => b.denseEqTflops! - a.denseEqTflops!)[0];
}

/** Appends the verdict and writes the files (synchronously: the watchdog calls it too). */
function finish(note: string): void {
  say(`\n## Verdict\n`);
  if (note) say(`- ${note}`);
  say(
    `- FMA roofline re-measured: ${num(2 * fmaRoof / 1e12)} TFLOP/s` +
      ` (issue 15: ${H100_WGSL.fmaTflops}); best dense kernel ${num(denseRef())} TFLOP/s`,
  );
  const parts = [
    ["reg", "any 2:4 formulation, operands in registers (zero memory cost)"],
    ["wg", "2:4 with operands from workgroup memory"],
    ["full", "full 2:4 kernel"],
  ] as const;
  for (const [part, what] of parts) {
    const b = best(part);
    if (!b) continue;
    say(
      `- best ${what}: ${b.name} at ${t(b.denseEqTflops)} dense-equivalent TFLOP/s = ` +
        `${f(b.vsDense)}× the best dense kernel; ${f(b.slotsPerUsefulFma)} FMA-issue slots per ` +
        `useful FMA; FMA units ${pct(b.fmaFraction)}, workgroup loads ${pct(b.loadFraction)}`,
    );
  }
  const reg = best("reg"), wg = best("wg");
  if (reg?.vsDense != null) {
    // 1.4× the dense rate D (dense-equivalent) needs 1.4·D/4 useful FMAs per second.
    const allowed = fmaRoof / (1.4 * denseRef() * 1e12 / 4);
    say(
      reg.vsDense < 1.4
        ? `- BOUND: with no memory cost at all the fastest 2:4 selection (${reg.name}) reaches ` +
          `${reg.vsDense.toFixed(2)}× dense < 1.4×. The resource it saturates is instruction ` +
          `issue: ${f(reg.slotsPerUsefulFma)} FMA-issue slots per useful FMA, of which the FMAs ` +
          `fill ${pct(reg.fmaFraction)}; 1.4× would need ≤ ${allowed.toFixed(2)}.`
        : `- The register-only ceiling (${reg.vsDense.toFixed(2)}×, ${reg.name}) leaves room ` +
          `for 1.4× (≤ ${allowed.toFixed(2)} slots per useful FMA needed, ` +
          `${f(reg.slotsPerUsefulFma)} measured).` +
          (wg?.vsDense != null
            ? ` With the operands read from workgroup memory the best is ${
              wg.vsDense.toFixed(2)
            }× ` +
              `(${wg.name}: FMA units ${pct(wg.fmaFraction)}, workgroup loads ` +
              `${pct(wg.loadFraction)}).`
            : ""),
    );
  }
  if (skipped.length > 0) {
    say(`- skipped (over the ${config.budgetS} s budget): ${skipped.join("; ")}`);
  }
  if (failures.length > 0) say(`- FAILURES: ${failures.join("; ")}`);
  say(`- elapsed ${((performance.now() - started) / 1e3).toFixed(0)} s`);
  if (!config.out) return;
  Deno.mkdirSync(config.out, { recursive: true });
  Deno.writeTextFileSync(`${config.out}/sparse_bound.md`, lines.join("\n") + "\n");
  const json = { adapter, args: Deno.args, fmaRoof, bestDense: Object.fromEntries(bestDense) };
  Deno.writeTextFileSync(
    `${config.out}/sparse_bound.json`,
    JSON.stringify({ ...json, rows, skipped, failures, note }, null, 1),
  );
  console.log(`wrote ${config.out}/sparse_bound.{md,json}`);
}
clearTimeout(watchdog);
finish("");
if (failures.length > 0) Deno.exit(1);
