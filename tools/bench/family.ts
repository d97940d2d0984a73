/**
 * A benchmark family: one kind of measurement, its own table and SVG chart.
 * `xenpv bench` runs the families its flags name (all of them by default)
 * in the order of FAMILIES (index.ts) and writes one chart per family.
 */
import type { Output } from '../command.js';

export interface FamilyContext {
  /** Short samples: a smoke run, figures rough. */
  readonly quick: boolean;
  readonly out: Output;
  readonly signal: AbortSignal;
}

export interface FamilyReport {
  /** The family's entries, as they go into --json and bench.json. */
  readonly results: readonly unknown[];
  /** The table printed for this family. */
  readonly table: string;
  /** The family's SVG chart (written to `Family.svgFile`). */
  readonly svg: string;
}

export interface Family {
  /** Name and CLI flag: `--${name}`. */
  readonly name: string;
  /** One line for --help. */
  readonly help: string;
  /** Chart file name inside --out. */
  readonly svgFile: string;
  run(ctx: FamilyContext): Promise<FamilyReport>;
}
