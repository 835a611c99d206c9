async (v) => {
  const t = await import("/js/totp.js");
  const out = [];
  for (const x of v.vectors) {
    const secret = new TextEncoder().encode(x.secret_ascii);
    out.push(await t.totpCode({ secret, algorithm: x.algorithm, digits: v.digits, period: v.period }, x.time * 1000));
  }
  const uri = t.parseOtp("otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60");
  const bare = t.parseOtp(" jbsw y3dp ehpk 3pxp ");
  const errors = [];
  for (const bad of ["otpauth://hotp/x?secret=JBSWY3DP&counter=1", "not base32!", "otpauth://totp/x?secret=JBSWY3DP&digits=9",
                     "otpauth://totp/x?secret=JBSWY3DP&algorithm=MD5", ""]) {
    try { t.parseOtp(bad); errors.push(null); } catch (e) { errors.push(e.code); }
  }
  return {
    codes: out,
    uri: { issuer: uri.issuer, account: uri.account, algorithm: uri.algorithm, digits: uri.digits, period: uri.period,
           secretLength: uri.secret.length },
    bare: Array.from(bare.secret),
    left: t.secondsLeft({ period: 30 }, 59_000),
    errors,
  };
}
