// Composition (schedules.md principle 4): seq (each part sees a local step
// t - boundary), pointwise mul / min / max, and relative (a factor times the
// parameter group's base lr).
import type { Combine, Family, Fields, Normalizer, Relative, Schedule, Seq, SeqPart } from './spec';

const at = (f: Fields, field: string): string => `${f.path ? f.path + '.' : ''}${field}`;

export const seqFamily: Family<Seq> = {
  normalize: (f, sub) => {
    const raw = f.any('parts');
    if (!Array.isArray(raw) || raw.length === 0) f.fail('parts', 'a non-empty array of { schedule, steps }', raw);
    const parts = raw as unknown[];
    return {
      kind: 'seq',
      parts: parts.map((p: unknown, i): SeqPart => {
        const where = `parts[${i}]`;
        if (p === null || typeof p !== 'object' || Array.isArray(p)) f.fail(where, 'an object { schedule, steps }', p);
        const { schedule, steps, ...rest } = p as Record<string, unknown>;
        const unknown = Object.keys(rest).filter((k) => rest[k] !== undefined);
        if (unknown.length) f.error(`unknown field '${unknown[0]}' in ${where}`);
        const last = i === parts.length - 1;
        if (steps === undefined && !last) f.fail(`${where}.steps`, 'an integer >= 0 (only the last part may leave it out)', steps);
        if (steps !== undefined && (typeof steps !== 'number' || !Number.isSafeInteger(steps) || steps < 0)) f.fail(`${where}.steps`, 'an integer >= 0', steps);
        const s = sub(schedule, at(f, `${where}.schedule`));
        return steps === undefined ? { schedule: s } : { schedule: s, steps: steps as number };
      }),
    };
  },
  at: (s, t, ctx, sub) => {
    let start = 0;
    const last = s.parts.length - 1;
    for (let i = 0; i < last; ++i) {
      const n = s.parts[i].steps as number;
      if (t < start + n) return sub(s.parts[i].schedule, t - start, ctx);
      start += n;
    }
    // The last part runs on past its own length (its own behaviour there: hold, cycle, ...).
    return sub(s.parts[last].schedule, t - start, ctx);
  },
};

function normalizeList(f: Fields, sub: Normalizer): Schedule[] {
  const raw = f.any('of');
  if (!Array.isArray(raw) || raw.length === 0) f.fail('of', 'a non-empty array of schedules or numbers', raw);
  return (raw as unknown[]).map((x: unknown, i) => (typeof x === 'number' ? sub({ kind: 'constant', value: x }, at(f, `of[${i}]`)) : sub(x, at(f, `of[${i}]`))));
}

function combineFamily(kind: 'mul' | 'min' | 'max', op: (a: number, b: number) => number): Family<Combine> {
  return {
    normalize: (f, sub) => ({ kind, of: normalizeList(f, sub) }),
    at: (s, t, ctx, sub) => {
      let v = sub(s.of[0], t, ctx);
      for (let i = 1; i < s.of.length; ++i) v = op(v, sub(s.of[i], t, ctx));
      return v;
    },
  };
}

export const mulFamily = combineFamily('mul', (a, b) => a * b);
export const minFamily = combineFamily('min', Math.min);
export const maxFamily = combineFamily('max', Math.max);

export const relativeFamily: Family<Relative> = {
  normalize: (f, sub) => ({ kind: 'relative', schedule: sub(f.any('schedule'), at(f, 'schedule')) }),
  // base * f(t): the schedule gives factors; LRScheduler passes each group's base lr.
  at: (s, t, ctx, sub) => (ctx.base ?? 1) * sub(s.schedule, t, { tokens: ctx.tokens }),
};
