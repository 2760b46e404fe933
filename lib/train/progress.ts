// A one-line progress display on a TTY: step, loss, lr, tokens/s, ETA.
export interface ProgressInfo {
  step: number;
  total: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  elapsedSec: number;
  evalLoss?: number;
}

function clock(sec: number): string {
  if (!Number.isFinite(sec)) return '--:--';
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class ProgressLine {
  private last = 0;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(p: ProgressInfo, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = 24;
    const done = Math.min(width, Math.round((p.step / p.total) * width));
    const bar = '█'.repeat(done) + '░'.repeat(width - done);
    const eta = p.step > 0 ? (p.elapsedSec / p.step) * (p.total - p.step) : NaN;
    const val = p.evalLoss !== undefined ? ` | val ${p.evalLoss.toFixed(3)}` : '';
    const line = `${bar} ${p.step}/${p.total} | loss ${p.loss.toFixed(3)}${val} | lr ${p.lr.toExponential(2)} | ${Math.round(p.tokensPerSec)} tok/s | ${clock(p.elapsedSec)} < ${clock(eta)}`;
    this.stream.write(`\r${line.slice(0, (this.stream.columns ?? 120) - 1)}\x1b[K`);
  }

  done(): void {
    this.stream.write('\n');
  }
}
