/**
 * Every case of the BagIt conformance suite in ../shared/fixtures gives its expected outcome.
 * The folders are walked, so a case added there is tested without touching this file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashFileInProcess, validateBag } from '../../src-main/service/intake/bagit';
import { fixturesDir } from '../helpers/util';

/** The specific rule each known invalid case must be reported with. */
const EXPECTED_ERRORS: Record<string, string[]> = {
  'bom-in-bagit.txt': ['bom-in-bagit-txt'],
  'corrupt-data-file': ['checksum-mismatch'],
  'extra-file-in-bag': ['payload-file-not-in-manifest'],
  'missing-bagit.txt': ['bagit-txt-missing'],
  'out-of-scope-file-paths-using-dot-notation': ['manifest-path-outside-bag', 'manifest-path-invalid'],
  'same-filename-listed-twice-with-different-hashes': ['duplicate-manifest-entry'],
};
const EXPECTED_WARNINGS: Record<string, string[]> = {
  'made-with-md5sum-tools': ['md5sum-binary-marker'],
};

const cases: Array<{ version: string; expectation: string; name: string; dir: string }> = [];
for (const version of fs.readdirSync(fixturesDir).sort()) {
  const vdir = path.join(fixturesDir, version);
  if (!fs.statSync(vdir).isDirectory()) continue;
  for (const expectation of fs.readdirSync(vdir).sort()) {
    const edir = path.join(vdir, expectation);
    if (!fs.statSync(edir).isDirectory()) continue;
    for (const name of fs.readdirSync(edir).sort()) {
      const dir = path.join(edir, name);
      if (fs.statSync(dir).isDirectory()) cases.push({ version, expectation, name, dir });
    }
  }
}

describe('BagIt conformance suite', () => {
  it('finds the cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.expectation))).toEqual(new Set(['valid', 'invalid', 'warning']));
  });

  for (const c of cases) {
    it(`${c.version}/${c.expectation}/${c.name}`, async () => {
      const report = await validateBag(c.dir, { hashFile: hashFileInProcess });
      const errors = report.errors.map((e) => e.rule);
      if (c.expectation === 'valid') {
        expect(report.errors, JSON.stringify(report.errors, null, 1)).toEqual([]);
        expect(report.valid).toBe(true);
      } else if (c.expectation === 'invalid') {
        expect(report.valid).toBe(false);
        for (const rule of EXPECTED_ERRORS[c.name] ?? []) expect(errors, `rule ${rule}`).toContain(rule);
        for (const e of report.errors) expect(e.message.length).toBeGreaterThan(10);
      } else {
        expect(report.errors, JSON.stringify(report.errors, null, 1)).toEqual([]);
        expect(report.valid).toBe(true);
        expect(report.warnings.length).toBeGreaterThan(0);
        for (const rule of EXPECTED_WARNINGS[c.name] ?? []) expect(report.warnings.map((w) => w.rule)).toContain(rule);
      }
    });
  }
});
