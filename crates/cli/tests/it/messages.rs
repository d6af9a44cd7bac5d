//! Staff write to a customer by id and read the replies (issue 18, points 5–9), through the
//! real binary, a real SMTP server (aiosmtpd) and real MIME: the message goes out signed with a
//! reply alias, the customer's replies come back through `steward mail receive` and through
//! `POST /v1/inbound/email`, scrubbed of their address and phone number; unknown aliases are
//! refused; a delivery status notification marks the address undeliverable, and later mail
//! skips it; the export lists the thread, and erasure ends the alias.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::{ConsentAction, ConsentInput, ConsentSource, CustomerId, Role};

use crate::mail::{
    Smtp, api, compose, consenting, dkim_verifies, free_port, header, http, mail_serve,
    marketing_token, role_token, sent, start_sending,
};
use crate::support::{
    TestDb, backend_tests, op, operator_customer, principal, run, run_with_stdin,
};

/// The customer written to, with the values that must never reach a staff member.
const EMAIL: &str = "ada.customer@example.com";
const PHONE: &str = "+49 151 12345678";

/// Waits until the SMTP server holds `n` messages; returns them.
fn received(smtp: &Smtp, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = smtp.messages();
        if m.len() >= n {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages arrived",
            m.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The customer's threads as a support agent reads them.
fn threads(addr: &str, token: &str, customer: CustomerId) -> Value {
    let (s, t) = api(
        addr,
        token,
        "GET",
        &format!("/v1/customers/{customer}/messages?purpose=service"),
        None,
    );
    assert_eq!(s, 200, "{t}");
    t
}

/// A reply as a mail client writes it: multipart/alternative, the text part quoted-printable in
/// ISO-8859-1, the HTML part base64; quoting the message under a line with the customer's
/// address, a signature with their phone number.
fn reply_to(alias: &str, words: &str) -> Vec<u8> {
    reply_from("Ada Customer <Ada.Customer@example.com>", alias, words)
}

/// [`reply_to`], sent from `from`.
fn reply_from(from: &str, alias: &str, words: &str) -> Vec<u8> {
    // "Grüße" in ISO-8859-1 quoted-printable: =FC is ü, =DF is ß.
    let text = format!(
        "{words} Gr=FC=DFe, Ada\r\nMobile: 0151 / 1234 5678\r\n\r\nOn Fri, Shop <news@shop.example> wrote:\r\n> Your watch is ready. Reply to {}\r\n> (sent to Ada.Customer@Example.com, replies to {alias})\r\n",
        "ADA.CUSTOMER@EXAMPLE.COM"
    );
    let html = base64_encode(format!("<p>{words}</p><p>Call +49 151 12345678</p>").as_bytes());
    format!(
        "From: {from}\r\n\
To: {alias}\r\n\
Subject: Re: Your repair (ring me on +49 151 12345678)\r\n\
Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <reply-{}@mail.example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"ALT\"\r\n\
\r\n\
--ALT\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
{text}\r\n\
--ALT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{html}\r\n\
--ALT--\r\n",
        uuid::Uuid::now_v7().simple()
    )
    .into_bytes()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A delivery status notification (RFC 3464) to `bounce` saying `recipient` failed.
fn dsn(bounce: &str, recipient: &str, action: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n\
To: {bounce}\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\
\r\n\
--R\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is the mail system. Your message could not be delivered.\r\n\
--R\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.com\r\n\
Arrival-Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\
\r\n\
Final-Recipient: rfc822; {recipient}\r\n\
Original-Recipient: rfc822; {recipient}\r\n\
Action: {action}\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\
--R--\r\n"
    )
    .into_bytes()
}

/// `POST /v1/inbound/email` with a raw message.
fn inbound(addr: &str, token: &str, message: &[u8]) -> (u16, Value) {
    let (s, body) = http(
        addr,
        "POST",
        "/v1/inbound/email",
        Some(token),
        Some(("message/rfc822", std::str::from_utf8(message).unwrap())),
    );
    (s, serde_json::from_str(&body).unwrap_or(Value::Null))
}

backend_tests!(a_staff_message_comes_back_as_a_scrubbed_reply_and_a_bounce_stops_mail);

async fn a_staff_message_comes_back_as_a_scrubbed_reply_and_a_bounce_stops_mail(db: TestDb) {
    // Ada, and ten others consenting to marketing (a campaign needs ten).
    consenting(&db, 0, 10).await;
    let vault = db.vault().await;
    let ada = operator_customer(
        &vault,
        op(),
        json!({"name": "Ada Customer", "email": EMAIL, "phone": PHONE}),
    )
    .await;
    let agent = principal(&vault, op(), Role::SupportAgent).await;
    vault
        .record_consent(
            &agent,
            ada,
            &ConsentInput {
                purpose: "marketing_email".into(),
                action: ConsentAction::Grant,
                source: ConsentSource::InStore,
            },
        )
        .await
        .unwrap();
    drop(vault);
    let support = role_token(&db, "support_agent");
    let marketing = marketing_token(&db);
    let gateway = role_token(&db, "mail_gateway");
    let port = free_port();
    let smtp = Smtp::start(port, &[]);
    let server = mail_serve(&db, port, &["--reply-domain", "reply.shop.example"]);
    let addr = server.addr.clone();
    let path = format!("/v1/customers/{ada}/messages?purpose=service");

    // Bad input: named, nothing sent.
    let (s, p) = api(
        &addr,
        &support,
        "POST",
        &path,
        Some(json!({"subject": "", "text": "x"})),
    );
    assert_eq!((s, p["field"].as_str()), (422, Some("subject")), "{p}");
    let (s, p) = api(
        &addr,
        &support,
        "POST",
        &path,
        Some(json!({"subject": "s", "text": "x".repeat(10_001)})),
    );
    assert_eq!((s, p["field"].as_str()), (422, Some("text")), "{p}");
    // Marketing writes to no one individually.
    let (s, p) = api(
        &addr,
        &marketing,
        "POST",
        &format!("/v1/customers/{ada}/messages?purpose=marketing_email"),
        Some(json!({"subject": "Hi", "text": "Just you"})),
    );
    assert_eq!(s, 403, "{p}");

    // A support agent writes; Steward sends, with a reply alias and a bounce address.
    let (s, sent_msg) = api(
        &addr,
        &support,
        "POST",
        &path,
        Some(json!({"subject": "Your repair", "text": "Your watch is ready for collection."})),
    );
    assert_eq!(s, 202, "{sent_msg}");
    let thread = sent_msg["thread_id"].as_str().unwrap().to_owned();
    let mail = received(&smtp, 1).remove(0);
    assert_eq!(header(&mail, "X-Envelope-To"), Some(EMAIL));
    assert_eq!(header(&mail, "Subject"), Some("Your repair"));
    let alias = header(&mail, "Reply-To")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    let local = alias
        .strip_suffix("@reply.shop.example")
        .expect("the reply domain");
    let random = local.strip_prefix("reply-").expect("a reply alias");
    assert_eq!(random.len(), 32, "160 bits in base32: {alias}");
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    );
    // Whole values: three letters such as "ada" turn up in 32 random base32 letters now and then.
    let lower = alias.to_lowercase();
    assert!(
        !lower.contains("customer") && !lower.contains(&EMAIL.to_lowercase()),
        "no personal value in the alias"
    );
    let bounce = header(&mail, "X-Envelope-From")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(
        bounce.starts_with("bounce-") && bounce.ends_with("@reply.shop.example"),
        "{bounce}"
    );
    let (code, record, err) = run(
        &[
            "mail",
            "dkim-record",
            "--mail-from",
            "Shop News <news@shop.example>",
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    assert!(dkim_verifies(&mail, record.trim()), "DKIM:\n{mail}");
    let signed = mail.to_ascii_lowercase();
    assert!(signed.contains("reply-to"), "Reply-To is signed");

    // The reply through the mail server's pipe.
    let (code, out, err) = run_with_stdin(
        &["mail", "receive"],
        &db,
        &reply_to(&alias, "Thanks, I will come by."),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), format!("stored: a reply in thread {thread}"));
    // And one through the inbound endpoint, which only the gateway's token may use.
    // Customers paste card numbers into replies: staff other than the DPO read them masked.
    let second = reply_to(
        &alias,
        "Is Saturday fine? Card 4111 1111 1111 1111 for the deposit.",
    );
    let (s, p) = inbound(&addr, &support, &second);
    assert_eq!(s, 403, "{p}");
    let (s, p) = inbound(&addr, &gateway, &second);
    assert_eq!((s, p["outcome"].as_str()), (202, Some("reply")), "{p}");
    assert_eq!(p["thread_id"].as_str(), Some(thread.as_str()));

    let t = threads(&addr, &support, ada);
    let msgs = &t["items"][0]["messages"];
    assert_eq!(t["items"][0]["subject"], "Your repair", "{t}");
    assert_eq!(msgs.as_array().map(Vec::len), Some(3), "{t}");
    assert_eq!(
        (msgs[0]["direction"].as_str(), msgs[0]["state"].as_str()),
        (Some("out"), Some("sent"))
    );
    assert_eq!(msgs[1]["direction"], "in");
    let first_reply = msgs[1]["text"].as_str().unwrap();
    assert!(
        first_reply.contains("Thanks, I will come by. Grüße, Ada"),
        "charset decoded: {first_reply}"
    );
    assert!(
        first_reply.contains("[phone number removed]"),
        "{first_reply}"
    );
    assert!(
        first_reply.contains("[e-mail address removed]"),
        "{first_reply}"
    );
    assert!(
        msgs[1]["subject"]
            .as_str()
            .unwrap()
            .contains("[phone number removed]"),
        "{t}"
    );
    assert!(
        msgs[2]["text"]
            .as_str()
            .unwrap()
            .starts_with("Is Saturday fine?"),
        "{t}"
    );
    assert!(
        msgs[2]["text"]
            .as_str()
            .unwrap()
            .contains("Card •••• 1111 for the deposit."),
        "{t}"
    );
    assert_eq!(
        (msgs[2]["masked"].as_bool(), msgs[1]["masked"].as_bool()),
        (Some(true), Some(false)),
        "{t}"
    );
    assert!(!t.to_string().contains("4111 1111"), "{t}");
    assert_eq!(
        msgs[1]["reason"],
        Value::Null,
        "sent from the customer's address: {t}"
    );
    let shown = t.to_string().to_ascii_lowercase();
    for secret in [EMAIL, "12345678", "1234 5678", random] {
        assert!(!shown.contains(secret), "{secret} reached staff: {shown}");
    }
    // The reply is an interaction like any other: channel e-mail, source reply.
    let (s, list) = api(
        &addr,
        &support,
        "GET",
        &format!("/v1/customers/{ada}/interactions?purpose=service"),
        None,
    );
    assert_eq!(s, 200, "{list}");
    let sources: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["source"].as_str())
        .collect();
    assert_eq!(sources, ["message", "reply", "reply"], "{list}");

    // A reply from another address (an old mailbox, a forward) is kept, and staff are told.
    let (code, _, err) = run_with_stdin(
        &["mail", "receive"],
        &db,
        &reply_from(
            "Someone <someone@elsewhere.example>",
            &alias,
            "I am not Ada.",
        ),
    );
    assert_eq!(code, 0, "{err}");
    let t = threads(&addr, &support, ada);
    let other = &t["items"][0]["messages"][3];
    assert_eq!(
        (other["state"].as_str(), other["reason"].as_str()),
        (Some("received"), Some("other_sender")),
        "{t}"
    );
    assert!(!t.to_string().contains("someone@elsewhere.example"), "{t}");
    // The endpoint takes only messages.
    let (s, body) = http(
        &addr,
        "POST",
        "/v1/inbound/email",
        Some(&gateway),
        Some(("text/plain", "hello")),
    );
    assert_eq!(s, 415, "{body}");
    // `?recipient=` holds at most 320 characters, counted as the document's maxLength counts
    // them (code points, not bytes: API fuzzing found 320 accented letters refused).
    for (n, want) in [(320, 422), (321, 400)] {
        let path = format!("/v1/inbound/email?recipient={}", "%C3%A9".repeat(n));
        let (s, body) = http(
            &addr,
            "POST",
            &path,
            Some(&gateway),
            Some(("message/rfc822", "Subject: hi\r\n\r\nhello\r\n")),
        );
        assert_eq!(s, want, "{n} characters: {body}");
        if want == 400 {
            assert!(body.contains(r#""field":"recipient""#), "{body}");
        }
    }

    // Mail to an address Steward never issued, or to an alias it does not know: refused, nothing stored.
    let unknown = format!("reply-{}@reply.shop.example", "a".repeat(32));
    let (code, out, err) = run_with_stdin(&["mail", "receive"], &db, &reply_to(&unknown, "Hello?"));
    assert_eq!(code, 67, "{out}{err}");
    assert_eq!(err.trim(), "refused: unknown or expired reply address");
    let (code, _, err) = run_with_stdin(
        &["mail", "receive"],
        &db,
        &reply_to("someone@shop.example", "Hi"),
    );
    assert_eq!(code, 67, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let (s, p) = inbound(&addr, &gateway, &reply_to(&unknown, "Hello?"));
    assert_eq!((s, p["field"].as_str()), (422, Some("recipient")), "{p}");
    let (code, _, err) = run_with_stdin(&["mail", "receive"], &db, b"not a message at all");
    assert_ne!(code, 0, "{err}");
    assert_eq!(
        threads(&addr, &support, ada)["items"][0]["messages"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // A bounce to a forged address changes nothing; a delay notice changes nothing; a failure
    // to the real one marks the address undeliverable and the message bounced.
    let mut forged = bounce.clone();
    let i = forged.find('@').unwrap() - 1;
    let swapped = if &forged[i..=i] == "a" { "b" } else { "a" };
    forged.replace_range(i..=i, swapped);
    let (code, _, err) = run_with_stdin(&["mail", "receive"], &db, &dsn(&forged, EMAIL, "failed"));
    assert_eq!((code, err.trim()), (67, "refused: unknown bounce address"));
    let (code, out, err) =
        run_with_stdin(&["mail", "receive"], &db, &dsn(&bounce, EMAIL, "delayed"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("taken:"), "{out}");
    let (code, _, err) = run_with_stdin(
        &["mail", "receive"],
        &db,
        &reply_to(&bounce, "not a report"),
    );
    assert_eq!(code, 65, "{err}");
    // A refusal for policy, or a report about another address, says nothing about hers.
    let spam = String::from_utf8(dsn(&bounce, EMAIL, "failed"))
        .unwrap()
        .replace("5.1.1", "5.7.1");
    let (code, out, err) = run_with_stdin(&["mail", "receive"], &db, spam.as_bytes());
    assert_eq!((code, out.starts_with("taken:")), (0, true), "{out}{err}");
    let (code, out, err) = run_with_stdin(
        &["mail", "receive"],
        &db,
        &dsn(&bounce, "other@example.com", "failed"),
    );
    assert_eq!((code, out.starts_with("taken:")), (0, true), "{out}{err}");
    assert_eq!(
        threads(&addr, &support, ada)["items"][0]["messages"][0]["state"],
        "sent"
    );
    let (s, p) = inbound(&addr, &gateway, &dsn(&bounce, EMAIL, "failed"));
    assert_eq!((s, p["outcome"].as_str()), (202, Some("bounce")), "{p}");
    let t = threads(&addr, &support, ada);
    assert_eq!(
        (
            t["items"][0]["messages"][0]["state"].as_str(),
            t["items"][0]["messages"][0]["reason"].as_str()
        ),
        (Some("failed"), Some("bounced")),
        "{t}"
    );
    // The next message in the thread is not sent to the address that bounced.
    let (s, again) = api(
        &addr,
        &support,
        "POST",
        &path,
        Some(json!({"subject": "Re: Your repair", "text": "Still there?", "thread_id": thread})),
    );
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["thread_id"].as_str(), Some(thread.as_str()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = threads(&addr, &support, ada);
        let last = &t["items"][0]["messages"][4];
        if last["state"] == "failed" {
            assert_eq!(last["reason"], "undeliverable", "{t}");
            break;
        }
        assert!(Instant::now() < deadline, "{t}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A campaign skips it too.
    let campaign = compose(&addr, &marketing, "Winter");
    let (s, started) = start_sending(&addr, &marketing, &campaign);
    assert_eq!(s, 202, "{started}");
    let done = sent(&addr, &marketing, &campaign, Duration::from_secs(60));
    assert_eq!(
        (
            done["counts"]["sent"].as_u64(),
            done["counts"]["skipped"].as_u64()
        ),
        (Some(10), Some(1)),
        "{done}"
    );
    let to_ada = smtp
        .messages()
        .iter()
        .filter(|m| header(m, "X-Envelope-To") == Some(EMAIL))
        .count();
    assert_eq!(
        to_ada, 1,
        "only the first staff message reached the address"
    );
    drop(server);

    // The customer's export lists the thread and the replies.
    let out = db.dir.path().join("ada.zip");
    let (code, _, err) = run(
        &[
            "export",
            "--customer",
            &ada.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("messages.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        listed["threads"][0]["messages"].as_array().map(Vec::len),
        Some(5),
        "{listed}"
    );

    // Erasure destroys the alias with the key: a later reply is refused.
    let (code, _, err) = run(&["erase", "--customer", &ada.to_string()], &db);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_with_stdin(
        &["mail", "receive"],
        &db,
        &reply_to(&alias, "After erasure"),
    );
    assert_eq!(
        (code, err.trim()),
        (67, "refused: unknown or expired reply address")
    );
}
