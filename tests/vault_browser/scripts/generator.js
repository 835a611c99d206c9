async () => {
  const p = await import("/js/passwords.js");
  const all = p.CLASSES.lower + p.CLASSES.upper + p.CLASSES.digits + p.CLASSES.symbols;
  const counts = Object.fromEntries([...all].map((c) => [c, 0]));
  let total = 0;
  const lengths = new Set();
  let everyClass = true;
  for (let i = 0; i < 2000; i++) {
    const pw = p.generatePassword({ length: 24 });
    lengths.add(pw.length);
    for (const ch of pw) { counts[ch] += 1; total += 1; }
    everyClass &&= Object.values(p.CLASSES).every((set) => [...pw].some((ch) => set.includes(ch)));
  }
  const digitsOnly = p.generatePassword({ length: 12, lower: false, upper: false, symbols: false });
  // randomIndex(3) over many draws: each value near a third.
  const thirds = [0, 0, 0];
  for (let i = 0; i < 30000; i++) thirds[p.randomIndex(3)] += 1;
  const errors = [];
  for (const opts of [{ length: 3 }, { lower: false, upper: false, digits: false, symbols: false }, { length: 1000 }]) {
    try { p.generatePassword(opts); errors.push(null); } catch (e) { errors.push(e.name); }
  }
  return { counts, total, lengths: [...lengths], everyClass, digitsOnly, thirds, errors,
           bits: p.entropyBits({ length: 20 }), alphabet: all.length };
}
