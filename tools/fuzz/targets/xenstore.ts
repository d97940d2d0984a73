/**
 * `xenstore`: split byte streams into the wire parser, and operation
 * sequences by several domains against the simulated xenstored, checked
 * against the model (transactions and watches included).
 */
import * as fc from 'fast-check';
import { XsParser } from '../../../src/xenstore/wire.js';
import { XenstoreServer } from '../../../src/xenstore/server/server.js';
import type { FuzzHarness, FuzzTarget } from '../target.js';
import { toJson } from '../serialize.js';
import { runWireCase, wireCase, type WireCase } from './xenstore-wire.js';
import { formatRawCase, rawCase, runRawCase, type RawCase } from './xenstore-raw.js';
import { formatOpsCase, runOpsCase, xsOpsCase, xsStats, type XsOpsCase } from './xenstore-ops.js';

export type XenstoreCase = WireCase | XsOpsCase | RawCase;

export const xenstoreTarget: FuzzTarget<XenstoreCase> = {
  name: 'xenstore',
  summary: 'split byte streams into the xenstore wire parser; multi-domain operation sequences (transactions, watches) vs a model; hostile raw clients against the simulated xenstored',
  caseDeadlineMs: 5000,
  async setup(): Promise<FuzzHarness<XenstoreCase>> {
    return {
      arbitrary: fc.oneof({ weight: 1, arbitrary: wireCase }, { weight: 3, arbitrary: xsOpsCase }, { weight: 2, arbitrary: rawCase }) as fc.Arbitrary<XenstoreCase>,
      coverage: () => [...xsStats].filter(([k]) => /^(tx|watch|write|read) /.test(k) || k.startsWith('txCommit')).sort().map(([k, v]) => `${k}: ${v}`).join('; '),
      format: (c) => (c.k === 'ops' ? `operations:\n${formatOpsCase(c)}` : c.k === 'raw' ? formatRawCase(c) : `wire stream:\n${toJson(c)}`),
      async runCase(c: XenstoreCase): Promise<void> {
        if (c.k === 'wire') return runWireCase(c, XsParser);
        if (c.k === 'raw') return runRawCase(c, (log) => new XenstoreServer({ log }));
        return runOpsCase(c, () => new XenstoreServer());
      },
    };
  },
};
