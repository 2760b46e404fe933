// The `kiln` command (bin/kiln.cjs): kiln train | eval | generate | sched plot.
import { KilnError } from '../errors';
import { parseArgs } from './args';
import { evalCommand, generateCommand, schedPlotCommand, trainCommand } from './commands';

export const USAGE = `usage:
  kiln train --config cfg.json [--out DIR] [--steps N] [--no-progress]
  kiln train --out DIR --resume            continue a run from its latest checkpoint
  kiln eval --run DIR [--batches N] [--layers 0,1,3]
  kiln generate --run DIR --prompt "text" [--max-tokens 200] [--temperature 0.8] [--top-k K] [--top-p 0.95] [--seed 0] [--layers 0,1,3]
  kiln sched plot (--config cfg.json | --spec '{"kind":"wsd",...}' --steps N) [--out schedule.svg] [--title T]`;

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const [cmd, sub] = args.positional;
  try {
    if (cmd === 'train') await trainCommand(args);
    else if (cmd === 'eval') evalCommand(args);
    else if (cmd === 'generate') generateCommand(args);
    else if (cmd === 'sched' && sub === 'plot') schedPlotCommand(args);
    else {
      process.stderr.write(`${USAGE}\n`);
      return cmd === undefined || cmd === 'help' || args.options.has('help') ? 0 : 2;
    }
    return 0;
  } catch (e) {
    if (e instanceof KilnError) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
