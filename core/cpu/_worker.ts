/**
 * The CPU backend's helper thread (a module Worker): runs one `_kernels.ts` kernel on the range it
 * is sent (typed arrays over shared memory), stores the call's number in the control word and
 * wakes the caller. After `IDLE_MS` without work it closes itself, so an idle helper never keeps
 * the process alive; the control word's state says whether it is still there. Private to
 * `core/cpu/`.
 *
 * @module
 */

import { CLOSED, IDLE, type KernelName, KERNELS, SEQ, STATE } from "./_kernels.ts";

const IDLE_MS = 2000;

/** One request: the kernel, its arguments (the range last), the control words and the call's number. */
export interface KernelCall {
  kernel: KernelName;
  args: unknown[];
  control: Int32Array;
  seq: number;
}

let idleTimer: ReturnType<typeof setTimeout> | undefined;
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<KernelCall>) => void) | null;
  close(): void;
};
scope.onmessage = (e) => {
  const call = e.data;
  clearTimeout(idleTimer);
  let result = call.seq;
  try {
    (KERNELS[call.kernel] as (...a: unknown[]) => void)(...call.args);
  } catch {
    result = -call.seq; // the caller reruns the range itself
  }
  Atomics.store(call.control, STATE, IDLE);
  Atomics.store(call.control, SEQ, result);
  Atomics.notify(call.control, SEQ);
  idleTimer = setTimeout(() => {
    // Close unless the caller claimed this helper for a call in the meantime.
    if (Atomics.compareExchange(call.control, STATE, IDLE, CLOSED) === IDLE) scope.close();
  }, IDLE_MS);
};
