//! `steward bench pii` (issue 23, point 4): the detector over a generated corpus of realistic
//! messages in several languages, with personal data planted at known offsets (1 to 5 findings
//! per kB) among decoys that look like it and are not (numbers failing their checksums, order
//! numbers, dates, amounts, versions, times). Reports throughput on one core and precision and
//! recall per type against the planted truth.

use std::collections::BTreeMap;
use std::time::Instant;

use steward_domain::pii::{Detector, EntityType, iban, luhn, nino, nric, ssn, valid_phone};

/// SplitMix64: a small deterministic generator, so every run examines the same corpus.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One of `xs` (a helper where inference needs the item type spelled out).
fn pick_str(r: &mut Mix, xs: &[&'static str]) -> &'static str {
    xs[r.below(xs.len())]
}

/// Sentences people write to a shop, in five languages; `{}` is where a value may go.
const PROSE: &[&str] = &[
    "Hello, I ordered the blue jacket last week and it still has not arrived, could you check?",
    "Thanks for the quick reply yesterday, the replacement fits perfectly and my son loves it.",
    "Please cancel the subscription from next month; I am moving abroad for a while.",
    "Guten Tag, die Lieferung kam beschädigt an, ich hätte gerne einen Ersatz oder das Geld zurück.",
    "Vielen Dank für die freundliche Beratung im Geschäft am Samstag, wir kommen gerne wieder.",
    "Bonjour, je n'ai pas reçu la confirmation de ma commande, pouvez-vous vérifier s'il vous plaît ?",
    "Merci beaucoup pour votre aide, tout est réglé maintenant et le colis est bien arrivé.",
    "Hola, quisiera cambiar la talla de los zapatos que compré en la tienda del centro.",
    "您好，我上周在网上订购的外套还没有收到，请帮我查一下物流信息，谢谢！",
    "The store on Main Street was closed at 14:30 although the sign said open until 18:00.",
    "Order 2026-11-30 arrived in two parcels; the second one was missing the receipt.",
    "I paid CHF 1'249.90 but the invoice says 1'294.90, please correct it.",
    "App version 4.12.3 keeps crashing when I open my loyalty card, on build 2611.",
];

const SEPARATORS: &[&str] = &[" ", "\n", " — ", ". ", ", "];

/// A planted value: its type (None for a decoy) and its text.
type Plant = (Option<EntityType>, String);

/// `s` in groups of four characters separated by spaces, as cards and IBANs are printed.
fn in_fours(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn card(r: &mut Mix) -> String {
    let body = format!("{}{}", r.pick(&["4", "5", "37", "6011"]), r.digits(11));
    let len = if body.starts_with("37") { 14 } else { 15 };
    let body = format!("{body}{}", r.digits(len - body.len().min(len)));
    let full = (b'0'..=b'9')
        .map(|c| format!("{body}{}", c as char))
        .find(|d| luhn(d.as_bytes()))
        .unwrap_or_default();
    if r.below(2) == 0 && full.len() == 16 {
        in_fours(&full)
    } else {
        full
    }
}

fn iban_number(r: &mut Mix) -> String {
    let (country, len) = *r.pick(&[("CH", 21), ("DE", 22), ("FR", 27), ("NL", 18), ("GB", 22)]);
    let bban = if country == "NL" || country == "GB" {
        let bank: String = (0..4)
            .map(|_| char::from(b'A' + r.below(26) as u8))
            .collect();
        format!("{bank}{}", r.digits(len - 8))
    } else {
        r.digits(len - 4)
    };
    let solid = (0..100)
        .map(|c| format!("{country}{c:02}{bban}"))
        .find(|s| iban(s.as_bytes()))
        .unwrap_or_default();
    if r.below(2) == 0 {
        in_fours(&solid)
    } else {
        solid
    }
}

fn phone(r: &mut Mix) -> String {
    loop {
        let s = match r.below(4) {
            0 => format!("+41 44 {} {} {}", r.digits(3), r.digits(2), r.digits(2)),
            1 => format!("+1 212-{}{}-{}", 2 + r.below(8), r.digits(2), r.digits(4)),
            2 => format!("+44 20 7{} {}", r.digits(3), r.digits(4)),
            _ => format!(
                "+33 1 {} {} {} {}",
                r.digits(2),
                r.digits(2),
                r.digits(2),
                r.digits(2)
            ),
        };
        if valid_phone(&s) {
            return s;
        }
    }
}

fn plant(r: &mut Mix) -> Plant {
    use EntityType::*;
    let nric_number = |r: &mut Mix| {
        let prefix = *r.pick(&['S', 'T', 'F', 'G', 'M']);
        let d = r.digits(7);
        (b'A'..=b'Z')
            .map(|l| format!("{prefix}{d}{}", l as char))
            .find(|s| nric(s.as_bytes()))
            .unwrap_or_default()
    };
    match r.below(16) {
        0 => (Some(CreditCard), card(r)),
        1 => (Some(IbanCode), iban_number(r)),
        2 => {
            let user = *r.pick(&[
                "anna.muster",
                "j.smith",
                "marie-claire",
                "li.wei",
                "ops+crm",
            ]);
            let domain = *r.pick(&["example.ch", "mail.example.com", "example.co.uk"]);
            (
                Some(EmailAddress),
                format!("{user}{}@{domain}", r.below(100)),
            )
        }
        3 => (Some(PhoneNumber), phone(r)),
        4 => (Some(SgNricFin), nric_number(r)),
        5 => loop {
            let a = *r.pick(&[
                'A', 'B', 'C', 'E', 'H', 'J', 'K', 'L', 'M', 'P', 'R', 'S', 'W',
            ]);
            let b = *r.pick(&[
                'A', 'B', 'C', 'E', 'H', 'J', 'K', 'L', 'M', 'P', 'R', 'S', 'W',
            ]);
            let s = format!("{a}{b}{}{}", r.digits(6), *r.pick(&['A', 'B', 'C', 'D']));
            if nino(s.as_bytes()) {
                break (Some(UkNino), s);
            }
        },
        6 => loop {
            let s = format!("{}-{}-{}", r.digits(3), r.digits(2), r.digits(4));
            if ssn(s.replace('-', "").as_bytes()) {
                break (Some(UsSsn), s);
            }
        },
        7 => {
            let ip = if r.below(2) == 0 {
                format!(
                    "{}.{}.{}.{}",
                    1 + r.below(223),
                    r.below(256),
                    r.below(256),
                    1 + r.below(254)
                )
            } else {
                format!("2001:db8:{:x}::{:x}", r.below(65536), 1 + r.below(65535))
            };
            (Some(IpAddress), ip)
        }
        8 => (
            Some(UrlCredentials),
            format!(
                "https://shop.example.com/account/reset?token={}",
                r.digits(20)
            ),
        ),
        // Decoys: a card failing Luhn, an IBAN failing mod 97, an NRIC with a wrong letter, an
        // order number, a date, an amount, a version.
        9 => {
            let c = card(r).replace(' ', "");
            let last = c.as_bytes()[c.len() - 1] - b'0';
            (None, format!("{}{}", &c[..c.len() - 1], (last + 1) % 10))
        }
        10 => {
            let i = iban_number(r).replace(' ', "");
            let last = i.as_bytes()[i.len() - 1] - b'0';
            (None, format!("{}{}", &i[..i.len() - 1], (last + 3) % 10))
        }
        11 => {
            let n = nric_number(r);
            let wrong = if n.ends_with('A') { 'B' } else { 'A' };
            let candidate = format!("{}{wrong}", &n[..8]);
            (
                None,
                if nric(candidate.as_bytes()) {
                    "order".into()
                } else {
                    candidate
                },
            )
        }
        // Order numbers do not start with 0; one that did, valid as a national number with a
        // trunk prefix in the language's regions, would be reported as a telephone number.
        12 => (None, format!("order {}{}", 1 + r.below(9), r.digits(8))),
        13 => (
            None,
            format!("2026-{:02}-{:02}", 1 + r.below(12), 1 + r.below(28)),
        ),
        14 => (None, format!("EUR {}.{:02}", r.below(5000), r.below(100))),
        _ => (
            None,
            format!("v{}.{}.{}", r.below(10), r.below(30), r.below(100)),
        ),
    }
}

/// One message of about `bytes`, and the byte ranges of what is planted in it.
fn message(r: &mut Mix, bytes: usize) -> (String, Vec<(EntityType, usize, usize)>) {
    let mut text = String::with_capacity(bytes + 200);
    let mut truth = Vec::new();
    // 1 to 5 findings per kB: one plant (a decoy half the time or so) per ~250 bytes of prose.
    while text.len() < bytes {
        text.push_str(pick_str(r, PROSE));
        text.push_str(pick_str(r, SEPARATORS));
        if r.below(2) == 0 {
            let (t, value) = plant(r);
            text.push_str(pick_str(
                r,
                &["Details: ", "mein: ", "mon numéro ", "号码 ", "ref "],
            ));
            let start = text.len();
            text.push_str(&value);
            if let Some(t) = t {
                truth.push((t, start, text.len()));
            }
            text.push_str(pick_str(r, SEPARATORS));
        }
    }
    (text, truth)
}

/// Runs the benchmark over `megabytes` of messages of about `message_bytes` each.
pub fn run(megabytes: usize, message_bytes: usize) -> anyhow::Result<()> {
    let mut r = Mix(23);
    let mut corpus = Vec::new();
    let mut size = 0;
    while size < megabytes * 1_000_000 {
        let m = message(&mut r, message_bytes.max(200));
        size += m.0.len();
        corpus.push(m);
    }
    let detector = Detector::for_language("en").map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    // Warm up libphonenumber's metadata, which is loaded on first use.
    let _ = detector.analyze("+41 44 668 18 00");
    let started = Instant::now();
    let found: Vec<_> = corpus.iter().map(|(t, _)| detector.analyze(t)).collect();
    let elapsed = started.elapsed().as_secs_f64();

    let mut per: BTreeMap<&'static str, (usize, usize, usize)> = BTreeMap::new(); // tp, fp, fn
    let mut planted = 0;
    for ((_, truth), got) in corpus.iter().zip(&found) {
        planted += truth.len();
        for f in got {
            let hit = truth
                .iter()
                .any(|(t, s, e)| *t == f.entity_type && *s == f.start && *e == f.end);
            let e = per.entry(f.entity_type.as_str()).or_default();
            if hit {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        for (t, s, e) in truth {
            if !got
                .iter()
                .any(|f| f.entity_type == *t && f.start == *s && f.end == *e)
            {
                per.entry(t.as_str()).or_default().2 += 1;
            }
        }
    }
    emit!(
        "pii: {} messages, {:.1} MB, {} planted values (and decoys); {:.1} MB/s on one core ({:.2} s)",
        corpus.len(),
        size as f64 / 1e6,
        planted,
        size as f64 / 1e6 / elapsed,
        elapsed
    );
    emit!("| type | found | wrong | missed | precision | recall |");
    emit!("|---|---|---|---|---|---|");
    for (t, (tp, fp, fn_)) in &per {
        let p = *tp as f64 / (*tp + *fp).max(1) as f64;
        let rc = *tp as f64 / (*tp + *fn_).max(1) as f64;
        emit!("| {t} | {tp} | {fp} | {fn_} | {p:.4} | {rc:.4} |");
    }
    Ok(())
}
