/**
 * The metadata text syntax, case by case as libdm-config.c's tokenizer and
 * parser define it (the expected values are written here from that code,
 * not produced by our serializer), plus round trips of the text the LVM2
 * tools wrote in the other LVM tests' style.
 */
import { describe, expect, it } from 'vitest';
import { formatConfig, isSection, parseConfig, type ConfigSection } from '../src/lvm/config.js';

const entries = (s: ConfigSection): Array<[string, unknown]> => s.entries.map((e) => [e.key, isSection(e.value) ? entries(e.value) : e.value]);

describe('LVM2 config text', () => {
  it('reads sections, integers, strings, lists and comments', () => {
    const t = parseConfig(`# leading comment
vg0 {   # after a name
\tseqno = 12
\tstatus = ["READ", "WRITE"]   # trailing
\tflags = []
\tstripes = [
\t\t"pv0", 0,
\t\t"pv1", 30
\t]
\tneg = -5
\toct = 010
\tf = 1.5
\tbare = word
\t"quoted name" { a = 'single' }
\t1st = 1
}
contents = "Text Format Volume Group"
`);
    expect(entries(t)).toEqual([
      ['vg0', [
        ['seqno', 12n],
        ['status', ['READ', 'WRITE']],
        ['flags', []],
        ['stripes', ['pv0', 0n, 'pv1', 30n]],
        ['neg', -5n],
        ['oct', 8n],
        ['f', { float: '1.5' }],
        ['bare', 'word'],
        ['quoted name', [['a', 'single']]],
        ['1st', 1n],
      ]],
      ['contents', 'Text Format Volume Group'],
    ]);
  });

  it('unescapes backslashes in double quotes only, and stops at a NUL byte', () => {
    const t = parseConfig('a = "x\\"y\\\\z"\nb = \'p\\q\'\n\0c = garbage {{{');
    expect(entries(t)).toEqual([['a', 'x"y\\z'], ['b', 'p\\q']]);
  });

  it('accepts a trailing comma and values without commas in a list', () => {
    expect(entries(parseConfig('a = [1, 2,]\nb = [1 2 "x"]'))).toEqual([['a', [1n, 2n]], ['b', [1n, 2n, 'x']]]);
  });

  it('writes what it reads: format then parse is the identity, and strings are escaped', () => {
    const text = 'vg {\n\tid = "a\\"b"\n\tn = 3\n\tl = ["pv0", 0]\n\te = []\n\tpv0 {\n\t\tx = -1\n\t}\n}\nversion = 1\n';
    const t = parseConfig(text);
    expect(formatConfig(t)).toBe(text);
    expect(parseConfig(formatConfig(t))).toEqual(t);
  });

  const bad: Array<[string, string]> = [
    ['an unterminated string', 'a = "abc'],
    ['a name without = or {', 'a 5'],
    ['a stray }', '}'],
    ['a section left open', 'vg { a = 1'],
    ['a list left open', 'a = [1, 2'],
    ['a missing value', 'a = }'],
    ['a repeated key', 'a = 1\na = 2'],
    ['an integer beyond 64 bits', 'a = 99999999999999999999'],
    ['an octal literal with 8 or 9', 'a = 019'],
  ];
  for (const [what, text] of bad) {
    it(`rejects ${what} as corrupt metadata`, () => {
      expect(() => parseConfig(text)).toThrow(expect.objectContaining({ code: 'corrupt', part: 'metadata' }));
    });
  }
});
