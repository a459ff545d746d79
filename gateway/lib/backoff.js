// Exponential backoff: 100 ms, 200 ms, 400 ms ... capped at capMs, with
// ±20 % jitter so that a fleet of gateways does not retry in lockstep.
// attempt counts from 0.
export function backoff(attempt, capMs, random = Math.random) {
  const base = Math.min(100 * 2 ** Math.min(attempt, 30), capMs);
  return Math.round(base * (0.8 + 0.4 * random()));
}
