// The password generator: uniform choices from crypto.getRandomValues, by
// rejection sampling (never `random % n`, which favours the first characters,
// and never Math.random). Each chosen class appears at least once; a candidate
// without one is thrown away whole, so the result is uniform over all
// passwords that satisfy the rule.

export const CLASSES = Object.freeze({
  lower: "abcdefghijklmnopqrstuvwxyz",
  upper: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  digits: "0123456789",
  symbols: "!#$%&()*+,-./:;<=>?@[]^_{|}~",
});
export const MIN_LENGTH = 4;
export const MAX_LENGTH = 256;

/** An unbiased integer in [0, n) (n <= 2^32). */
export function randomIndex(n) {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError("n must be 1..2^32");
  const limit = Math.floor(2 ** 32 / n) * n; // values at or above it would favour small results
  const buf = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(buf);
    if (buf[0] < limit) return buf[0] % n;
  }
}

/**
 * A password of `length` characters drawn from the chosen classes
 * ({lower, upper, digits, symbols}: booleans), each present at least once.
 */
export function generatePassword({ length = 20, lower = true, upper = true, digits = true, symbols = true } = {}) {
  const chosen = Object.entries({ lower, upper, digits, symbols })
    .filter(([, on]) => on)
    .map(([name]) => CLASSES[name]);
  if (chosen.length === 0) throw new RangeError("choose at least one kind of character");
  if (!Number.isInteger(length) || length < Math.max(MIN_LENGTH, chosen.length) || length > MAX_LENGTH) {
    throw new RangeError(`the length must be ${Math.max(MIN_LENGTH, chosen.length)} to ${MAX_LENGTH}`);
  }
  const alphabet = chosen.join("");
  for (;;) {
    let out = "";
    for (let i = 0; i < length; i++) out += alphabet[randomIndex(alphabet.length)];
    if (chosen.every((set) => [...out].some((ch) => set.includes(ch)))) return out;
  }
}

/** Bits of entropy of a generated password (upper bound: log2(alphabet^length)). */
export function entropyBits({ length = 20, lower = true, upper = true, digits = true, symbols = true } = {}) {
  const n = Object.entries({ lower, upper, digits, symbols })
    .filter(([, on]) => on)
    .reduce((sum, [name]) => sum + CLASSES[name].length, 0);
  return n > 0 ? Math.floor(length * Math.log2(n)) : 0;
}
