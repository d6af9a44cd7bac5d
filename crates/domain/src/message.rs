//! Staff messages to one customer and the replies that come back (issue 18, points 5–6): what a
//! message may say, the form of reply and bounce addresses, and the scrubbing of the customer's
//! own address and phone number out of what they send back.

use serde::{Deserialize, Serialize};

use crate::{InteractionId, ThreadId, Timestamp, ValidationError, normalize};

/// The body of `POST /v1/customers/{id}/messages`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    /// The subject (one line, at most 300 characters).
    #[schema(format = "short-text")]
    pub subject: String,
    /// The message, plain text (at most 10,000 characters).
    #[schema(format = "long-text")]
    pub text: String,
    /// Continue this thread (same reply address) instead of starting a new one.
    #[serde(default)]
    pub thread_id: Option<ThreadId>,
}

/// A validated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The subject.
    pub subject: String,
    /// The text.
    pub text: String,
    /// The thread it continues, if any.
    pub thread_id: Option<ThreadId>,
}

impl MessageInput {
    /// Checks the subject and text.
    pub fn validate(&self) -> Result<NewMessage, ValidationError> {
        Ok(NewMessage {
            subject: normalize::short_text("subject", &self.subject)?,
            text: normalize::long_text("text", &self.text)?,
            thread_id: self.thread_id,
        })
    }
}

/// Whether a message went to the customer or came from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Written by staff, sent by Steward.
    Out,
    /// A reply from the customer.
    In,
}

impl Direction {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Out => "out",
            Self::In => "in",
        }
    }

    /// From storage.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "out" => Some(Self::Out),
            "in" => Some(Self::In),
            _ => None,
        }
    }
}

/// One message of a thread as staff read it: the text, its direction and delivery state, never
/// an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ThreadMessage {
    /// The message (also the id of its interaction).
    pub id: InteractionId,
    /// To the customer or from them.
    pub direction: Direction,
    /// `queued`, `sending`, `sent`, `uncertain`, `failed` (sent messages) or `received`.
    pub state: String,
    /// Why it failed (e.g. `bounced`, `undeliverable`), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its subject (a reply's scrubbed like its text).
    pub subject: String,
    /// The text (a reply's with the customer's own address and phone number removed).
    pub text: String,
    /// When it was written or received.
    pub at: Timestamp,
    /// Whether card, account or identity numbers in its subject or text are shown masked (the
    /// policy does not clear this reader for them).
    pub masked: bool,
}

/// A conversation with one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Thread {
    /// Its id.
    pub id: ThreadId,
    /// The subject of its first message.
    pub subject: String,
    /// The purpose it was written under.
    pub purpose: String,
    /// When it began.
    pub started_at: Timestamp,
    /// Until when replies are accepted.
    pub replies_until: Timestamp,
    /// Its messages, oldest first.
    pub messages: Vec<ThreadMessage>,
}

/// The local part of reply aliases: `reply-` and 32 base32 characters (160 random bits).
pub const REPLY_PREFIX: &str = "reply-";
/// The local part of bounce addresses: `bounce-` and a tagged id.
pub const BOUNCE_PREFIX: &str = "bounce-";

/// A recipient address Steward may have issued, by its local part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// A reply alias: its random part, lower case.
    Reply(String),
    /// A bounce address: its tagged id, lower case.
    Bounce(String),
}

/// What an address at `domain` (any domain if `None`) stands for, if it has the form of one
/// Steward issues (case-insensitive: some relays change case). Anything else is `None`.
pub fn issued(address: &str, domain: Option<&str>) -> Option<Issued> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, at) = address.rsplit_once('@')?;
    if domain.is_some_and(|d| !at.eq_ignore_ascii_case(d)) {
        return None;
    }
    let local = local.to_ascii_lowercase();
    let base32 = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    };
    if let Some(rest) = local.strip_prefix(REPLY_PREFIX) {
        return base32(rest, 32).then(|| Issued::Reply(rest.to_owned()));
    }
    if let Some(rest) = local.strip_prefix(BOUNCE_PREFIX) {
        return base32(rest, BOUNCE_TAG_CHARS).then(|| Issued::Bounce(rest.to_owned()));
    }
    None
}

/// Length of a bounce address's tagged id: 1 kind byte, 16 id bytes, 10 MAC bytes in base32.
pub const BOUNCE_TAG_CHARS: usize = 44;

/// What replaces the customer's address in a reply.
pub const EMAIL_REMOVED: &str = "[e-mail address removed]";
/// What replaces the customer's phone number in a reply.
pub const PHONE_REMOVED: &str = "[phone number removed]";

/// `text` with every occurrence of `emails` (any case) and of `phones` (E.164, written in any of
/// the usual ways: `+49 151 1234 5678`, `0049…`, `0151/12345678`, `(0151) 123-45678`) replaced.
/// A reply quotes the message it answers under a line naming the sender's address, and a
/// signature carries the phone number: neither is needed to read the reply, and staff must not
/// learn them from it.
pub fn scrub(text: &str, emails: &[&str], phones: &[&str]) -> String {
    let mut out = text.to_owned();
    for e in emails.iter().filter(|e| e.len() >= 3) {
        out = replace_ignoring_case(&out, e, EMAIL_REMOVED);
    }
    let phones: Vec<String> = phones
        .iter()
        .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|d| d.len() >= 7)
        .collect();
    if phones.is_empty() {
        return out;
    }
    scrub_phones(&out, &phones)
}

/// `text` with every occurrence of `needle` replaced, compared in lower case (Unicode's, as
/// stored addresses are normalised). Linear: the text is lower-cased once, with each lowered
/// byte mapped back to the character it came from, and searched with `str::match_indices`.
fn replace_ignoring_case(text: &str, needle: &str, with: &str) -> String {
    let needle = needle.to_lowercase();
    let mut lowered = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        for l in c.to_lowercase() {
            let before = lowered.len();
            lowered.push(l);
            origin.extend(std::iter::repeat_n(i, lowered.len() - before));
        }
    }
    let at = |lowered_index: usize| origin.get(lowered_index).copied().unwrap_or(text.len());
    let mut out = String::with_capacity(text.len());
    let mut kept = 0;
    for (start, m) in lowered.match_indices(needle.as_str()) {
        let end = start + m.len();
        let (from, to) = (at(start), at(end));
        // A match that begins or ends inside one character's lower-case form is not a match of
        // whole characters.
        let whole =
            (start == 0 || at(start - 1) != from) && (end == lowered.len() || at(end - 1) != to);
        if from < kept || !whole {
            continue;
        }
        out.push_str(&text[kept..from]);
        out.push_str(with);
        kept = to;
    }
    out.push_str(&text[kept..]);
    out
}

/// Characters a written phone number is made of.
fn phone_char(c: char) -> bool {
    c.is_ascii_digit()
        || matches!(
            c,
            '+' | ' '
                | '-'
                | '.'
                | '/'
                | '('
                | ')'
                | '\u{a0}'
                | '\u{2009}'
                | '\u{202f}'
                | '\u{2010}'
                | '\u{2011}'
                | '\u{2012}'
                | '\u{2013}'
        )
}

fn scrub_phones(text: &str, phones: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit() || c == '+' || c == '(') {
        out.push_str(&rest[..start]);
        let len = rest[start..]
            .find(|c: char| !phone_char(c))
            .unwrap_or(rest.len() - start);
        out.push_str(&scrub_run(&rest[start..start + len], phones));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// Most digit groups one written number spans (`+44 7 9 1 1 …` written digit by digit).
const MAX_GROUPS: usize = 16;

/// One run of digits and separators: the longest spans of whole digit groups that are one of
/// `phones`, leftmost first, replaced (a run may hold two numbers, or a number and a date).
fn scrub_run(run: &str, phones: &[String]) -> String {
    let bytes = run.as_bytes();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let s = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((s, i));
        } else {
            i += 1;
        }
    }
    let mut out = String::with_capacity(run.len());
    let (mut kept, mut a) = (0, 0);
    while a < groups.len() {
        let last = (a + MAX_GROUPS).min(groups.len()) - 1;
        let matched = (a..=last).rev().find(|&b| {
            let digits: String = groups[a..=b].iter().map(|&(s, e)| &run[s..e]).collect();
            is_phone(&digits, phones)
        });
        match matched {
            Some(b) => {
                let mut s = groups[a].0;
                while s > kept && matches!(bytes[s - 1], b'+' | b'(') {
                    s -= 1;
                }
                out.push_str(&run[kept..s]);
                out.push_str(PHONE_REMOVED);
                kept = groups[b].1;
                a = b + 1;
            }
            None => a += 1,
        }
    }
    out.push_str(&run[kept..]);
    out
}

/// Whether `digits` (as written) are one of `phones` (E.164 digits): in full, with an
/// international `00`, or nationally (a trunk `0` and the subscriber number, which ends the
/// E.164 number). Seven digits at least, so a date or an order number is left alone.
fn is_phone(digits: &str, phones: &[String]) -> bool {
    if digits.len() < 7 {
        return false;
    }
    let national = digits.trim_start_matches('0');
    phones.iter().any(|p| {
        digits == p
            || digits.strip_prefix("00") == Some(p.as_str())
            || (national.len() >= 7 && p.ends_with(national))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_customers_address_and_phone_are_removed_wherever_they_are_written() {
        let text = "Thanks!\n\nOn Mon, Ada <Ada.Lovelace@Example.com> wrote:\n> Call me on +49 151 1234 5678 or 0151/12345678, or (0151) 1234-5678 - 030 1234 567.\nOrder 2026-12-04, ref 1234567.";
        let s = scrub(text, &["ada.lovelace@example.com"], &["+4915112345678"]);
        assert!(
            !s.to_lowercase().contains("ada.lovelace@example.com"),
            "{s}"
        );
        assert!(!s.contains("5678"), "{s}");
        assert_eq!(s.matches(PHONE_REMOVED).count(), 3, "{s}");
        assert!(
            s.contains(" - 030 1234 567.\nOrder 2026-12-04, ref 1234567."),
            "{s}"
        );
        assert!(s.starts_with("Thanks!"));
    }

    #[test]
    fn addresses_match_in_any_case_unicode_too() {
        let s = scrub(
            "Écrivez à ÉMILE@Exemple.fr ou émile@exemple.fr; tél. +33\u{202f}6\u{2013}12\u{2013}34\u{2013}56\u{2013}78",
            &["émile@exemple.fr"],
            &["+33612345678"],
        );
        assert_eq!(
            s,
            format!("Écrivez à {EMAIL_REMOVED} ou {EMAIL_REMOVED}; tél. {PHONE_REMOVED}")
        );
    }

    #[test]
    fn a_text_without_them_is_unchanged() {
        let t = "Ünïcode ✓ and 12 34 and +1 (555) 010-9999";
        assert_eq!(scrub(t, &["a@b.example"], &["+4915112345678"]), t);
        assert_eq!(scrub(t, &[], &[]), t);
    }

    #[test]
    fn only_addresses_of_the_issued_forms_at_the_domain_are_recognised() {
        let r = format!("{REPLY_PREFIX}{}@Reply.Example.com", "a".repeat(32));
        assert_eq!(
            issued(&r, Some("reply.example.com")),
            Some(Issued::Reply("a".repeat(32)))
        );
        let upper = r.to_ascii_uppercase();
        assert!(matches!(
            issued(&upper, Some("reply.example.com")),
            Some(Issued::Reply(_))
        ));
        assert_eq!(issued(&r, Some("other.example.com")), None);
        assert!(issued(&r, None).is_some());
        assert_eq!(
            issued(
                &format!("{REPLY_PREFIX}{}@reply.example.com", "a".repeat(31)),
                Some("reply.example.com")
            ),
            None
        );
        assert_eq!(
            issued(
                &format!("{REPLY_PREFIX}{}1@reply.example.com", "a".repeat(31)),
                Some("reply.example.com")
            ),
            None
        );
        let b = format!(
            "<{BOUNCE_PREFIX}{}@reply.example.com>",
            "b".repeat(BOUNCE_TAG_CHARS)
        );
        assert!(matches!(
            issued(&b, Some("reply.example.com")),
            Some(Issued::Bounce(_))
        ));
        assert_eq!(
            issued("someone@reply.example.com", Some("reply.example.com")),
            None
        );
    }

    #[test]
    fn messages_are_checked() {
        let ok = MessageInput {
            subject: " Your order ".into(),
            text: "Hello\nthere".into(),
            thread_id: None,
        };
        assert_eq!(
            ok.validate().map(|m| m.subject),
            Ok("Your order".to_owned())
        );
        let bad = MessageInput {
            subject: "a\nb".into(),
            text: "x".into(),
            thread_id: None,
        };
        assert_eq!(
            bad.validate().err().map(|e| e.field.into_owned()),
            Some("subject".to_owned())
        );
        let long = MessageInput {
            subject: "s".into(),
            text: "x".repeat(10_001),
            thread_id: None,
        };
        assert_eq!(
            long.validate().err().map(|e| e.field.into_owned()),
            Some("text".to_owned())
        );
    }

    proptest! {
        /// Whatever surrounds them and however the number is punctuated, neither the address nor
        /// the number survives the scrub.
        #[test]
        fn scrubbed_text_holds_neither(
            before in "[a-zA-Z ,.!?\n]{0,40}",
            after in "[a-zA-Z ,.!?\n]{0,40}",
            local in "[a-z]{1,12}",
            first in 1u8..10,
            sub in proptest::collection::vec(0u8..10, 7..10),
            seps in proptest::collection::vec(prop::sample::select(vec!["", " ", "-", ".", "/"]), 11),
            national in any::<bool>(),
            upper in any::<bool>(),
        ) {
            let email = format!("{local}@example.net");
            let sub: String = std::iter::once(first).chain(sub).map(|d| char::from(b'0' + d)).collect();
            let e164 = format!("+44{sub}");
            let mut written = if national { "0".to_owned() } else { "+44".to_owned() };
            for (i, c) in sub.chars().enumerate() {
                written.push_str(seps[i]);
                written.push(c);
            }
            let shown = if upper { email.to_uppercase() } else { email.clone() };
            let text = format!("{before}{shown}{after} {written} {after}");
            let s = scrub(&text, &[&email], &[&e164]);
            prop_assert!(!s.to_lowercase().contains(&email), "{}", s);
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!digits.contains(&sub), "{}", s);
        }
    }
}
