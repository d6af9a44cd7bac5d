//! The scan: candidates found in one pass over the bytes (plus SIMD searches for `@` and `://`),
//! each confirmed before it is reported. Every candidate is ASCII, so its offsets are always on
//! character boundaries of the text; letters outside ASCII (CJK, accents) count as separators,
//! so a number written straight after Chinese text is still found.

use std::net::Ipv6Addr;

use phonenumber::country::Id;

use super::checks::{self, iban_length};
use super::{EntityType, Finding};

/// Byte classes: what may start a candidate in the main pass.
const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
/// `+` and `(` start a telephone number; `:` may sit inside an IPv6 address.
const MARK: u8 = 8;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'+' | b'(' | b':' => MARK,
            _ => 0,
        };
        c += 1;
    }
    t
};

fn alnum(c: u8) -> bool {
    CLASS[c as usize] & (DIGIT | UPPER | LOWER) != 0
}

/// Whether a candidate ending before `end` ends a word (end of text or not a letter or digit).
fn ends_word(b: &[u8], end: usize) -> bool {
    end >= b.len() || !alnum(b[end])
}

/// The most telephone-number validations one scan makes per kilobyte of text (and at least
/// [`MIN_PHONE_CHECKS`]): libphonenumber is slow next to a checksum, and a text of nothing but
/// digit groups must not cost a reader seconds. Past the budget, numbers that are not cards or
/// other checksummed types are no longer confirmed as telephone numbers (so not reported).
const PHONE_CHECKS_PER_KB: usize = 24;
const MIN_PHONE_CHECKS: usize = 64;

/// Every finding in `text`, in order, without overlaps; `regions` for national telephone
/// numbers, none at all when `phones` is false.
pub fn scan(text: &str, regions: &[Id], phones: bool) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    emails(b, &mut found);
    urls(text, &mut found);
    let budget = if phones {
        (b.len() / 1024 * PHONE_CHECKS_PER_KB).max(MIN_PHONE_CHECKS)
    } else {
        0
    };
    numbers_and_ids(text, regions, budget, &mut found);
    resolve(found)
}

/// Orders findings and drops any that begins inside an earlier one (of two that begin
/// together, the longer is kept: a URL's credentials over the address inside it) — except that
/// a sensitive finding (a card, an account, an identity number) displaces a harmless one it
/// overlaps, so that what must be masked never hides inside, say, an e-mail address.
fn resolve(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        match out.last() {
            Some(last) if f.start < last.end => {
                if f.entity_type.is_sensitive() && !last.entity_type.is_sensitive() {
                    out.pop();
                    out.push(f);
                }
            }
            _ => out.push(f),
        }
    }
    out
}

fn local_char(c: u8) -> bool {
    alnum(c) || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn domain_char(c: u8) -> bool {
    alnum(c) || matches!(c, b'.' | b'-')
}

/// E-mail addresses: around each `@`, a local part and a domain of at least two labels whose
/// last is a name of letters.
fn emails(b: &[u8], found: &mut Vec<Finding>) {
    for at in memchr::memchr_iter(b'@', b) {
        let mut s = at;
        while s > 0 && local_char(b[s - 1]) && at - s < 64 {
            s -= 1;
        }
        if s > 0 && local_char(b[s - 1]) {
            continue; // a local part longer than RFC 5321 allows
        }
        while s < at && matches!(b[s], b'.' | b'-' | b'+') {
            s += 1;
        }
        let local = &b[s..at];
        if local.is_empty() || local.ends_with(b".") || local.windows(2).any(|w| w == b"..") {
            continue;
        }
        let mut e = at + 1;
        while e < b.len() && domain_char(b[e]) && e - at <= 253 {
            e += 1;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        if valid_domain(&b[at + 1..e]) && ends_word(b, e) {
            found.push(Finding {
                entity_type: EntityType::EmailAddress,
                start: s,
                end: e,
                score: 1.0,
            });
        }
    }
}

fn valid_domain(d: &[u8]) -> bool {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in d.split(|c| *c == b'.') {
        if label.is_empty() || label.len() > 63 || label.starts_with(b"-") || label.ends_with(b"-")
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

/// Query and fragment keys whose values are credentials.
const TOKEN_KEYS: &[&str] = &[
    "access_token",
    "api-key",
    "api_key",
    "apikey",
    "auth",
    "authorization",
    "client_secret",
    "id_token",
    "jwt",
    "key",
    "pass",
    "passwd",
    "password",
    "pwd",
    "refresh_token",
    "secret",
    "session_id",
    "sessionid",
    "sid",
    "sig",
    "signature",
    "token",
    "x-amz-credential",
    "x-amz-security-token",
    "x-amz-signature",
];

/// URLs that carry a user name, a password or a token in their query or fragment.
/// The longest URL examined (2 KiB); longer runs are not URLs anyone pastes by hand.
const MAX_URL: usize = 2048;

fn urls(text: &str, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    // Where the last candidate ended: a `://` inside it is not a new URL, so each byte is looked
    // at a bounded number of times whatever the text (`a://a://a://…` included).
    let mut done = 0;
    for pos in memchr::memmem::find_iter(b, b"://") {
        if pos < done {
            continue;
        }
        let mut s = pos;
        while s > 0 && (alnum(b[s - 1]) || matches!(b[s - 1], b'+' | b'.' | b'-')) {
            s -= 1;
        }
        while s < pos && !b[s].is_ascii_alphabetic() {
            s += 1;
        }
        if s == pos {
            continue;
        }
        let mut e = pos + 3;
        while e < b.len()
            && e - s < MAX_URL
            && b[e] > b' '
            && b[e] < 0x7f
            && !matches!(b[e], b'"' | b'\'' | b'<' | b'>' | b'`')
        {
            e += 1;
        }
        while e > pos + 3
            && matches!(
                b[e - 1],
                b'.' | b',' | b';' | b':' | b'!' | b'?' | b')' | b']' | b'}'
            )
        {
            e -= 1;
        }
        done = e;
        let Some(candidate) = text.get(s..e) else {
            continue;
        };
        if let Ok(u) = url::Url::parse(candidate)
            && carries_credentials(&u)
        {
            found.push(Finding {
                entity_type: EntityType::UrlCredentials,
                start: s,
                end: e,
                score: 0.95,
            });
        }
    }
}

fn carries_credentials(u: &url::Url) -> bool {
    let secret = |pairs: url::form_urlencoded::Parse<'_>| {
        pairs
            .into_iter()
            .any(|(k, v)| !v.is_empty() && TOKEN_KEYS.iter().any(|t| k.eq_ignore_ascii_case(t)))
    };
    !u.username().is_empty()
        || u.password().is_some()
        || secret(u.query_pairs())
        || u.fragment()
            .is_some_and(|f| secret(url::form_urlencoded::parse(f.as_bytes())))
}

/// The main pass: numbers (cards, SSNs, telephone numbers, IPv4), identifiers that start with a
/// letter (IBAN, NRIC/FIN, NINO) and IPv6 addresses.
fn numbers_and_ids(text: &str, regions: &[Id], mut phone_checks: usize, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    // Where the last IPv6 candidate ended, so each run of hex digits and colons is parsed once.
    let mut ipv6_done = 0;
    while i < n {
        let class = CLASS[b[i] as usize];
        if class & (DIGIT | UPPER | MARK) == 0 {
            i += 1;
            continue;
        }
        if b[i] == b':' {
            if i >= ipv6_done {
                ipv6_done = ipv6(text, i, found);
            }
            i += 1;
            continue;
        }
        if i > 0 && alnum(b[i - 1]) {
            // Inside a word: no candidate starts here; skip the rest of the word.
            i += 1;
            while i < n && alnum(b[i]) {
                i += 1;
            }
            continue;
        }
        let hit = if class == UPPER {
            letter_id(b, i)
        } else {
            ipv4(b, i).or_else(|| number(b, i, regions, &mut phone_checks))
        };
        match hit {
            Some(f) => {
                i = f.end;
                found.push(f);
            }
            None => {
                i += 1;
                while i < n && alnum(b[i]) {
                    i += 1;
                }
            }
        }
    }
}

/// A dotted-quad IPv4 address at `i` (no leading zeros, each part at most 255, not part of a
/// longer dotted number such as a version).
fn ipv4(b: &[u8], i: usize) -> Option<Finding> {
    if !b[i].is_ascii_digit() || (i > 0 && b[i - 1] == b'.') {
        return None;
    }
    let mut p = i;
    for part in 0..4 {
        let s = p;
        let mut v = 0u32;
        while p < b.len() && b[p].is_ascii_digit() && p - s < 3 {
            v = v * 10 + u32::from(b[p] - b'0');
            p += 1;
        }
        if p == s || v > 255 || (p - s > 1 && b[s] == b'0') {
            return None;
        }
        if part < 3 {
            if p >= b.len() || b[p] != b'.' {
                return None;
            }
            p += 1;
        }
    }
    let continues = p < b.len()
        && (alnum(b[p]) || (b[p] == b'.' && p + 1 < b.len() && b[p + 1].is_ascii_digit()));
    (!continues).then_some(Finding {
        entity_type: EntityType::IpAddress,
        start: i,
        end: p,
        score: 0.95,
    })
}

/// An IPv6 address around the colon at `i`; returns where its run of hex digits, colons and
/// dots ends (the next position worth looking at).
fn ipv6(text: &str, i: usize, found: &mut Vec<Finding>) -> usize {
    let b = text.as_bytes();
    let part = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut s = i;
    while s > 0 && part(b[s - 1]) && i - s < 45 {
        s -= 1;
    }
    let mut e = i;
    while e < b.len() && part(b[e]) && e - s < 45 {
        e += 1;
    }
    let run_end = e;
    while e > s && b[e - 1] == b'.' {
        e -= 1;
    }
    if e > s + 1 && b[e - 1] == b':' && b[e - 2] != b':' {
        e -= 1;
    }
    while s < e && b[s] == b'.' {
        s += 1;
    }
    let left_ok = s == 0 || !alnum(b[s - 1]);
    if !left_ok || !ends_word(b, e) {
        return run_end;
    }
    let Some(candidate) = text.get(s..e) else {
        return run_end;
    };
    let colons = candidate.bytes().filter(|c| *c == b':').count();
    if colons >= 2
        && candidate.bytes().any(|c| c.is_ascii_digit())
        && candidate.parse::<Ipv6Addr>().is_ok()
    {
        found.push(Finding {
            entity_type: EntityType::IpAddress,
            start: s,
            end: e,
            score: 0.95,
        });
    }
    run_end
}

/// An identifier starting with a capital letter at `i`: NRIC/FIN, IBAN or NINO.
fn letter_id(b: &[u8], i: usize) -> Option<Finding> {
    let hit = |entity_type, end, score| Finding {
        entity_type,
        start: i,
        end,
        score,
    };
    if i + 9 <= b.len() && checks::nric(&b[i..i + 9]) && ends_word(b, i + 9) {
        return Some(hit(EntityType::SgNricFin, i + 9, 1.0));
    }
    if let Some(end) = iban_at(b, i) {
        return Some(hit(EntityType::IbanCode, end, 1.0));
    }
    if let Some(end) = nino_at(b, i) {
        return Some(hit(EntityType::UkNino, end, 0.85));
    }
    None
}

/// An IBAN at `i`, written solid or in groups of four separated by single spaces; its end.
fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    if i + 4 > b.len() || !b[i + 1].is_ascii_uppercase() {
        return None;
    }
    let len = iban_length(&b[i..i + 2])?;
    let mut chars = [0u8; 34];
    let mut k = 0;
    let mut p = i;
    while k < len && p < b.len() {
        let c = b[p];
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            chars[k] = c;
            k += 1;
            p += 1;
        } else if c == b' ' && k % 4 == 0 && p + 1 < b.len() && alnum(b[p + 1]) {
            p += 1;
        } else {
            break;
        }
    }
    (k == len && ends_word(b, p) && checks::iban(&chars[..k])).then_some(p)
}

/// A NINO at `i`: `AB123456C` or `AB 12 34 56 C`; its end.
fn nino_at(b: &[u8], i: usize) -> Option<usize> {
    let mut chars = [0u8; 9];
    let mut k = 0;
    let mut p = i;
    while k < 9 && p < b.len() {
        let c = b[p];
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            chars[k] = c;
            k += 1;
            p += 1;
        } else if c == b' ' && matches!(k, 2 | 4 | 6 | 8) && p + 1 < b.len() && alnum(b[p + 1]) {
            p += 1;
        } else {
            break;
        }
    }
    (k == 9 && ends_word(b, p) && checks::nino(&chars)).then_some(p)
}

/// One run of digits in a written number, and the separator before it.
#[derive(Clone, Copy, Default)]
struct Group {
    /// One past its last byte.
    end: usize,
    /// How many digits the number has up to and including this group.
    digits: usize,
    /// The separator before it (`0` for the first group; ' ' when it is spaces only).
    sep: u8,
}

const MAX_DIGITS: usize = 24;
const MAX_GROUPS: usize = 12;

/// A card, SSN or telephone number starting at `i` (a digit, `+` or `(`): the longest
/// confirmed reading of the digit groups that start here.
fn number(b: &[u8], i: usize, regions: &[Id], phone_checks: &mut usize) -> Option<Finding> {
    let n = b.len();
    let mut p = i;
    let plus = b[p] == b'+';
    if plus || b[p] == b'(' {
        p += 1;
    }
    let paren = b[i] == b'(';
    if p >= n || !b[p].is_ascii_digit() {
        return None;
    }
    let mut digits = [0u8; MAX_DIGITS];
    let mut nd = 0;
    let mut groups = [Group::default(); MAX_GROUPS];
    let mut ng = 0;
    let mut sep = 0u8;
    loop {
        let mut overflow = false;
        while p < n && b[p].is_ascii_digit() {
            if nd == MAX_DIGITS {
                overflow = true;
                break;
            }
            digits[nd] = b[p];
            nd += 1;
            p += 1;
        }
        if overflow {
            // Longer than any number looked for: the groups before this one (a card, then its
            // expiry and code) are still read; this group is not.
            if ng == 0 {
                return None;
            }
            break;
        }
        groups[ng] = Group {
            end: p,
            digits: nd,
            sep,
        };
        ng += 1;
        if ng == MAX_GROUPS || nd == MAX_DIGITS {
            break;
        }
        // A separator: one or two of space, - . / ( ), at most one space, then a digit.
        let (q, mut spaces, mut kind) = (p, 0, b' ');
        while p < n && p - q < 2 && matches!(b[p], b' ' | b'-' | b'.' | b'/' | b'(' | b')') {
            if b[p] == b' ' {
                spaces += 1;
            } else {
                kind = b[p];
            }
            p += 1;
        }
        if p == q || spaces > 1 || p >= n || !b[p].is_ascii_digit() {
            break;
        }
        sep = kind;
    }
    for e in (0..ng).rev() {
        let g = &groups[..=e];
        let end = g[e].end;
        if !ends_word(b, end) {
            continue;
        }
        let d = &digits[..g[e].digits];
        let seps = || g[1..].iter().map(|x| x.sep);
        let hit = |entity_type, score| Finding {
            entity_type,
            start: i,
            end,
            score,
        };
        // A card or an SSN in parentheses is reported without them.
        let inner = |entity_type, score| Finding {
            start: if paren { i + 1 } else { i },
            ..hit(entity_type, score)
        };
        if !plus && seps().all(|s| matches!(s, b' ' | b'-' | b'.')) && checks::card(d) {
            return Some(inner(EntityType::CreditCard, 1.0));
        }
        if !plus
            && e == 2
            && g[0].digits == 3
            && g[1].digits == 5
            && g[1].sep == g[2].sep
            && matches!(g[1].sep, b'-' | b' ')
            && checks::ssn(d)
        {
            return Some(inner(EntityType::UsSsn, 0.85));
        }
        let three = (e == 2).then(|| {
            [
                g[0].digits,
                g[1].digits - g[0].digits,
                g[2].digits - g[1].digits,
            ]
        });
        if *phone_checks > 0
            && let Some(score) = phone(d, plus, paren, three, regions, phone_checks)
        {
            return Some(hit(EntityType::PhoneNumber, score));
        }
    }
    None
}

/// Whether `d` (the digits of a candidate) is a telephone number: in international form (`+` or
/// `00`) valid for the country its code names, or in national form valid in one of `regions`
/// when it is written as one, so that a bare run of digits such as an order number is not taken
/// for one. `grouped` holds the sizes of the digit groups when there are exactly three.
fn phone(
    d: &[u8],
    plus: bool,
    paren: bool,
    grouped: Option<[usize; 3]>,
    regions: &[Id],
    checks: &mut usize,
) -> Option<f64> {
    if !(7..=15).contains(&d.len()) {
        return None;
    }
    let as_str = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
    let international = if plus { Some(d) } else { d.strip_prefix(b"00") };
    if let Some(intl) = international {
        *checks = checks.saturating_sub(1);
        let number = phonenumber::parse(None, format!("+{}", as_str(intl))).ok()?;
        return phonenumber::is_valid(&number).then_some(0.9);
    }
    // A national number only in a shape people write telephone numbers in: a trunk `0` and 9 to
    // 12 digits (`044 668 18 00`, `020 7946 0018`), or a North American area code in parentheses
    // or in 3-3-4 groups. Eight grouped digits are as often part of a card or an account.
    let trunk = d[0] == b'0' && d[1] != b'0' && (9..=12).contains(&d.len());
    if !(trunk || (d.len() == 10 && (paren || grouped == Some([3, 3, 4])))) {
        return None;
    }
    let digits = as_str(d);
    regions.iter().find_map(|r| {
        if *checks == 0 {
            return None;
        }
        *checks -= 1;
        let number = phonenumber::parse(Some(*r), &digits).ok()?;
        phonenumber::is_valid(&number).then_some(0.7)
    })
}
