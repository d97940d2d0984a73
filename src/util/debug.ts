/**
 * The debug log, in the style of the `debug` package: namespaces such as
 * xenpv:blkfront, xenpv:blkback, xenpv:xenstore, xenpv:evtchn, turned on by
 *
 *   DEBUG=xenpv:*            (comma- or space-separated patterns; * matches
 *   DEBUG=xenpv:*,-xenpv:evtchn    anything; a leading - excludes)
 *
 * in the environment when this module loads, or by enableDebug(patterns) at
 * run time. enableDebug also sets process.env.DEBUG, so worker threads (the
 * simulation's backend domains) started afterwards log the same namespaces.
 * Lines go to stderr: `<ISO time> xenpv:blkfront <message>`.
 *
 * Zero cost when off: a logger is a function with an `enabled` flag that
 * call sites test first, so no message string is built and nothing is
 * called on a hot path:
 *
 *   if (log.enabled) log(`notify port ${port}`);
 */
export interface DebugLogger {
  (message: string): void;
  readonly namespace: string;
  readonly enabled: boolean;
}

interface MutableLogger extends DebugLogger {
  enabled: boolean;
}

const loggers = new Map<string, MutableLogger>();
let include: RegExp[] = [];
let exclude: RegExp[] = [];
let sink: ((line: string) => void) | undefined;

function compile(patterns: string): void {
  include = [];
  exclude = [];
  for (const p of patterns.split(/[\s,]+/).filter(Boolean)) {
    const neg = p.startsWith('-');
    const re = new RegExp(`^${(neg ? p.slice(1) : p).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*?')}$`);
    (neg ? exclude : include).push(re);
  }
}

function isEnabled(ns: string): boolean {
  return include.some((r) => r.test(ns)) && !exclude.some((r) => r.test(ns));
}

/** The logger for `namespace` (one object per namespace). */
export function debug(namespace: string): DebugLogger {
  let l = loggers.get(namespace);
  if (!l) {
    const fn = ((message: string) => {
      if (!fn.enabled) return;
      const line = `${new Date().toISOString()} ${namespace} ${message}`;
      if (sink) sink(line);
      else process.stderr.write(line + '\n');
    }) as MutableLogger;
    Object.defineProperty(fn, 'namespace', { value: namespace });
    fn.enabled = isEnabled(namespace);
    l = fn;
    loggers.set(namespace, l);
  }
  return l;
}

/** Turn on the namespaces `patterns` names (replacing what DEBUG said); '' turns everything off. */
export function enableDebug(patterns: string): void {
  compile(patterns);
  if (patterns) process.env['DEBUG'] = patterns;
  else delete process.env['DEBUG'];
  for (const [ns, l] of loggers) l.enabled = isEnabled(ns);
}

/** Send log lines to `fn` instead of stderr (tests); undefined restores stderr. */
export function setDebugSink(fn: ((line: string) => void) | undefined): void {
  sink = fn;
}

compile(process.env['DEBUG'] ?? '');
