/**
 * Micro-benchmark kernels of `sparse_bound.ts` (issue 15): the inner loop of a 2:4 GEMM alone, to
 * measure what the per-row choice of the two kept activations costs with no memory in the way.
 *
 * Every kernel runs `iters` iterations ("groups of four k") per thread; per iteration and row it
 * forms `acc(q) += x[i0](q)·v0 + x[i1](q)·v1` for `threadM / 4` token quads (`vec4`, one token per
 * component), the row's pattern `(i0, i1)` decoded from a 4-bit code. Operands either stay in
 * registers (`reg`: code words rotate by one nibble per iteration, one funnel shift per 8 rows, in
 * place of the real kernel's code load) or are read from a workgroup-resident slice each iteration
 * as the real kernel does (`wg`). All 2:4 formulations do the same FMAs in the same order, so their
 * outputs agree bit for bit: the runner checks that. `dense` (four FMAs per row and quad, fixed
 * weights) and `fma` (independent FMA chains) are the dense references.
 *
 * @module
 */

import type { KernelSpec } from "../../gpu/runtime.ts";
import { pickRow24 } from "../../gpu/kernels/matmul_sparse_switch.ts";

/** The formulations of the per-row pick (see `sparse_bound.ts` for what each stands for). */
export type MicroForm =
  | "fma"
  | "dense"
  | "mask"
  | "switch"
  | "switch-pid"
  | "switch-pair"
  | "select"
  | "index"
  | "array"
  | "gather";

/** One micro-benchmark. */
export interface MicroVariant {
  form: MicroForm;
  /** Operands in registers or read from workgroup memory each iteration. */
  operands: "reg" | "wg";
  /** Tokens per thread (multiple of 4). */
  threadM: number;
  /** Rows per thread (multiple of 8). */
  rows: number;
  /** Who shares a pattern: the workgroup, a warp of 32 lanes, or nobody (each lane its own). */
  source: "wg" | "warp" | "lane";
}

/** Threads per workgroup (8 warps of 32). */
export const MICRO_THREADS = 256;
/** Groups of four k in the workgroup-resident slice of `wg` kernels. */
export const MICRO_GROUPS = 4;
/** The six 2:4 codes `i0 | i1 << 2` by pattern id. */
export const CODES24 = [4, 8, 12, 9, 13, 14];

const COMP = ["x", "y", "z", "w"];

/** A short name, e.g. `reg switch t8 r8 warp`. */
export function microName(v: MicroVariant): string {
  return `${v.operands} ${v.form} t${v.threadM} r${v.rows} ${v.source}`;
}

/**
 * FMAs per thread and iteration: executed, and useful (all of a dense loop's; the kept half of a
 * 2:4 one, so `mask` executes twice its useful FMAs).
 */
export function microFmas(v: MicroVariant): { executed: number; useful: number } {
  if (v.form === "fma") return { executed: v.threadM * v.rows, useful: v.threadM * v.rows };
  const kept = 2 * v.threadM * v.rows;
  if (v.form === "dense") return { executed: 2 * kept, useful: 2 * kept };
  return { executed: v.form === "mask" ? 2 * kept : kept, useful: kept };
}

/** Workgroup-memory `vec4` loads (a `u32` code word counted as one) per thread and iteration. */
export function microLoads(v: MicroVariant): number {
  if (v.operands === "reg") return 0;
  const x = v.form === "gather" ? 2 * v.rows * v.threadM / 4 : v.threadM;
  return x + (v.form === "dense" ? v.rows : v.rows / 2 + v.rows / 8);
}

/**
 * The kernel. Bindings: `out` (one `vec4` per thread), `xin` (`vec4` activations), `win` (`vec4`
 * weights), `words` (code words: 8 nibbles, `switch-pid` pattern ids 0–5 instead of codes),
 * uniform `{ iters, nx, nw }`. One workgroup per grid cell along x.
 *
 * @throws {RangeError} If the variant is inconsistent.
 */
export function microSpec(v: MicroVariant): KernelSpec {
  const { form, operands, threadM: TM, rows: R, source } = v;
  const TM4 = TM / 4, RB = R / 8, G = MICRO_GROUPS, BA4 = 32 * TM4;
  const regOnly = ["index", "array", "switch-pid", "switch-pair", "fma"].includes(form);
  if (
    TM % 4 !== 0 || R % 8 !== 0 || (operands === "wg" && (regOnly || source !== "warp")) ||
    (operands === "reg" && form === "gather")
  ) {
    throw new RangeError(`Cannot build the 2:4 micro-benchmark: inconsistent ${microName(v)}`);
  }
  const key = `sparse-micro-${microName(v).replaceAll(" ", "-")}`;
  const head = `struct Params { iters: u32, nx: u32, nw: u32, pad: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> xin: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> win: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;`;
  const entry = `@compute @workgroup_size(${MICRO_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 32u;
  let warp = lid / 32u;
  let gid = wid.x * ${MICRO_THREADS}u + lid;`;
  const store = (accs: string[]) => `  out[gid] = ${accs.join(" + ")};\n}\n`;

  if (form === "fma") { // threadM·rows/4 independent vec4 FMA chains: as many FMAs as dense
    const chains = TM * R / 4;
    const lines = [];
    for (let i = 0; i < chains; i++) lines.push(`var acc${i} = xin[(gid + ${i}u) % p.nx];`);
    const body = Array.from({ length: chains }, (_, i) => `acc${i} = fma(acc${i}, a, b);`);
    return {
      key,
      code: `${head}\n${entry}
  let a = xin[lane % p.nx] + vec4<f32>(f32(words[lane % p.nw] & 0u)); // every binding used
  let b = win[lane % p.nw];
  ${lines.join("\n  ")}
  for (var it = 0u; it < p.iters; it++) {
    ${body.join("\n    ")}
  }
${store(Array.from({ length: chains }, (_, i) => `acc${i}`))}`,
    };
  }

  const accs: string[] = [], pre: string[] = [], loop: string[] = [];
  for (let q = 0; q < TM4; q++) {
    for (let r = 0; r < R; r++) {
      accs.push(`acc_${q}_${r}`);
      pre.push(`var acc_${q}_${r} = vec4<f32>(0.0);`);
    }
  }
  let wgDecl = "";
  if (operands === "reg") {
    const src = source === "wg"
      ? "wid.x"
      : source === "warp"
      ? `wid.x * ${MICRO_THREADS / 32}u + warp`
      : "gid";
    for (let kk = 0; kk < 4; kk++) {
      for (let q = 0; q < TM4; q++) {
        pre.push(`let x${kk}_${q} = xin[(lane + ${32 * (kk * TM4 + q)}u) % p.nx];`);
      }
    }
    for (let rp = 0; rp < R / 2; rp++) {
      pre.push(`let v${rp} = win[(warp * ${R / 2}u + ${rp}u) % p.nw];`);
    }
    if (form === "dense") {
      for (let r = 0; r < R; r++) pre.push(`let d${r} = win[(${r}u + 7u * warp) % p.nw];`);
    }
    for (let b = 0; b < RB; b++) pre.push(`var cw${b} = words[(${src} * ${RB}u + ${b}u) % p.nw];`);
    if (form === "index") { // token-major copies: vec4 over k of one token
      for (let q = 0; q < TM4; q++) {
        for (let t = 0; t < 4; t++) {
          pre.push(
            `let xt${q}_${t} = vec4<f32>(${[0, 1, 2, 3].map((k) => `x${k}_${q}.${COMP[t]}`)});`,
          );
        }
      }
    }
    if (form === "array") {
      for (let q = 0; q < TM4; q++) {
        pre.push(`var xa${q} = array<vec4<f32>, 4>(x0_${q}, x1_${q}, x2_${q}, x3_${q});`);
      }
    }
  } else {
    const W = MICRO_THREADS / 32;
    wgDecl = `var<workgroup> Xs: array<vec4<f32>, ${4 * G * BA4}>;
var<workgroup> Ws: array<vec4<f32>, ${G * W * (form === "dense" ? R : R / 2)}>;
var<workgroup> Cs: array<u32, ${G * W * RB}>;`;
    pre.push(
      `for (var i = lid; i < ${
        4 * G * BA4
      }u; i += ${MICRO_THREADS}u) { Xs[i] = xin[(i + wid.x) % p.nx]; }`,
      `for (var i = lid; i < ${
        G * W * (form === "dense" ? R : R / 2)
      }u; i += ${MICRO_THREADS}u) { Ws[i] = win[(i + wid.x) % p.nw]; }`,
      `for (var i = lid; i < ${
        G * W * RB
      }u; i += ${MICRO_THREADS}u) { Cs[i] = words[(i + wid.x) % p.nw]; }`,
      `workgroupBarrier();`,
    );
    loop.push(`let g = it % ${G}u;`);
    if (form !== "gather") {
      for (let kk = 0; kk < 4; kk++) {
        for (let q = 0; q < TM4; q++) {
          loop.push(`let x${kk}_${q} = Xs[(4u * g + ${kk}u) * ${BA4}u + ${32 * q}u + lane];`);
        }
      }
    }
    if (form === "dense") {
      for (let r = 0; r < R; r++) loop.push(`let d${r} = Ws[(g * ${W}u + warp) * ${R}u + ${r}u];`);
    } else {
      for (let rp = 0; rp < R / 2; rp++) {
        loop.push(`let v${rp} = Ws[(g * ${W}u + warp) * ${R / 2}u + ${rp}u];`);
      }
      for (let b = 0; b < RB; b++) {
        loop.push(`let cw${b} = Cs[(g * ${W}u + warp) * ${RB}u + ${b}u];`);
      }
    }
  }

  const code = (r: number) => `((cw${r >> 3} >> ${4 * (r & 7)}u) & 15u)`;
  const v0 = (r: number) => `v${r >> 1}.${COMP[2 * (r & 1)]}`;
  const v1 = (r: number) => `v${r >> 1}.${COMP[2 * (r & 1) + 1]}`;
  const x = (k: number, q: number) => `x${k}_${q}`;
  const acc = (r: number) => (q: number) => `acc_${q}_${r}`;
  const fma = (a: string, w: string, r: number, q: number) =>
    `acc_${q}_${r} = fma(${a}, vec4<f32>(${w}), acc_${q}_${r});`;
  for (let r = 0; r < R; r++) {
    const quads = Array.from({ length: TM4 }, (_, q) => q);
    if (form === "switch" || form === "select" || form === "gather") {
      loop.push(...pickRow24(form, {
        code: code(r),
        v0: v0(r),
        v1: v1(r),
        quads: TM4,
        x,
        xAt: (k, q) => `Xs[(4u * g + ${k}) * ${BA4}u + ${32 * q}u + lane]`,
        acc: acc(r),
      }));
    } else if (form === "dense") {
      for (const q of quads) {
        for (let k = 0; k < 4; k++) loop.push(fma(x(k, q), `d${r}.${COMP[k]}`, r, q));
      }
    } else if (form === "mask") { // the row's weights expanded to four (zeros elsewhere)
      loop.push(
        `{ let c_ = ${code(r)}; let i0_ = c_ & 3u; let i1_ = c_ >> 2u;`,
        `let e = vec4<f32>(select(0.0, ${v0(r)}, i0_ == 0u), ` +
          `select(select(0.0, ${v0(r)}, i0_ == 1u), ${v1(r)}, i1_ == 1u), ` +
          `select(select(0.0, ${v0(r)}, i0_ == 2u), ${v1(r)}, i1_ == 2u), ` +
          `select(0.0, ${v1(r)}, i1_ == 3u));`,
      );
      for (const q of quads) {
        for (let k = 0; k < 4; k++) loop.push(fma(x(k, q), `e.${COMP[k]}`, r, q));
      }
      loop.push(`}`);
    } else if (form === "index" || form === "array") {
      loop.push(`{ let c_ = ${code(r)}; let i0_ = c_ & 3u; let i1_ = c_ >> 2u;`);
      for (const q of quads) {
        const pick = (i: string) =>
          form === "array"
            ? `xa${q}[${i}]`
            : `vec4<f32>(${[0, 1, 2, 3].map((t) => `xt${q}_${t}[${i}]`)})`;
        loop.push(fma(pick("i0_"), v0(r), r, q), fma(pick("i1_"), v1(r), r, q));
      }
      loop.push(`}`);
    } else if (form === "switch-pid") { // nibbles hold pattern ids 0..5, dense case labels
      loop.push(`switch (${code(r)}) {`);
      CODES24.forEach((c, n) => {
        const [i0, i1] = [c & 3, c >> 2];
        const body = quads.map((q) =>
          fma(x(i0, q), v0(r), r, q) + " " + fma(x(i1, q), v1(r), r, q)
        );
        loop.push(`  ${n === 5 ? "default" : `case ${n}u`}: { ${body.join(" ")} }`);
      });
      loop.push(`}`);
    } else if (form === "switch-pair" && r % 2 === 0) { // one branch for two rows: 36 cases
      loop.push(`switch (${code(r)} | (${code(r + 1)} << 4u)) {`);
      CODES24.forEach((ca, na) =>
        CODES24.forEach((cb, nb) => {
          const body = quads.map((q) =>
            [
              fma(x(ca & 3, q), v0(r), r, q),
              fma(x(ca >> 2, q), v1(r), r, q),
              fma(x(cb & 3, q), v0(r + 1), r + 1, q),
              fma(x(cb >> 2, q), v1(r + 1), r + 1, q),
            ].join(" ")
          );
          const last = na === 5 && nb === 5;
          loop.push(`  ${last ? "default" : `case ${ca | (cb << 4)}u`}: { ${body.join(" ")} }`);
        })
      );
      loop.push(`}`);
    }
  }
  if (operands === "reg") { // next group's codes: one nibble on (8 rows per funnel shift)
    for (let b = 0; b < RB; b++) loop.push(`cw${b} = (cw${b} >> 4u) | (cw${b} << 28u);`);
  }
  return {
    key,
    code: `${head}
${wgDecl}
${entry}
  ${pre.join("\n  ")}
  for (var it = 0u; it < p.iters; it++) {
    ${loop.join("\n    ")}
  }
${store(accs)}`,
  };
}
