async (V) => {
  const d = await import("/js/crypto/devices.js");
  const hpke = await import("/authnet/v1/hpke.js");
  const out = { labels: d.DEVICE_LABELS, device: [], bypass: [], link: [], negative: [] };
  const devices = [];
  for (const v of V.device) {
    const dev = await d.deviceFromBytes(unhex(v.device_id), unhex(v.device_private_key), unhex(v.signing_private_key));
    devices.push(dev);
    const ctx = { userId: unhex(v.user_id), deviceId: dev.deviceId, publicKey: dev.publicKey, signingKey: dev.signingPublicKey };
    const regMsg = d.registrationMessage(ctx);
    const proof = await d.registrationProof(dev, { userId: ctx.userId });
    const loginProof = await d.loginProof(dev, { userId: ctx.userId, nonce: unhex(v.device_nonce) });
    let verified = true;
    try {
      await d.verifyProof(dev.signingPublicKey, unhex(v.registration_proof), regMsg, { deviceId: dev.deviceId });
      await d.verifyProof(dev.signingPublicKey, unhex(v.login_proof),
        d.loginMessage({ userId: ctx.userId, deviceId: dev.deviceId, nonce: unhex(v.device_nonce) }), { deviceId: dev.deviceId });
    } catch {
      verified = false;
    }
    // A new device: private keys never leave WebCrypto.
    const fresh = await d.newDevice();
    out.device.push({
      public_key: hex(dev.publicKey),
      signing_key: hex(dev.signingPublicKey),
      fingerprint: await d.deviceFingerprint(ctx),
      registration_message: hex(regMsg),
      registration_proof: hex(proof),
      login_message: hex(d.loginMessage({ userId: ctx.userId, deviceId: dev.deviceId, nonce: unhex(v.device_nonce) })),
      login_proof: hex(loginProof),
      verified,
      fresh: {
        deviceExtractable: fresh.deviceKey.privateKey.extractable,
        signingExtractable: fresh.signingKey.privateKey.extractable,
        exportError: (await errorOf(() => crypto.subtle.exportKey("pkcs8", fresh.signingKey.privateKey)))?.name,
        idBytes: fresh.deviceId.length,
      },
    });
  }
  const bypassCtx = (v) => ({ userId: unhex(v.user_id), deviceId: unhex(v.device_id), keypairVersion: v.keypair_version,
                              publicKey: unhex(v.public_key) });
  for (const v of V.bypass) {
    const ctx = bypassCtx(v);
    const kek = await d.bypassKek(unhex(v.token_factor), unhex(v.dkek));
    const sk = await x25519Private(v.private_key);
    const wrap = await d.makeDeviceWrap(kek, sk, { ...ctx, nonce: unhex(v.device_wrap_nonce) });
    const opened = await d.openDeviceWrap(kek, unhex(v.device_wrap), ctx);
    const sealed = await d.sealDkek(hpke, unhex(v.dkek), { userId: ctx.userId, deviceId: ctx.deviceId,
      publicKey: unhex(v.device_public_key), ikmE: unhex(v.ikmE) });
    const dev = await d.deviceFromBytes(unhex(v.device_id), unhex(v.device_private_key), new Uint8Array(32).fill(7));
    const dkek = await d.openDkek(hpke, unhex(v.sealed_kek), dev, { userId: ctx.userId });
    const random = await d.sealDkek(hpke, unhex(v.dkek), { userId: ctx.userId, deviceId: ctx.deviceId, publicKey: dev.publicKey });
    out.bypass.push({
      bypass_kek: hex(await d.bypassKekBytes(unhex(v.token_factor), unhex(v.dkek))),
      device_wrap_aad: hex(d.deviceWrapAad(ctx)),
      device_wrap: hex(wrap),
      opened_public_key: hex(await vc.publicKeyBytes(opened)),
      opened_extractable: opened.extractable,
      kek_info: hex(d.deviceKekInfo({ userId: ctx.userId, deviceId: ctx.deviceId, publicKey: unhex(v.device_public_key) })),
      sealed_kek: hex(sealed),
      dkek: hex(dkek),
      random_opens: hex(await d.openDkek(hpke, random, dev, { userId: ctx.userId })),
      random_differs: hex(random) !== v.sealed_kek,
    });
  }
  for (const v of V.link) {
    const { blob } = await d.sealLink(unhex(v.plaintext), { key: unhex(v.key), linkId: unhex(v.link_id), nonce: unhex(v.nonce) });
    const random = await d.sealLink(unhex(v.plaintext));
    out.link.push({
      aad: hex(d.linkAad(unhex(v.link_id))),
      blob: hex(blob),
      opened: hex(await d.openLink(unhex(v.blob), unhex(v.key))),
      random_opens: hex(await d.openLink(random.blob, random.key)),
      random_key_bytes: random.key.length,
    });
  }
  for (const n of V.negative) {
    let err;
    if (n.kind === "device_wrap") {
      const v = V.bypass[n.vector];
      const ctx = { ...bypassCtx(v), keypairVersion: n.keypair_version ?? v.keypair_version };
      const kek = await d.bypassKek(unhex(v.token_factor), unhex(v.dkek));
      err = await errorOf(() => d.openDeviceWrap(kek, unhex(n.device_wrap ?? v.device_wrap), ctx));
    } else if (n.kind === "sealed_kek") {
      const v = V.bypass[n.vector];
      let dev;
      if (n.device !== undefined) {
        const o = V.device[n.device];
        dev = await d.deviceFromBytes(unhex(o.device_id), unhex(o.device_private_key), unhex(o.signing_private_key));
      } else {
        dev = await d.deviceFromBytes(unhex(v.device_id), unhex(v.device_private_key), new Uint8Array(32).fill(7));
      }
      err = await errorOf(() => d.openDkek(hpke, unhex(n.sealed_kek ?? v.sealed_kek), dev, { userId: unhex(v.user_id) }));
    } else if (n.kind === "link") {
      const v = V.link[n.vector];
      err = await errorOf(() => d.openLink(unhex(n.blob ?? v.blob), unhex(n.key ?? v.key)));
    } else if (n.kind === "login_proof") {
      const v = V.device[n.vector];
      const msg = d.loginMessage({ userId: unhex(v.user_id), deviceId: unhex(v.device_id), nonce: unhex(v.device_nonce) });
      err = await errorOf(() => d.verifyProof(unhex(v.signing_key), unhex(n.login_proof), msg, { deviceId: unhex(v.device_id) }));
    } else {
      err = { name: "unknown kind", code: n.kind };
    }
    out.negative.push({ case: n.case, error: err });
  }
  return out;
}
