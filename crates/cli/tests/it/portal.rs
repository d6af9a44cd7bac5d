//! The customer privacy portal over HTTP: sign-in with a one-time code that never tells
//! whether an address is known, everything held, consents (with `Sec-GPC: 1`), the export,
//! a correction, the access log with proofs that check, and an erasure that signs out.

use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use steward_domain::{CustomerId, Role};
use steward_service::{TokenOwner, Vault};

use crate::console::{csrf_in, pair, send, send_with, set_cookie};
use crate::support::{TestDb, backend_tests};

/// Keeps the codes the portal sends, as a mailbox would.
#[derive(Default)]
pub(crate) struct Mailbox(pub(crate) Mutex<Vec<(String, String)>>);

impl steward_service::notify::Notifier for Mailbox {
    fn send_code(&self, to: &str, code: &str) -> Result<(), &'static str> {
        self.0
            .lock()
            .map_err(|_| "poisoned")?
            .push((to.to_owned(), code.to_owned()));
        Ok(())
    }

    /// Other messages (a confirmation code to a new address, notices of changes) are kept by
    /// the code they carry on a line of its own, or by their subject if they carry none.
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), &'static str> {
        let code = body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(subject);
        self.send_code(to, code)
    }
}

impl Mailbox {
    /// Waits for the `n`th message (sending is not awaited by the request).
    pub(crate) async fn nth(&self, n: usize) -> (String, String) {
        for _ in 0..200 {
            if let Some(m) = self.0.lock().unwrap().get(n) {
                return m.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no message {n} arrived");
    }
}

/// Signs the customer holding `email` in to the portal with the code `mail` receives: the
/// session cookie, the session's form token and the home page.
pub(crate) async fn portal_session(
    app: &axum::Router,
    mail: &Mailbox,
    email: &str,
) -> (String, String, String) {
    let (_, h, page) = send(app, "GET", "/portal", None, None).await;
    let (pre, csrf) = (pair(set_cookie(&h, "steward_portal_csrf")), csrf_in(&page));
    let sent = mail.0.lock().unwrap().len();
    let ask = [("csrf", csrf.as_str()), ("email", email)];
    let (_, h, _) = send(app, "POST", "/portal/code", Some(&pre), Some(&ask)).await;
    let (_, code) = mail.nth(sent).await;
    let challenge = pair(set_cookie(&h, "steward_portal_code"));
    let answer = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let cookies = format!("{pre}; {challenge}");
    let (s, h, page) = send(
        app,
        "POST",
        "/portal/sign-in",
        Some(&cookies),
        Some(&answer),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
    let session = pair(set_cookie(&h, "steward_portal"));
    let (s, _, home) = send(app, "GET", "/portal", Some(&session), None).await;
    assert_eq!(s, StatusCode::OK, "{home}");
    let csrf = csrf_in(&home);
    (session, csrf, home)
}

/// An outlet, a marketing staff member and a DPO token; a customer there who agreed to
/// `marketing_email` and `personalisation` in store. Returns the customer and the DPO.
pub async fn consenting_customer(
    vault: &Vault,
    op: steward_service::Operator,
    (name, email, phone): (&str, &str, &str),
) -> (CustomerId, steward_service::Principal) {
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Lausanne")
        .await
        .unwrap();
    let _ = crate::support::staff_member(
        vault,
        op,
        ("Mia Marketer", Role::Marketing, &[outlet]),
        ("mia", "marketing pass 1"),
    )
    .await;
    let input: steward_domain::CustomerInput = serde_json::from_value(serde_json::json!({
        "name": name, "email": email, "phone": phone, "outlet_id": outlet,
    }))
    .unwrap();
    let customer = vault
        .records()
        .create_customer(op.into(), &input.validate().unwrap())
        .await
        .unwrap();
    let (_, token) = vault
        .identity()
        .create_token(op, "dpo", TokenOwner::Role(Role::Dpo))
        .await
        .unwrap();
    let dpo = vault
        .identity()
        .authenticate(&token)
        .await
        .unwrap()
        .unwrap();
    for purpose in ["marketing_email", "personalisation"] {
        let consent: steward_domain::ConsentInput = serde_json::from_value(
            serde_json::json!({"purpose": purpose, "action": "grant", "source": "in_store"}),
        )
        .unwrap();
        vault
            .record_consent(&dpo, customer, &consent)
            .await
            .unwrap();
    }
    (customer, dpo)
}

/// The marketing staff member reads the customer for `marketing_email` `times` times: whether
/// each read was allowed (a refusal must name the purpose).
async fn marketing_reads(vault: &Vault, customer: CustomerId, times: usize) -> Vec<bool> {
    let session = vault
        .identity()
        .sign_in("mia", zeroize::Zeroizing::new("marketing pass 1".into()))
        .await
        .unwrap()
        .unwrap();
    let purpose = vault.purposes().get("purpose", "marketing_email").unwrap();
    let access = steward_service::Access {
        principal: &session.principal,
        purpose: &purpose,
        reason: None,
        break_glass: false,
    };
    let mut allowed = Vec::with_capacity(times);
    for _ in 0..times {
        allowed.push(
            match vault.records().read_customer(&access, customer).await {
                Ok(_) => true,
                Err(steward_service::ServiceError::Forbidden { field, .. }) => {
                    assert_eq!(field, "purpose");
                    false
                }
                Err(e) => panic!("{e}"),
            },
        );
    }
    allowed
}

/// Whether the marketing staff member may read the customer for `marketing_email`.
async fn marketing_may_read(vault: &Vault, customer: CustomerId) -> bool {
    marketing_reads(vault, customer, 1).await == [true]
}

backend_tests!(portal_sign_in_consents_export_and_erasure);

async fn portal_sign_in_consents_export_and_erasure(db: TestDb) {
    let (vault, op, store) = db.open().await;
    let mail = Arc::new(Mailbox::default());
    vault.use_notifier(mail.clone());
    let (customer, dpo) = consenting_customer(
        &vault,
        op,
        ("Pia Portal", "pia.portal@example.com", "+41 21 555 0123"),
    )
    .await;
    let app = steward_api::router(vault.clone());

    // The sign-in page: a pre-sign-in CSRF cookie; the CSP allows this origin's script only.
    let (s, h, page) = send(&app, "GET", "/portal", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(page.contains("<label for=\"email\">"));
    let pre = set_cookie(&h, "steward_portal_csrf");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/portal"] {
        assert!(pre.contains(attr), "{pre}");
    }
    let (pre, csrf) = (pair(pre), csrf_in(&page));

    // An unknown address and a known one get the same answer; only the known one gets mail.
    let ask = |email: &'static str| [("csrf", csrf.clone()), ("email", email.to_owned())];
    let unknown = ask("nobody.here@example.com");
    let unknown: Vec<(&str, &str)> = unknown.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s1, h1, p1) = send(&app, "POST", "/portal/code", Some(&pre), Some(&unknown)).await;
    let known = ask("Pia.Portal@Example.com");
    let known: Vec<(&str, &str)> = known.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s2, h2, p2) = send(&app, "POST", "/portal/code", Some(&pre), Some(&known)).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(p1, p2, "the page tells whether an address is known");
    let (to, code) = mail.nth(0).await;
    assert_eq!(to, "pia.portal@example.com");
    assert_eq!(
        mail.0.lock().unwrap().len(),
        1,
        "mail went to an unknown address"
    );
    let decoy = pair(set_cookie(&h1, "steward_portal_code"));
    let challenge = pair(set_cookie(&h2, "steward_portal_code"));
    // Forms posted without the CSRF cookie are refused.
    let (s, _, _) = send(&app, "POST", "/portal/code", None, Some(&known)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The right code with the decoy's challenge, then a wrong code, fail alike.
    let with = |c: &str| format!("{pre}; {c}");
    let right = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let wrong = [("csrf", csrf.as_str()), ("code", "00000000")];
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/sign-in",
        Some(&with(&decoy)),
        Some(&right),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(page.contains("wrong or has expired"));
    let (s, _, _) = send(
        &app,
        "POST",
        "/portal/sign-in",
        Some(&with(&challenge)),
        Some(&wrong),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The right code opens a session, honouring Sec-GPC: both purposes the signal covers,
    // granted in store, are withdrawn.
    let (s, h, _) = send_with(
        &app,
        "POST",
        "/portal/sign-in",
        Some(&with(&challenge)),
        Some(&right),
        &[("sec-gpc", "1")],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/portal");
    let session = set_cookie(&h, "steward_portal");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age="] {
        assert!(session.contains(attr), "{session}");
    }
    let session = pair(session);
    // A code opens one session only.
    let (s, _, _) = send(
        &app,
        "POST",
        "/portal/sign-in",
        Some(&with(&challenge)),
        Some(&right),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let state = vault.consent_state(&dpo, customer).await.unwrap();
    let gpc: Vec<&str> = state
        .history
        .iter()
        .filter(|e| e.source == "gpc")
        .map(|e| e.purpose.as_str())
        .collect();
    assert_eq!(gpc, ["marketing_email", "personalisation"], "{state:?}");
    assert!(!marketing_may_read(&vault, customer).await);

    // Everything held, the purposes with their notices, a toggle per consent purpose.
    let (s, _, home) = send(&app, "GET", "/portal", Some(&session), None).await;
    assert_eq!(s, StatusCode::OK, "{home}");
    for held in [
        "Pia Portal",
        "pia.portal@example.com",
        "+41215550123",
        "Order fulfilment",
    ] {
        assert!(home.contains(held), "{held} missing");
    }
    let notice = vault
        .purposes()
        .get("purpose", "marketing_email")
        .unwrap()
        .notice_text
        .clone();
    assert!(home.contains(&askama_escape(&notice)), "no notice text");
    assert!(home.contains("id=\"grant-marketing_email\""));
    let csrf = csrf_in(&home);

    // Forged CSRF: refused, nothing recorded.
    let forged = [
        ("csrf", "forged"),
        ("purpose", "marketing_email"),
        ("action", "grant"),
    ];
    let (s, _, _) = send(
        &app,
        "POST",
        "/portal/consents",
        Some(&session),
        Some(&forged),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let before = vault
        .consent_state(&dpo, customer)
        .await
        .unwrap()
        .history
        .len();
    assert_eq!(before, 4);

    // The customer's own grant in the portal stands even under GPC; a staff read works again.
    let grant = [
        ("csrf", csrf.as_str()),
        ("purpose", "marketing_email"),
        ("action", "grant"),
    ];
    let (s, _, page) = send_with(
        &app,
        "POST",
        "/portal/consents",
        Some(&session),
        Some(&grant),
        &[("sec-gpc", "1")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("You agreed to marketing email."));
    assert!(page.contains("Global Privacy Control"));
    assert!(marketing_may_read(&vault, customer).await);
    // Withdrawing is as easy: one button, and the staff read is refused at once.
    let withdraw = [
        ("csrf", csrf.as_str()),
        ("purpose", "marketing_email"),
        ("action", "withdraw"),
    ];
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/consents",
        Some(&session),
        Some(&withdraw),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("You withdrew your consent to marketing email"));
    assert!(!marketing_may_read(&vault, customer).await);
    let last = vault.consent_state(&dpo, customer).await.unwrap();
    let last = last.history.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.source.as_str()),
        ("withdraw", "portal")
    );
    // A purpose that does not rest on consent cannot be toggled.
    let bad = [
        ("csrf", csrf.as_str()),
        ("purpose", "order_fulfilment"),
        ("action", "grant"),
    ];
    let (s, _, _) = send(&app, "POST", "/portal/consents", Some(&session), Some(&bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The export: a ZIP with the profile.
    let form = [("csrf", csrf.as_str())];
    let (s, h, zip) = send(&app, "POST", "/portal/export", Some(&session), Some(&form)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/zip");
    assert!(zip.starts_with("PK") && zip.contains("profile.json"));

    // A correction of an unchecked field applies at once (the address alone too).
    for (field, value) in [
        ("name", "Pia Portal-Muster"),
        ("address", "12 Rue du Lac, 1003 Lausanne"),
    ] {
        let fix = [("csrf", csrf.as_str()), ("field", field), ("value", value)];
        let path = "/portal/requests/correction";
        let (s, _, page) = send(&app, "POST", path, Some(&session), Some(&fix)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(page.contains("Your correction is made.") && page.contains(value));
    }
    let bad = [
        ("csrf", csrf.as_str()),
        ("field", "phone"),
        ("value", "not a phone"),
    ];
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/requests/correction",
        Some(&session),
        Some(&bad),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(!page.contains("not a phone"), "the error echoes the value");

    // The access log: every entry's inclusion proof checks against the signed head.
    let (s, _, log) = send(&app, "GET", "/portal/access-log", Some(&session), None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let checked = check_proofs(&vault, &log);
    assert!(checked >= 10, "only {checked} entries");
    assert!(
        log.contains("<td>marketing at outlet ") && log.contains(" (p_"),
        "staff by role, outlet and pseudonym"
    );
    // Not `contains("Mia")`: the page carries base64 proofs, in which "Mia" turns up now and
    // then; neither a space nor a tag's end ever does.
    assert!(
        !["Mia Marketer", ">Mia", " Mia"]
            .iter()
            .any(|n| log.contains(n)),
        "a staff name in the access log"
    );
    assert!(!log.contains("Older entries"), "a short log has one page");
    // A long one pages: 250 more reads (refused now, and recorded all the same).
    assert_eq!(marketing_reads(&vault, customer, 250).await, [false; 250]);
    vault.audit().flush().await.unwrap();
    let (_, _, first) = send(&app, "GET", "/portal/access-log", Some(&session), None).await;
    assert_eq!(check_proofs(&vault, &first), 200);
    let at = first
        .find("/portal/access-log?before=")
        .expect("a link to older entries");
    let link = first[at..].split('"').next().unwrap().to_owned();
    let before: u64 = link.rsplit('=').next().unwrap().parse().unwrap();
    let (s, _, older) = send(&app, "GET", &link, Some(&session), None).await;
    assert_eq!(s, StatusCode::OK);
    let n = check_proofs(&vault, &older);
    assert!(n >= checked + 50 && n <= 200, "{n}");
    for row in older.split("data-index=\"").skip(1) {
        let i: u64 = row.split('"').next().unwrap().parse().unwrap();
        assert!(i < before, "entry {i} is not older than {before}");
    }
    let (s, _, _) = send(
        &app,
        "GET",
        "/portal/access-log?before=x",
        Some(&session),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Erasure: needs the box ticked; then the data is gone and the session with it.
    let unticked = [("csrf", csrf.as_str())];
    let (s, _, _) = send(
        &app,
        "POST",
        "/portal/requests/erasure",
        Some(&session),
        Some(&unticked),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let ticked = [("csrf", csrf.as_str()), ("confirm", "yes")];
    let (s, h, page) = send(
        &app,
        "POST",
        "/portal/requests/erasure",
        Some(&session),
        Some(&ticked),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Your data is erased"));
    assert!(set_cookie(&h, "steward_portal").contains("Max-Age=0"));
    let (_, _, page) = send(&app, "GET", "/portal", Some(&session), None).await;
    assert!(
        page.contains("Send me a code"),
        "the session outlived the erasure"
    );
    assert!(
        crate::support::operator_read(&vault, crate::support::op(), customer)
            .await
            .is_err()
    );
    // A new sign-in finds nobody: the same answer, no mail.
    let (_, _, again) = send(&app, "POST", "/portal/code", Some(&pre), Some(&known)).await;
    assert_eq!(again, p2);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(mail.0.lock().unwrap().len(), 1);

    // No personal value in the audit log, and the customer's own steps are there as `subject`.
    vault.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    let entries = store.audit_entries(0, size).await.unwrap();
    let text: String = entries
        .iter()
        .map(|e| crate::support::leaf_text(&e.row.leaf))
        .collect();
    for value in ["pia.portal", "Pia Portal", "555 0123", &code] {
        assert!(!text.contains(value), "{value} in the audit log");
    }
    for action in [
        "portal.sign_in",
        "portal.view",
        "portal.access_log",
        "export_subject",
    ] {
        assert!(text.contains(action), "no {action} entry");
    }
    assert!(text.contains("\"subject\""));

    // Retention sweeps codes dead for over a day, and keeps live ones.
    let now = steward_domain::Timestamp::now().millis();
    let old = steward_store::PortalCodeRow {
        id: uuid::Uuid::now_v7(),
        customer_id: None,
        code_mac: vec![0; 16],
        attempts: 0,
        created_at: now - 3 * 86_400_000,
        expires_at: now - 2 * 86_400_000,
    };
    store.insert_portal_code(&old, &[]).await.unwrap();
    let live = store.portal_code(old.id).await.unwrap();
    assert_eq!(live.as_ref(), Some(&old));
    let swept = vault
        .run_retention(crate::support::op(), false)
        .await
        .unwrap()
        .sessions;
    assert_eq!(swept, 1, "only the dead code goes");
    assert_eq!(store.portal_code(old.id).await.unwrap(), None);
    let decoy_id = decoy.split('=').nth(1).unwrap().parse().unwrap();
    assert!(store.portal_code(decoy_id).await.unwrap().is_some());
}

/// What askama makes of a text in HTML.
fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Checks every entry's inclusion proof on an access-log page against the page's signed
/// head, and the head's signature; returns how many entries were checked.
fn check_proofs(vault: &Vault, page: &str) -> usize {
    let attr = |from: &str, name: &str| -> String {
        let at = from.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        from[at..].split('"').next().unwrap().to_owned()
    };
    let note = String::from_utf8(STANDARD.decode(attr(page, "data-checkpoint")).unwrap()).unwrap();
    let verifier = steward_crypto::NoteVerifier::parse(vault.audit().verifier_key()).unwrap();
    let text = verifier.open(&note).expect("a signed head");
    let head = steward_crypto::Checkpoint::parse(text).unwrap();
    let mut n = 0;
    for row in page.split("<tr class=\"entry\"").skip(1) {
        let index: u64 = attr(row, "data-index").parse().unwrap();
        let leaf = STANDARD.decode(attr(row, "data-leaf")).unwrap();
        let proof: Vec<[u8; 32]> = attr(row, "data-proof")
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| STANDARD.decode(p).unwrap().try_into().unwrap())
            .collect();
        let leaf = steward_crypto::merkle::leaf_hash(&leaf);
        assert!(
            steward_crypto::merkle::verify_inclusion(index, head.size, &leaf, &proof, &head.root),
            "entry {index} is not proven"
        );
        n += 1;
    }
    n
}
