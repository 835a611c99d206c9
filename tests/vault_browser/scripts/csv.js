async () => {
  const c = await import("/js/csv.js");
  const text = c.toCsv([["a", "b,c", 'd"e'], ["line\nbreak", " padded ", ""]]);
  return {
    text,
    back: c.parseCsv(text),
    crlf: c.parseCsv('\uFEFFx,y\r\n1,"2\r\n3"\r\n'),
    unterminated: (() => { try { c.parseCsv('a,"b'); return null; } catch (e) { return e.name; } })(),
  };
}
