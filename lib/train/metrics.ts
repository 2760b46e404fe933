// The trainer's record: one JSON line per step (and per evaluation) in
// metrics.jsonl, and SVG curves beside it (loss.svg: train and validation
// loss; lr.svg; grad-norm.svg).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lineChart } from '../plot/line-chart';

export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  clipped: boolean;
  skipped: boolean;
  tokens: number;
  tokensPerSec: number;
  elapsedSec: number;
  evalLoss?: number;
  evalPerplexity?: number;
}

export class MetricsLog {
  readonly records: StepRecord[] = [];
  private readonly file: string | null;

  constructor(readonly dir: string | null, append: boolean) {
    this.file = dir ? path.join(dir, 'metrics.jsonl') : null;
    if (dir) {
      fs.mkdirSync(dir, { recursive: true });
      if (!append) fs.writeFileSync(this.file!, '');
      else if (fs.existsSync(this.file!)) {
        for (const line of fs.readFileSync(this.file!, 'utf8').split('\n')) {
          if (line.trim() === '') continue;
          try {
            this.records.push(JSON.parse(line) as StepRecord);
          } catch {
            // a torn last line from a killed run: skip it
          }
        }
      }
    }
  }

  /** Drops records after `step` (a resumed run rewrites them). */
  truncate(step: number): void {
    const keep = this.records.filter((r) => r.step <= step);
    this.records.length = 0;
    this.records.push(...keep);
    if (this.file) fs.writeFileSync(this.file, keep.map((r) => JSON.stringify(r)).join('\n') + (keep.length ? '\n' : ''));
  }

  add(r: StepRecord): void {
    this.records.push(r);
    if (this.file) fs.appendFileSync(this.file, JSON.stringify(r) + '\n');
  }

  /** Writes loss.svg, lr.svg and grad-norm.svg into the log folder. */
  plot(): void {
    if (!this.dir || this.records.length === 0) return;
    const steps = this.records.map((r) => r.step);
    const evals = this.records.filter((r) => r.evalLoss !== undefined);
    lineChart(
      [
        { label: 'train loss', x: steps, y: this.records.map((r) => (r.skipped ? NaN : r.loss)) },
        ...(evals.length ? [{ label: 'validation loss', x: evals.map((r) => r.step), y: evals.map((r) => r.evalLoss!) }] : []),
      ],
      { path: path.join(this.dir, 'loss.svg'), title: 'Loss', yLabel: 'cross entropy (nats/token)', yFromZero: false },
    );
    lineChart([{ label: 'learning rate', x: steps, y: this.records.map((r) => r.lr) }], { path: path.join(this.dir, 'lr.svg'), title: 'Learning rate', yLabel: 'lr' });
    lineChart([{ label: 'gradient norm (before clipping)', x: steps, y: this.records.map((r) => r.gradNorm) }], { path: path.join(this.dir, 'grad-norm.svg'), title: 'Gradient norm', yLabel: '||g||_2', yFromZero: false });
  }
}
