//! Campaign mail through the real binary and a real SMTP server: PyPI's aiosmtpd (installed
//! with dkimpy by `scripts/ensure-mail`), each accepted message kept as a file. DKIM is
//! verified by dkimpy against the record `steward mail dkim-record` prints, as a receiving
//! server would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::{ConsentAction, ConsentInput, ConsentSource, CustomerId, Role};

use crate::support::{Server, TestDb, backend_tests, op, operator_customer, principal, run};

/// The scripts' directory.
pub(crate) fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// The Python environment with aiosmtpd and dkimpy (made on first use).
pub(crate) fn mail_tools() -> PathBuf {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        let out = Command::new(scripts().join("ensure-mail"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/ensure-mail");
        assert!(out.status.success(), "scripts/ensure-mail failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aiosmtpd on a loopback port, keeping each message in `dir`.
pub struct Smtp {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts on `port`; recipients in `refuse` are answered 550.
    pub fn start(port: u16, refuse: &[&str]) -> Smtp {
        Self::start_slow(port, refuse, 0.0)
    }

    /// [`Smtp::start`], taking `delay` seconds to accept each message.
    pub fn start_slow(port: u16, refuse: &[&str], delay: f64) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(mail_tools().join("bin/python"));
        cmd.arg(scripts().join("mail/smtp-server.py"))
            .arg(port.to_string())
            .arg(dir.path());
        for r in refuse {
            cmd.args(["--refuse", r]);
        }
        cmd.args(["--delay", &delay.to_string()]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let mut ready = [0u8; 5];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut ready)
            .expect("aiosmtpd says ready");
        assert_eq!(&ready, b"ready");
        Smtp { child, dir }
    }

    /// Every message received so far, in the order received.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply alias of the first staff message in a mail sink file (`serve --mail-sink`),
/// waiting up to 20 seconds for it to be written.
pub fn reply_alias_in(sink: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mail = std::fs::read_to_string(sink).unwrap_or_default();
        if let Some(a) = mail.lines().find_map(|l| l.strip_prefix("Reply-To: ")) {
            return a.trim_matches(['<', '>']).to_owned();
        }
        assert!(Instant::now() < deadline, "the message did not go out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether dkimpy verifies `message` against `record`.
pub fn dkim_verifies(message: &str, record: &str) -> bool {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), message).unwrap();
    let out = Command::new(mail_tools().join("bin/python"))
        .arg(scripts().join("mail/dkim-verify.py"))
        .arg(f.path())
        .arg(record)
        .output()
        .unwrap();
    out.status.success()
}

/// One HTTP/1.1 request to a running server: status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (ct, b) = body.unwrap_or(("application/json", ""));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let (_, rest) = out.split_once("\r\n\r\n").unwrap_or(("", ""));
    (status, rest.to_owned())
}

/// A JSON call.
pub fn api(addr: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (s, out) = http(
        addr,
        method,
        path,
        Some(token),
        text.as_deref().map(|t| ("application/json", t)),
    );
    (s, serde_json::from_str(&out).unwrap_or(Value::Null))
}

/// A header's value in a message (unfolded).
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Customers made in the store before the server starts: `n` with an address and consent to
/// `marketing_email`, each `shopper{i}@example.com`; returns their ids.
pub async fn consenting(db: &TestDb, from: usize, n: usize) -> Vec<CustomerId> {
    let vault = db.vault().await;
    let agent = principal(&vault, op(), Role::SupportAgent).await;
    let mut ids = Vec::new();
    for i in from..from + n {
        let id = operator_customer(
            &vault,
            op(),
            json!({"name": format!("Shopper Number{i}"), "email": format!("shopper{i}@example.com")}),
        )
        .await;
        vault
            .record_consent(
                &agent,
                id,
                &ConsentInput {
                    purpose: "marketing_email".into(),
                    action: ConsentAction::Grant,
                    source: ConsentSource::InStore,
                },
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// A token of `role` (a service client), made with the binary.
pub fn role_token(db: &TestDb, role: &str) -> String {
    let (code, out, err) = run(&["token", "create", "--name", role, "--role", role], db);
    assert_eq!(code, 0, "{err}");
    crate::support::token_in(&out)
}

/// A marketing token (service client).
pub fn marketing_token(db: &TestDb) -> String {
    role_token(db, "marketing")
}

/// `steward serve` handing campaign mail to the SMTP server on `port`, as
/// "Shop News <news@shop.example>", its links under `https://crm.shop.example`; then `extra`.
pub fn mail_serve(db: &TestDb, port: u16, extra: &[&str]) -> Server {
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let mut args = vec![
        "--smtp-url",
        &smtp_url,
        "--mail-from",
        "Shop News <news@shop.example>",
        "--public-url",
        "https://crm.shop.example",
    ];
    args.extend_from_slice(extra);
    Server::start(db, &args, &[])
}

/// Defines "everyone" and composes a campaign to it; returns the campaign's id.
pub fn compose(addr: &str, token: &str, subject: &str) -> String {
    let (s, seg) = api(
        addr,
        token,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Everyone", "rules": {"all": []}})),
    );
    assert_eq!(s, 201, "{seg}");
    let (s, c) = api(
        addr,
        token,
        "POST",
        "/v1/campaigns",
        Some(
            json!({"segment_id": seg["id"], "purpose": "marketing_email",
                    "subject": subject, "body": "Dear {{first_name}}, the winter sale starts."}),
        ),
    );
    assert_eq!(s, 201, "{c}");
    c["id"].as_str().unwrap().to_owned()
}

/// `POST /v1/campaigns/{id}/send`.
pub fn start_sending(addr: &str, token: &str, id: &str) -> (u16, Value) {
    api(
        addr,
        token,
        "POST",
        &format!("/v1/campaigns/{id}/send"),
        None,
    )
}

/// Waits until the campaign is sent; its view.
pub fn sent(addr: &str, token: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (s, c) = api(addr, token, "GET", &format!("/v1/campaigns/{id}"), None);
        assert_eq!(s, 200, "{c}");
        if c["status"] == "sent" {
            return c;
        }
        assert!(Instant::now() < deadline, "not sent in time: {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

backend_tests!(a_campaign_reaches_only_consenting_capped_deliverable_members);

async fn a_campaign_reaches_only_consenting_capped_deliverable_members(db: TestDb) {
    let receivers = consenting(&db, 0, 12).await;
    let withdrawing = consenting(&db, 100, 2).await;
    // Consenting but with no address, and one the mail server refuses.
    let vault = db.vault().await;
    let agent = principal(&vault, op(), Role::SupportAgent).await;
    let grant = ConsentInput {
        purpose: "marketing_email".into(),
        action: ConsentAction::Grant,
        source: ConsentSource::InStore,
    };
    let phone_only = operator_customer(
        &vault,
        op(),
        json!({"name": "Phone Only", "phone": "+41 44 668 18 00"}),
    )
    .await;
    vault
        .record_consent(&agent, phone_only, &grant)
        .await
        .unwrap();
    let refused = operator_customer(
        &vault,
        op(),
        json!({"name": "Refused Here", "email": "refused@example.com"}),
    )
    .await;
    vault.record_consent(&agent, refused, &grant).await.unwrap();
    // Not consenting: never a member.
    operator_customer(
        &vault,
        op(),
        json!({"name": "No Thanks", "email": "nothanks@example.com"}),
    )
    .await;
    let marketing = marketing_token(&db);
    let port = free_port();
    let server = mail_serve(&db, port, &["--marketing-cap", "1/7d"]);
    let addr = server.addr.clone();
    let campaign = compose(&addr, &marketing, "Hello {{first_name}}");
    // The mail server is not up yet: sending starts, but nothing is claimed.
    let (s, started) = start_sending(&addr, &marketing, &campaign);
    assert_eq!(s, 202, "{started}");
    assert_eq!(started["status"], "sending");
    assert_eq!(started["counts"]["queued"], 16, "{started}");
    // Sending twice is refused.
    let (s, again) = start_sending(&addr, &marketing, &campaign);
    assert_eq!(s, 409, "{again}");
    // Two withdraw between the start and their message: honoured at send time.
    for id in &withdrawing {
        let (s, w) = api(
            &addr,
            &marketing,
            "POST",
            &format!("/v1/customers/{id}/consents"),
            Some(json!({"purpose": "marketing_email", "action": "withdraw", "source": "api"})),
        );
        assert_eq!(s, 201, "{w}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let smtp = Smtp::start(port, &["refused@example.com"]);
    let done = sent(&addr, &marketing, &campaign, Duration::from_secs(60));
    let counts = &done["counts"];
    assert_eq!(
        (
            counts["sent"].as_u64(),
            counts["skipped"].as_u64(),
            counts["failed"].as_u64(),
            counts["queued"].as_u64()
        ),
        (Some(12), Some(3), Some(1), Some(0)),
        "{done}"
    );
    let messages = smtp.messages();
    let mut to: Vec<&str> = messages
        .iter()
        .filter_map(|m| header(m, "X-Envelope-To"))
        .collect();
    to.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("shopper{i}@example.com")).collect();
    expected.sort();
    assert_eq!(
        to, expected,
        "each consenting, deliverable member exactly once"
    );
    assert_eq!(receivers.len(), 12);
    // Signed, with the unsubscribe headers signed too; the record verifies it.
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
    let record = record.trim();
    assert!(
        record.starts_with("steward._domainkey.shop.example TXT \"v=DKIM1; k=ed25519; p="),
        "{record}"
    );
    for m in messages.iter().take(3) {
        assert!(dkim_verifies(m, record), "DKIM does not verify:\n{m}");
        let signed = header(m, "DKIM-Signature").unwrap().to_owned()
            + &m.lines()
                .skip_while(|l| !l.starts_with("DKIM-Signature"))
                .skip(1)
                .take_while(|l| l.starts_with(' '))
                .collect::<String>();
        assert!(
            signed.contains("list-unsubscribe:list-unsubscribe-post"),
            "{signed}"
        );
        assert_eq!(
            header(m, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(header(m, "Message-ID").unwrap().ends_with("@shop.example>"));
        assert!(header(m, "Subject").unwrap().starts_with("Hello Shopper"));
    }
    // The customer's own export lists the campaign: what was sent, under which purpose, and
    // the data it used.
    let out = db.dir.path().join("export.zip");
    let (code, _, err) = run(
        &[
            "export",
            "--customer",
            &receivers[0].to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("campaigns.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let listed: Value = serde_json::from_str(&text).unwrap();
    let c = &listed["campaigns"][0];
    assert_eq!(
        (
            c["campaign_id"].as_str(),
            c["purpose"].as_str(),
            c["state"].as_str()
        ),
        (
            Some(campaign.as_str()),
            Some("marketing_email"),
            Some("sent")
        ),
        "{listed}"
    );
    assert_eq!(
        c["categories_used"],
        json!(["user.contact.email", "user.name"]),
        "{listed}"
    );
    // A message changed in transit no longer verifies.
    let forged = messages[0].replace("winter sale", "summer sale");
    assert!(!dkim_verifies(&forged, record));

    // One-click unsubscribe: the link is the server's public URL and a sealed token.
    let m = &messages[0];
    let link = header(m, "List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>']);
    let path = link
        .strip_prefix("https://crm.shop.example")
        .expect("the public URL");
    assert!(path.starts_with("/unsubscribe/"), "{path}");
    assert!(
        !link.contains("example.com"),
        "no address in the link: {link}"
    );
    let who = header(m, "X-Envelope-To").unwrap();
    let i: usize = who
        .trim_start_matches("shopper")
        .split('@')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let customer = receivers[i];
    let consent_of = |vault: steward_service::Vault| async move {
        let dpo = principal(&vault, op(), Role::Dpo).await;
        vault.consent_state(&dpo, customer).await.unwrap()
    };
    // A GET (what a link scanner does) changes nothing.
    let (s, page) = http(&addr, "GET", path, None, None);
    assert_eq!(s, 200);
    assert!(
        page.contains("<button type=\"submit\">Unsubscribe</button>"),
        "{page}"
    );
    assert!(!page.contains(who), "the page names no one");
    assert!(
        consent_of(db.vault().await)
            .await
            .granted("marketing_email")
    );
    // A POST without the one-click body changes nothing either.
    let (s, _) = http(
        &addr,
        "POST",
        path,
        None,
        Some(("application/x-www-form-urlencoded", "unsubscribe=yes")),
    );
    assert_eq!(s, 400);
    assert!(
        consent_of(db.vault().await)
            .await
            .granted("marketing_email")
    );
    // A changed token is refused.
    let tampered = format!(
        "{}{}",
        &path[..path.len() - 1],
        if path.ends_with('A') { 'B' } else { 'A' }
    );
    let (s, _) = http(
        &addr,
        "POST",
        &tampered,
        None,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    );
    assert_eq!(s, 404);
    // The one-click POST withdraws, answered within a second.
    let t0 = Instant::now();
    let (s, page) = http(
        &addr,
        "POST",
        path,
        None,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    );
    assert_eq!(s, 200, "{page}");
    assert!(t0.elapsed() < Duration::from_secs(1));
    let state = consent_of(db.vault().await).await;
    assert!(!state.granted("marketing_email"));
    let last = state.history.last().unwrap();
    assert_eq!(last.source, "unsubscribe");
    // Only that customer's consent: the others still hold theirs.
    let other = receivers[(i + 1) % 12];
    let vault = db.vault().await;
    let dpo = principal(&vault, op(), Role::Dpo).await;
    assert!(
        vault
            .consent_state(&dpo, other)
            .await
            .unwrap()
            .granted("marketing_email")
    );
    // Again (or as multipart, as the RFC allows): still 200, nothing more recorded.
    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let (s, _) = http(
        &addr,
        "POST",
        path,
        None,
        Some((
            &format!("multipart/form-data; boundary={boundary}"),
            &multipart,
        )),
    );
    assert_eq!(s, 200);
    assert_eq!(
        consent_of(db.vault().await).await.history.len(),
        state.history.len()
    );
    let (_, c) = api(
        &addr,
        &marketing,
        "GET",
        &format!("/v1/campaigns/{campaign}"),
        None,
    );
    assert_eq!(c["counts"]["unsubscribed"], 1, "{c}");
    // The customer consents again in the shop; the old link, posted again (a forwarded mail, a
    // scanner that posts), does not take the new consent back.
    let vault = db.vault().await;
    let agent = principal(&vault, op(), Role::SupportAgent).await;
    vault
        .record_consent(&agent, customer, &grant)
        .await
        .unwrap();
    let (s, _) = http(
        &addr,
        "POST",
        path,
        None,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    );
    assert_eq!(s, 200);
    assert!(
        consent_of(db.vault().await)
            .await
            .granted("marketing_email")
    );
    // They withdraw again in the shop: the second campaign below does not reach them.
    let withdraw = ConsentInput {
        purpose: "marketing_email".into(),
        action: ConsentAction::Withdraw,
        source: ConsentSource::InStore,
    };
    vault
        .record_consent(&agent, customer, &withdraw)
        .await
        .unwrap();

    // The frequency cap (1 in 7 days here): a second campaign reaches no one who had one.
    let second = compose(&addr, &marketing, "Again");
    let (s, _) = start_sending(&addr, &marketing, &second);
    assert_eq!(s, 202);
    let done = sent(&addr, &marketing, &second, Duration::from_secs(60));
    assert_eq!(done["counts"]["sent"], 0, "{done}");
    let received = smtp.messages().len();
    assert_eq!(received, 12, "nothing more was delivered");
}

backend_tests!(a_campaign_killed_mid_way_resumes_without_duplicates);

/// `kill -9` while messages are being handed over, then a restart: the campaign finishes, no
/// customer receives it twice, and a message whose hand-over was cut off is counted uncertain,
/// never sent again.
async fn a_campaign_killed_mid_way_resumes_without_duplicates(db: TestDb) {
    const N: usize = 240;
    consenting(&db, 0, N).await;
    let marketing = marketing_token(&db);
    let port = free_port();
    let args = ["--send-lease-secs", "1"];
    // A slow mail server, so that the kill lands with messages in flight.
    let smtp = Smtp::start_slow(port, &[], 0.02);
    let server = mail_serve(&db, port, &args);
    let campaign = compose(&server.addr, &marketing, "Hello {{first_name}}");
    let (s, _) = start_sending(&server.addr, &marketing, &campaign);
    assert_eq!(s, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while smtp.messages().len() < 40 {
        assert!(Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    let at_kill = smtp.messages().len();
    assert!(
        at_kill < N,
        "the campaign finished before the kill ({at_kill})"
    );
    let server = mail_serve(&db, port, &args);
    let done = sent(
        &server.addr,
        &marketing,
        &campaign,
        Duration::from_secs(120),
    );
    eprintln!(
        "killed at {at_kill} received; after the restart: {}",
        done["counts"]
    );
    let c = &done["counts"];
    let n = |k: &str| c[k].as_u64().unwrap();
    let received = smtp.messages();
    let mut to: Vec<&str> = received
        .iter()
        .filter_map(|m| header(m, "X-Envelope-To"))
        .collect();
    to.sort();
    let distinct = {
        let mut d = to.clone();
        d.dedup();
        d.len()
    };
    assert_eq!(distinct, to.len(), "a customer received the campaign twice");
    assert_eq!(n("queued") + n("sending"), 0, "{done}");
    // At most the batch being handed over is uncertain: the one prepared behind it was never
    // marked as handed over, so it went back to the queue and out after the restart.
    assert!(n("uncertain") <= 64, "{done}");
    assert_eq!(
        n("sent") + n("uncertain") + n("failed") + n("skipped"),
        N as u64,
        "{done}"
    );
    assert!(
        received.len() as u64 >= n("sent"),
        "{done}: {} received",
        received.len()
    );
    assert!(
        received.len() as u64 <= n("sent") + n("uncertain"),
        "{done}: {} received",
        received.len()
    );
    assert!(
        n("sent") > at_kill as u64 - n("uncertain").min(at_kill as u64),
        "the restart sent the rest: {done}"
    );
}

backend_tests!(a_merged_record_s_campaign_message_follows_the_person);

/// One person with two records: the campaign went to the duplicate (the kept record had not
/// consented then). After the merge, that message belongs to the kept record: its one-click
/// link withdraws the kept record's consent, and the frequency cap counts it there.
async fn a_merged_record_s_campaign_message_follows_the_person(db: TestDb) {
    consenting(&db, 0, 10).await;
    let vault = db.vault().await;
    let agent = principal(&vault, op(), Role::SupportAgent).await;
    let grant = ConsentInput {
        purpose: "marketing_email".into(),
        action: ConsentAction::Grant,
        source: ConsentSource::InStore,
    };
    let mut twins = Vec::new();
    for email in ["twin.kept@example.com", "twin.merged@example.com"] {
        let input: steward_domain::CustomerInput = serde_json::from_value(
            json!({"name": "Tess Twin", "email": email, "phone": "+41 44 668 18 09"}),
        )
        .unwrap();
        let id = vault
            .records()
            .create_customer_allowing_duplicate(op().into(), &input.validate().unwrap())
            .await
            .unwrap();
        twins.push(id);
    }
    vault
        .record_consent(&agent, twins[1], &grant)
        .await
        .unwrap();
    let desk = role_token(&db, "support_agent");
    let marketing = marketing_token(&db);
    let port = free_port();
    let smtp = Smtp::start(port, &[]);
    let server = mail_serve(&db, port, &["--marketing-cap", "1/7d"]);
    let addr = server.addr.clone();
    let campaign = compose(&addr, &marketing, "Hello {{first_name}}");
    let (s, _) = start_sending(&addr, &marketing, &campaign);
    assert_eq!(s, 202);
    let done = sent(&addr, &marketing, &campaign, Duration::from_secs(60));
    assert_eq!(done["counts"]["sent"], 11, "{done}");
    let messages = smtp.messages();
    let to_twin = messages
        .iter()
        .find(|m| header(m, "X-Envelope-To") == Some("twin.merged@example.com"))
        .expect("the duplicate got the campaign");
    assert!(
        !messages
            .iter()
            .any(|m| header(m, "X-Envelope-To") == Some("twin.kept@example.com"))
    );
    // The kept record consents now; then the duplicate is merged into it.
    vault
        .record_consent(&agent, twins[0], &grant)
        .await
        .unwrap();
    let (s, merged) = api(
        &addr,
        &desk,
        "POST",
        &format!("/v1/customers/{}/merge", twins[0]),
        Some(json!({"other_id": twins[1]})),
    );
    assert_eq!(s, 200, "{merged}");
    // The cap (1 in 7 days) counts the merged record's message for the person.
    let again = compose(&addr, &marketing, "Again");
    let (s, _) = start_sending(&addr, &marketing, &again);
    assert_eq!(s, 202);
    sent(&addr, &marketing, &again, Duration::from_secs(60));
    assert!(
        !smtp
            .messages()
            .iter()
            .any(|m| header(m, "X-Envelope-To") == Some("twin.kept@example.com")),
        "the person had this week's message already"
    );
    // The link in the message the person got withdraws the kept record's consent.
    let link = header(to_twin, "List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>']);
    let path = link.strip_prefix("https://crm.shop.example").unwrap();
    let (s, _) = http(
        &addr,
        "POST",
        path,
        None,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    );
    assert_eq!(s, 200);
    let vault = db.vault().await;
    let dpo = principal(&vault, op(), Role::Dpo).await;
    let state = vault.consent_state(&dpo, twins[0]).await.unwrap();
    assert!(
        !state.granted("marketing_email"),
        "the link withdrew the kept record's consent"
    );
}
