#!/usr/bin/env bash
# The `gpu` preset of gpt2.ts on one GPU within one command (README "GPT-2 on the H100"): the
# model is small enough that one process leaves the GPU idle while it records dispatches and waits
# for read-backs, so runs train as concurrent processes. T-SR-STE's α is selected at this size
# (alpha_select.ts --preset=gpu) while the five methods α does not touch train, one process per
# method (its seeds in order); then T-SR-STE and T-SR-STE+DF train with the selected α, one process
# per run. Every process stops at the deadline; the merge tables whatever finished.
#
# Usage: experiments/gpt2_gpu.sh OUT DEADLINE_S
#   env SEEDS (default 3, the preset's); BACKEND (default webgpu); CHECKPOINTS (default
#   /tmp/gpt2_gpu_checkpoints, kept out of OUT);
#   GPT2_ARGS / ALPHA_ARGS: extra --key=value flags for every gpt2.ts / alpha_select.ts process
#   (the dry run's tiny sizes).
set -u
out=$1
end=$(($(date +%s) + $2))
backend=${BACKEND:-webgpu}
seeds=${SEEDS:-3}
read -r -a gpt2_args <<<"${GPT2_ARGS:-}"
read -r -a alpha_args <<<"${ALPHA_ARGS:-}"
# One checkpoint per run, at its end (a fresh machine per command: nothing to resume).
common=(--preset=gpu --backend="$backend" --checkpointEvery=100000
  --checkpoints="${CHECKPOINTS:-/tmp/gpt2_gpu_checkpoints}")
left() { echo $((end - $(date +%s))); }
gpt2() { # name, flags…: one gpt2.ts process until the deadline, its log in OUT/logs/NAME.log
  local name=$1
  shift
  timeout "$(left)" deno run -A experiments/gpt2.ts "${common[@]}" "$@" "${gpt2_args[@]}" \
    --out="$out/parts/$name" >"$out/logs/$name.log" 2>&1
  echo "$name: exit $? at $(date -u +%T)"
}
mkdir -p "$out/logs" "$out/parts"
echo "start $(date -u +%T), deadline in $2 s"
(
  timeout "$(left)" deno run -A experiments/alpha_select.ts --preset=gpu --backend="$backend" \
    "${alpha_args[@]}" --out="$out/alpha_selection" >"$out/logs/alpha_select.log" 2>&1
  echo "alpha_select: exit $? at $(date -u +%T)"
  for seed in $(seq 1 "$seeds"); do
    for m in t-sr-ste t-sr-ste+df; do
      gpt2 "${m}_s$seed" --methods="$m" --seed="$seed" --seeds=1 \
        --alphaFrom="$out/alpha_selection/summary.json" &
    done
  done
  wait
) &
for m in dense ste sr-ste s-ste s-ste+fp8; do gpt2 "$m" --methods="$m" --seeds="$seeds" & done
wait
# The folders holding at least one finished run.
parts=$(find "$out/parts" -path '*/runs/*.json' -exec dirname {} \; | xargs -r dirname | sort -u |
  paste -sd, -)
deno run -A experiments/gpt2.ts "${common[@]}" "${gpt2_args[@]}" --merge="$parts" --out="$out" \
  >"$out/logs/merge.log" 2>&1
echo "merge: exit $? at $(date -u +%T)"
