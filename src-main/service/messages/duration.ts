/**
 * ISO 8601 durations as removeMessageTask writes its delays (P7D, PT12H, P1M, P1Y2M3DT4H ...), and
 * counting one back from a moment, calendar-aware as Maarch RM (PHP DateInterval) does.
 */

export interface Duration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
}

const DURATION = /^P(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;

/**
 * Parses an ISO 8601 duration, or says why it is not one. A fraction is allowed on the last
 * component only; at least one component is required, and 'T' must be followed by one.
 */
export function parseDuration(text: string): { duration: Duration } | { error: string } {
  const s = text.trim();
  if (s !== text) return { error: `'${text}' has spaces around it` };
  const m = DURATION.exec(s);
  if (!m || s === 'P' || s.endsWith('T')) {
    if (s.startsWith('-')) return { error: `'${text}' is negative; a delay counts back from now and must be positive` };
    return { error: `'${text}' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)` };
  }
  const parts = m.slice(1).map((v) => (v === undefined ? undefined : Number(v.replace(',', '.'))));
  const given = parts.map((v, i) => (v === undefined ? -1 : i)).filter((i) => i >= 0);
  const fractional = given.filter((i) => !Number.isInteger(parts[i]));
  if (fractional.length && (fractional.length > 1 || fractional[0] !== given[given.length - 1])) {
    return { error: `'${text}': only the last component of a duration may have a fraction` };
  }
  if (parts.some((v) => v !== undefined && v > 1e6)) return { error: `'${text}': a component is too large` };
  const [years, months, weeks, days, hours, minutes, seconds] = parts.map((v) => v ?? 0);
  return { duration: { years, months, weeks, days, hours, minutes, seconds } };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/**
 * `now` minus the duration, in UTC. Years and months move the calendar (and clamp to the end of a
 * shorter month: 31 March minus P1M is 28 or 29 February, never 3 March: a purge never counts
 * back less than the delay); weeks, days and time are exact lengths.
 */
export function subtractDuration(now: Date, d: Duration): Date {
  const wholeYears = Math.trunc(d.years);
  const totalMonths = wholeYears * 12 + Math.trunc(d.months) + Math.round((d.years - wholeYears) * 12);
  let year = now.getUTCFullYear();
  let month = now.getUTCMonth() - totalMonths;
  year += Math.floor(month / 12);
  month = ((month % 12) + 12) % 12;
  const day = Math.min(now.getUTCDate(), daysInMonth(year, month));
  const base = Date.UTC(year, month, day, now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds(), now.getUTCMilliseconds());
  // a fraction of a month counts as 30 days (only possible on the last component)
  const monthFractionMs = (d.months - Math.trunc(d.months)) * 30 * 86_400_000;
  const exactMs = ((d.weeks * 7 + d.days) * 24 * 3600 + d.hours * 3600 + d.minutes * 60 + d.seconds) * 1000 + monthFractionMs;
  return new Date(base - Math.round(exactMs));
}
