// Command-line arguments: positional words, then --name value / --flag.
import { ValueError } from '../errors';

export interface Args {
  positional: string[];
  options: Map<string, string | true>;
}

export function parseArgs(argv: readonly string[]): Args {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) options.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) options.set(a.slice(2), argv[++i]);
      else options.set(a.slice(2), true);
    } else positional.push(a);
  }
  return { positional, options };
}

export function str(args: Args, name: string, def?: string): string | undefined {
  const v = args.options.get(name);
  if (v === true) throw new ValueError(`kiln: --${name} needs a value`);
  return v ?? def;
}

export function num(args: Args, name: string, def?: number): number | undefined {
  const v = str(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ValueError(`kiln: --${name} must be a number, got '${v}'`);
  return n;
}

export const flag = (args: Args, name: string): boolean => args.options.get(name) === true || args.options.get(name) === 'true';
