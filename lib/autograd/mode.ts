// Whether ops record the autograd graph (on by default; off inside noGrad and
// while backward runs).
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

function withMode<T>(on: boolean, fn: () => T): T {
  const before = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = before;
  }
}

/** Runs fn without recording gradients (inference, parameter updates). */
export function noGrad<T>(fn: () => T): T {
  return withMode(false, fn);
}

/** Runs fn with gradient recording on (inside a noGrad region). */
export function enableGrad<T>(fn: () => T): T {
  return withMode(true, fn);
}
