// Small dense float64 linear algebra for the controllers (GP, least squares):
// row-major square matrices as number[][].

/** Lower Cholesky factor of a symmetric positive-definite matrix, or null when it is not (numerically). */
export function cholesky(a: readonly (readonly number[])[]): number[][] | null {
  const n = a.length;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; ++i) {
    for (let j = 0; j <= i; ++j) {
      let s = a[i][j];
      for (let k = 0; k < j; ++k) s -= l[i][k] * l[j][k];
      if (i === j) {
        if (!(s > 0)) return null;
        l[i][i] = Math.sqrt(s);
      } else l[i][j] = s / l[j][j];
    }
  }
  return l;
}

/** Solves L y = b (L lower triangular). */
export function forward(l: readonly (readonly number[])[], b: readonly number[]): number[] {
  const y = new Array<number>(b.length);
  for (let i = 0; i < b.length; ++i) {
    let s = b[i];
    for (let k = 0; k < i; ++k) s -= l[i][k] * y[k];
    y[i] = s / l[i][i];
  }
  return y;
}

/** Solves L^T x = y (L lower triangular). */
export function backward(l: readonly (readonly number[])[], y: readonly number[]): number[] {
  const n = y.length;
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; --i) {
    let s = y[i];
    for (let k = i + 1; k < n; ++k) s -= l[k][i] * x[k];
    x[i] = s / l[i][i];
  }
  return x;
}

/** Solves A x = b by Gaussian elimination with partial pivoting; null when A is singular. */
export function solve(a: readonly (readonly number[])[], b: readonly number[]): number[] | null {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; ++c) {
    let p = c;
    for (let r = c + 1; r < n; ++r) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (!(Math.abs(m[p][c]) > 0)) return null;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = c + 1; r < n; ++r) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; ++k) m[r][k] -= f * m[c][k];
    }
  }
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; --i) {
    let s = m[i][n];
    for (let k = i + 1; k < n; ++k) s -= m[i][k] * x[k];
    x[i] = s / m[i][i];
  }
  return x.every(Number.isFinite) ? x : null;
}

/** Least squares: argmin ||X beta - y||^2 via the normal equations (few, well-scaled columns). */
export function leastSquares(x: readonly (readonly number[])[], y: readonly number[], w?: readonly number[]): number[] | null {
  const p = x[0].length;
  const xtx = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const xty = new Array<number>(p).fill(0);
  x.forEach((row, i) => {
    const wi = w ? w[i] : 1;
    for (let a = 0; a < p; ++a) {
      xty[a] += wi * row[a] * y[i];
      for (let b = 0; b < p; ++b) xtx[a][b] += wi * row[a] * row[b];
    }
  });
  return solve(xtx, xty);
}
