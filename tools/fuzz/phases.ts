/**
 * Where a driver case's wall time goes, for `XENPV_FUZZ_PHASES=1`: a target
 * marks the end of each phase, and the run's `reached:` line gets the mean
 * wall and CPU milliseconds per case of every phase (on a loaded machine
 * wall time is mostly waiting for a core; the gap between the two is what
 * a phase waits on). Off (one branch per mark) otherwise.
 */
export class Phases {
  readonly enabled = process.env.XENPV_FUZZ_PHASES === '1';
  private readonly totals = new Map<string, { wall: number; cpu: number }>();
  private cases = 0;
  private last = 0;
  private lastCpu = 0;
  private readonly ops = new Map<string, { n: number; wall: number }>();

  /** A timestamp for `op` (0 when off). */
  now(): number {
    return this.enabled ? performance.now() : 0;
  }

  /** One step of kind `kind` that started at `t0` (from now()) ended. */
  op(kind: string, t0: number): void {
    if (!this.enabled) return;
    const o = this.ops.get(kind) ?? { n: 0, wall: 0 };
    o.n++;
    o.wall += performance.now() - t0;
    this.ops.set(kind, o);
  }

  /** A case starts. */
  start(): void {
    if (!this.enabled) return;
    this.cases++;
    this.last = performance.now();
    this.lastCpu = cpuMs();
  }

  /** The phase `name` ended now. */
  mark(name: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    const cpu = cpuMs();
    const t = this.totals.get(name) ?? { wall: 0, cpu: 0 };
    t.wall += now - this.last;
    t.cpu += cpu - this.lastCpu;
    this.totals.set(name, t);
    this.last = now;
    this.lastCpu = cpu;
  }

  /** `phase ms/case wall/cpu: a 1.20/0.90, ...` (empty when off or no case ran). */
  summary(): string {
    if (!this.enabled || this.cases === 0) return '';
    const f = (v: number): string => (v / this.cases).toFixed(2);
    const all = [...this.totals.values()].reduce((a, t) => ({ wall: a.wall + t.wall, cpu: a.cpu + t.cpu }), { wall: 0, cpu: 0 });
    const ops = [...this.ops].map(([k, o]) => `${k} ${o.n}x${(o.wall / o.n).toFixed(2)}`).join(', ');
    return `; phase ms/case wall/cpu: ${[...this.totals].map(([k, t]) => `${k} ${f(t.wall)}/${f(t.cpu)}`).join(', ')}; total ${f(all.wall)}/${f(all.cpu)}` +
      (ops ? `; step count x mean wall ms: ${ops}` : '');
  }
}

/** This thread's process CPU time (user + system), ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
