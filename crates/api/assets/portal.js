// Checks, in the customer's own browser, that each access-log entry is in the signed audit log:
// the C2SP signed note's Ed25519 signature (with the published verifier key) and each entry's
// RFC 9162 inclusion proof against the note's root hash. Hand-written because it is small, runs
// without any third-party script (the portal's CSP allows only this file), and uses WebCrypto.
"use strict";

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const enc = new TextEncoder();

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// RFC 9162 section 2.1.3.2: verifying an inclusion proof.
async function included(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1;
  let r = await sha256(concat(Uint8Array.of(0), leaf));
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// C2SP signed-note: "NAME+KEYID+BASE64(0x01 || key)"; a signature line is "— NAME BASE64(keyid || sig)".
async function signedBy(note, vkey) {
  // Split at the first two "+" only: the base64 part may hold "+" too.
  const first = vkey.indexOf("+"), second = vkey.indexOf("+", first + 1);
  const name = vkey.slice(0, first), keyHex = vkey.slice(first + 1, second);
  const keyB64 = vkey.slice(second + 1);
  const key = b64(keyB64);
  if (key[0] !== 1 || key.length !== 33) return "unknown key type";
  const split = note.lastIndexOf("\n\n");
  const text = note.slice(0, split + 1);
  const prefix = "\u2014 " + name + " ";
  const line = note.slice(split + 2).split("\n").find((l) => l.startsWith(prefix));
  if (!line) return "no signature by " + name;
  const sig = b64(line.slice(prefix.length));
  const id = Array.from(sig.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
  if (id !== keyHex) return "the signature's key id differs";
  try {
    const k = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, k, sig.slice(4), enc.encode(text));
    return ok ? "" : "the signature is wrong";
  } catch (e) {
    return "unsupported";
  }
}

async function check() {
  const box = document.getElementById("check");
  const verdict = document.getElementById("verdict");
  const note = new TextDecoder().decode(b64(box.dataset.checkpoint));
  const [, sizeLine, rootLine] = note.split("\n");
  const size = Number(sizeLine), root = b64(rootLine);
  const sig = await signedBy(note, box.dataset.key);
  let good = 0, bad = 0;
  for (const row of document.querySelectorAll("tr.entry")) {
    const proof = row.dataset.proof ? row.dataset.proof.split(",").map(b64) : [];
    const ok = await included(Number(row.dataset.index), size, b64(row.dataset.leaf), proof, root);
    const cell = row.querySelector(".proof");
    cell.textContent = (ok ? "\u2713 in the log" : "\u2717 not proven") + " (#" + row.dataset.index + ")";
    cell.className = "proof " + (ok ? "ok" : "bad");
    ok ? good++ : bad++;
  }
  const head = sig === "" ? "The log head is genuine (its Ed25519 signature checks with the published key)"
    : sig === "unsupported" ? "This browser cannot check Ed25519 signatures; check the head with steward audit verify-export"
    : "The log head's signature does NOT check: " + sig;
  const rows = bad === 0 ? ` and all ${good} entries are proven to be in it.` : `; ${bad} of ${good + bad} entries are NOT proven to be in it.`;
  verdict.textContent = head + rows;
  verdict.className = sig === "" && bad === 0 ? "ok" : "bad";
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("verify");
  if (button) button.addEventListener("click", () => { check().catch((e) => {
    document.getElementById("verdict").textContent = "The check could not run: " + e;
  }); });
});
