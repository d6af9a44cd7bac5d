// Steward's anonymous survey answer, in the customer's browser (issue 21).
//
// RFC 9474 (RSABSSA-SHA384-PSS-Randomized), client side: the browser makes a random message,
// prepares it with a random 32-byte prefix, encodes it (EMSA-PSS, SHA-384, 48-byte salt),
// blinds it with a random factor, and has Steward sign the blinded value; Steward never sees
// the message. The browser unblinds the signature, checks it, and sends message, prefix and
// signature with the answers to an endpoint that receives no cookie. Written by hand because
// WebCrypto has no blind signatures; it is short, and the server verifies every token with an
// independent implementation (the `blind-rsa-signatures` crate).
'use strict';
(function () {
  const form = document.getElementById('survey');
  if (!form) return;
  const status = document.getElementById('survey-status');
  const button = form.querySelector('button[type="submit"]');
  const id = form.dataset.survey;
  const storeKey = 'steward-survey-token-' + id;

  const b64u = {
    enc(bytes) {
      let s = '';
      for (const b of bytes) s += String.fromCharCode(b);
      return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    },
    dec(text) {
      const std = text.replace(/-/g, '+').replace(/_/g, '/');
      const s = atob(std + '='.repeat((4 - (std.length % 4)) % 4));
      return Uint8Array.from(s, (c) => c.charCodeAt(0));
    },
  };
  const toInt = (bytes) => {
    let x = 0n;
    for (const b of bytes) x = (x << 8n) | BigInt(b);
    return x;
  };
  const toBytes = (x, len) => {
    const out = new Uint8Array(len);
    for (let i = len - 1; i >= 0; i--) {
      out[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    return out;
  };
  const modPow = (base, exp, m) => {
    let r = 1n;
    let b = base % m;
    let e = exp;
    while (e > 0n) {
      if (e & 1n) r = (r * b) % m;
      b = (b * b) % m;
      e >>= 1n;
    }
    return r;
  };
  const modInv = (a, m) => {
    let [r0, r1] = [m, a % m];
    let [t0, t1] = [0n, 1n];
    while (r1 !== 0n) {
      const q = r0 / r1;
      [r0, r1] = [r1, r0 - q * r1];
      [t0, t1] = [t1, t0 - q * t1];
    }
    return r0 === 1n ? ((t0 % m) + m) % m : null;
  };
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const random = (n) => crypto.getRandomValues(new Uint8Array(n));
  const sha384 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-384', bytes));

  // RFC 8017 appendix B.2.1: MGF1 with SHA-384.
  async function mgf1(seed, len) {
    const out = new Uint8Array(len);
    for (let c = 0, done = 0; done < len; c++, done += 48) {
      const counter = Uint8Array.of(c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
      const block = await sha384(concat(seed, counter));
      out.set(block.subarray(0, Math.min(48, len - done)), done);
    }
    return out;
  }

  // RFC 8017 section 9.1.1: EMSA-PSS-ENCODE with SHA-384 and a 48-byte salt.
  async function pssEncode(msg, emBits) {
    const hLen = 48;
    const sLen = 48;
    const emLen = Math.ceil(emBits / 8);
    const salt = random(sLen);
    const h = await sha384(concat(new Uint8Array(8), await sha384(msg), salt));
    const db = new Uint8Array(emLen - hLen - 1);
    db[emLen - sLen - hLen - 2] = 1;
    db.set(salt, emLen - sLen - hLen - 1);
    const mask = await mgf1(h, db.length);
    for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
    db[0] &= 0xff >> (8 * emLen - emBits);
    return concat(db, h, Uint8Array.of(0xbc));
  }

  // A uniform integer in [1, n): modBits random bits, drawn again until below n (a value
  // reduced mod n would be skewed, and the skew could tell a blinded token from others).
  function uniformBelow(n, modBits, modLen) {
    const excess = 8 * modLen - modBits;
    for (;;) {
      const bytes = random(modLen);
      bytes[0] &= 0xff >> excess;
      const r = toInt(bytes);
      if (r > 0n && r < n) return r;
    }
  }

  // RFC 9474 section 4.1 (Prepare, randomized) and 4.2 (Blind).
  async function blind(msg, n, e) {
    const modBits = n.toString(2).length;
    const modLen = Math.ceil(modBits / 8);
    const randomizer = random(32);
    const m = toInt(await pssEncode(concat(randomizer, msg), modBits - 1));
    if (modInv(m, n) === null) throw new Error('the encoded message shares a factor with the key');
    let inv = null;
    let r = 0n;
    while (inv === null) {
      r = uniformBelow(n, modBits, modLen);
      inv = modInv(r, n);
    }
    const z = (m * modPow(r, e, n)) % n;
    return { randomizer, m, inv, modLen, blinded: toBytes(z, modLen) };
  }

  // The key everyone gets, fetched without cookies: a key made for this customer alone would
  // mark their answer, so a page whose key differs is not used.
  async function checkKey() {
    const res = await fetch(`/v1/surveys/${id}/key`, { credentials: 'omit', cache: 'no-store' });
    const key = await res.json().catch(() => ({}));
    if (!res.ok || key.n !== form.dataset.n || key.e !== form.dataset.e) {
      throw new Error('this page\'s key is not the survey\'s public key');
    }
  }

  async function token() {
    await checkKey();
    const n = toInt(b64u.dec(form.dataset.n));
    const e = toInt(b64u.dec(form.dataset.e));
    // Only a key of the shape the survey promises: a 2048-bit modulus or more, exponent 65537
    // (an odd one could make blinded tokens recognisable).
    if (e !== 65537n || n.toString(2).length < 2048) throw new Error('the survey key is not a standard one');
    const msg = random(32);
    const b = await blind(msg, n, e);
    const res = await fetch(`/portal/surveys/${id}/token`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: form.dataset.csrf, blinded: b64u.enc(b.blinded) }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || 'the token was refused');
    // RFC 9474 section 4.4 (Finalize): unblind, then verify before use.
    const s = (toInt(b64u.dec(body.blind_signature)) * b.inv) % n;
    if (modPow(s, e, n) !== b.m) throw new Error('the signature did not check out');
    return {
      message: b64u.enc(msg),
      randomizer: b64u.enc(b.randomizer),
      signature: b64u.enc(toBytes(s, b.modLen)),
    };
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const answers = [];
    for (const set of form.querySelectorAll('fieldset')) {
      const chosen = set.querySelector('input:checked');
      if (!chosen) {
        status.textContent = 'Please answer every question.';
        return;
      }
      answers.push(Number(chosen.value));
    }
    button.disabled = true;
    try {
      let t = JSON.parse(localStorage.getItem(storeKey) || 'null');
      if (!t) {
        if (form.dataset.issued === 'true') {
          throw new Error('your token was issued before and is not in this browser');
        }
        status.textContent = 'Making your anonymous token…';
        t = await token();
        // Kept until the answers are in, so a failed send can be retried with the same token.
        localStorage.setItem(storeKey, JSON.stringify(t));
      }
      status.textContent = 'Sending your answers…';
      const sent = await fetch(`/v1/surveys/${id}/responses`, {
        method: 'POST',
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...t, answers }),
      });
      if (sent.ok || sent.status === 409) {
        localStorage.removeItem(storeKey);
        form.hidden = true;
        status.textContent = sent.ok
          ? 'Thank you: your answers are recorded anonymously.'
          : 'Your answers were recorded already. Thank you.';
        return;
      }
      const problem = await sent.json().catch(() => ({}));
      throw new Error(problem.detail || 'the answers were not accepted');
    } catch (err) {
      status.textContent = 'Not sent: ' + err.message + '.';
      button.disabled = false;
    }
  });
})();
