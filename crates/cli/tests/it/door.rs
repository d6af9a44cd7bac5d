//! The authorisation matrix of the console's and the portal's state-changing routes (issue 16,
//! part 6): the same table-against-behaviour check as `matrix.rs`, through the HTML doors. Every
//! role signs in to the console as a staff member of the customer's own outlet and posts every
//! form; the outcomes are written out by hand from the policy's rules. The portal's forms act only
//! for the customer signed in: without a portal session (or with a staff member's console cookie)
//! none of them acts.

use axum::http::StatusCode;
use steward_domain::Role;

use crate::console::{csrf_in, pair, send, set_cookie};
use crate::support::{TestDb, backend_tests};

backend_tests!(
    console_forms_by_role,
    console_pages_forms_by_role,
    portal_forms_need_the_customer
);

/// Signs `login` in to the console: the session cookie and the session's form token.
pub(crate) async fn console_session(
    app: &axum::Router,
    login: &str,
    password: &str,
) -> (String, String) {
    let (_, h, page) = send(app, "GET", "/console/sign-in", None, None).await;
    let pre = pair(set_cookie(&h, "steward_csrf"));
    let form = [
        ("csrf", csrf_in(&page)),
        ("login", login.to_owned()),
        ("password", password.to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, h, _) = send(app, "POST", "/console/sign-in", Some(&pre), Some(&form)).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{login} could not sign in");
    let session = pair(set_cookie(&h, "steward_session"));
    // Any signed-in page carries the session's form token (the sign-out form); the purposes page
    // is shown even to whom must first acknowledge the confidentiality notice.
    let (_, _, page) = send(app, "GET", "/console/purposes", Some(&session), None).await;
    (session, csrf_in(&page))
}

/// A console form: its path under the customer, its fields, the roles it succeeds for and the
/// status of success.
type FormCase = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<Role>,
    StatusCode,
);

fn forms() -> Vec<FormCase> {
    use Role::*;
    let recorders = vec![SalesAssociate, StoreManager, SupportAgent, Dpo];
    vec![
        (
            "interactions",
            vec![("channel", "in_store"), ("text", "Asked about a strap")],
            recorders.clone(),
            StatusCode::SEE_OTHER,
        ),
        (
            // At the staff member's own outlet, sold by them: outlet staff only.
            "purchases",
            vec![
                ("item", "Door Watch"),
                ("category", "watches"),
                ("amount", "12.50"),
                ("currency", "EUR"),
            ],
            vec![SalesAssociate, StoreManager],
            StatusCode::SEE_OTHER,
        ),
        (
            // A correction: decided like a full read (outlet staff at their own outlet).
            "edit",
            vec![("name", "Door Renamed"), ("was_name", "Door Customer")],
            recorders.clone(),
            StatusCode::SEE_OTHER,
        ),
        (
            // A grant given in store; marketing may withdraw, never grant.
            "consents",
            vec![("consent_purpose", "personalisation"), ("action", "grant")],
            recorders.clone(),
            StatusCode::SEE_OTHER,
        ),
        (
            // A message to the customer: outlet staff of the customer's outlet and support
            // agents (the mail goes to a file here).
            "messages",
            vec![("subject", "Your strap"), ("text", "It has arrived.")],
            vec![SalesAssociate, StoreManager, SupportAgent],
            StatusCode::SEE_OTHER,
        ),
        (
            // A read beyond the rules with a reason: the page, for those who may read the
            // customer for `service` at all; break-glass never widens who declares a purpose.
            "break-glass",
            vec![("reason", "customer called about a disputed charge")],
            recorders,
            StatusCode::OK,
        ),
    ]
}

/// The roles a customer form succeeds for when the customer belongs to another outlet than the
/// staff member's: outlet staff keep the rules that name no outlet (`record-customers`,
/// `record-purchases`, and reading a name for the page) and lose those that do
/// (`update-customers`, `staff-messages`).
fn elsewhere(form: &str) -> Vec<Role> {
    use Role::*;
    match form {
        "purchases" => vec![SalesAssociate, StoreManager],
        "edit" => vec![SupportAgent, Dpo],
        "messages" => vec![SupportAgent],
        _ => vec![SalesAssociate, StoreManager, SupportAgent, Dpo],
    }
}

/// The roles a customer form succeeds for when the customer (of the staff member's own outlet)
/// has restricted the processing of their data (Art. 18): nothing is read or used (the policy's
/// `restriction` forbids every read, so no page and no message); what the shop records (an
/// interaction, a sale, a consent) is still stored, and a correction still applies
/// (`update-customers` names no restriction: a restriction often waits for one, Art. 18(1)(a)).
fn when_restricted(form: &str) -> Vec<Role> {
    use Role::*;
    match form {
        "purchases" => vec![SalesAssociate, StoreManager],
        "messages" | "break-glass" => vec![],
        _ => vec![SalesAssociate, StoreManager, SupportAgent, Dpo],
    }
}

/// An outlet, its customer `Door Customer` and mail that goes to a file.
async fn door_world(
    db: &TestDb,
) -> (
    steward_service::Vault,
    steward_service::Operator,
    steward_domain::OutletId,
    steward_domain::CustomerId,
) {
    let (vault, op, _) = db.open().await;
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Door Outlet")
        .await
        .unwrap();
    let customer = crate::support::operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Door Customer", "email": "door@example.com", "outlet_id": outlet}),
    )
    .await;
    vault.use_notifier(std::sync::Arc::new(
        steward_service::notify::FileNotifier::new(db.dir.path().join("mail.txt")),
    ));
    vault
        .outreach()
        .configure_mail(
            op,
            steward_service::sending::MailSettings {
                public_url: "https://crm.shop.example".into(),
                from: "Shop <news@shop.example>".into(),
                cap: Default::default(),
                lease: std::time::Duration::from_secs(60),
                reply_domain: None,
            },
        )
        .unwrap();
    (vault, op, outlet, customer)
}

async fn console_forms_by_role(db: TestDb) {
    let (vault, op, outlet, customer) = door_world(&db).await;
    let store = db.open().await.2;
    let restricted = crate::support::operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Door Customer", "email": "restricted@example.com", "outlet_id": outlet}),
    )
    .await;
    store.set_restricted(restricted, true, &[]).await.unwrap();
    let far = vault
        .directory()
        .create_outlet(op.into(), "Far Outlet")
        .await
        .unwrap();
    let stranger = crate::support::operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Door Customer", "email": "far@example.com", "outlet_id": far}),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let password = "a long enough password";
    let mut wrong = Vec::new();
    let mut checked = 0;
    for role in Role::ALL {
        let staff = vault
            .directory()
            .create_staff(op.into(), &format!("Door {role:?}"), &[role], &[outlet])
            .await
            .unwrap();
        let login = format!("door.{}", role.as_str().replace('_', "."));
        vault
            .identity()
            .set_staff_password(op, staff, &login, zeroize::Zeroizing::new(password.into()))
            .await
            .unwrap();
        let (session, csrf) = console_session(&app, &login, password).await;
        // Who may declare `service` (its registered roles).
        let declares = matches!(
            role,
            Role::SalesAssociate | Role::StoreManager | Role::SupportAgent | Role::Dpo
        );
        for (form, fields, roles, success) in forms() {
            let mut body = vec![("csrf", csrf.as_str()), ("purpose", "service")];
            body.extend(fields);
            for (whose, roles) in [
                (customer, roles),
                (stranger, elsewhere(form)),
                (restricted, when_restricted(form)),
            ] {
                let path = format!("/console/customers/{whose}/{form}");
                vault.audit().flush().await.unwrap();
                let before = store.count_audit_entries(whose).await.unwrap();
                let (got, _, page) = send(&app, "POST", &path, Some(&session), Some(&body)).await;
                vault.audit().flush().await.unwrap();
                let after = store.count_audit_entries(whose).await.unwrap();
                // An act leaves its entry about the customer; a refused write leaves none. A
                // read is recorded whatever its outcome, and so is a message (a use of the
                // address) by whoever may declare the purpose.
                let want_entry = match form {
                    "break-glass" => true,
                    "messages" => declares,
                    _ => roles.contains(&role),
                };
                if (after > before) != want_entry {
                    wrong.push(format!(
                        "{role:?} POST {form} to {whose}: {} audit entries, want {}",
                        after - before,
                        if want_entry { "some" } else { "none" }
                    ));
                }
                let want = if roles.contains(&role) {
                    success
                } else {
                    StatusCode::FORBIDDEN
                };
                if got != want {
                    let title = page.split("<title>").nth(1).unwrap_or("").split('<').next();
                    let far = if whose == stranger {
                        " (another outlet's customer)"
                    } else if whose == restricted {
                        " (a restricted customer)"
                    } else {
                        ""
                    };
                    wrong.push(format!(
                        "{role:?} POST {form}{far}: got {got}, want {want} ({title:?})"
                    ));
                }
                checked += 1;
            }
        }
        // The customer's page offers a recording form only to whom the policy lets use it.
        let (read, _, page) = send(
            &app,
            "GET",
            &format!("/console/customers/{customer}?purpose=service"),
            Some(&session),
            None,
        )
        .await;
        for (form, _, roles, _) in forms()
            .into_iter()
            .filter(|f| ["interactions", "purchases", "messages"].contains(&f.0))
        {
            let offered =
                page.contains(&format!("action=\"/console/customers/{customer}/{form}\""));
            let want = read == StatusCode::OK && roles.contains(&role);
            if offered != want {
                wrong.push(format!(
                    "{role:?} page offers {form}: {offered}, want {want}"
                ));
            }
            checked += 1;
        }
        // Search, by the customer's e-mail: the page for who may declare `service`.
        let body = [
            ("csrf", csrf.as_str()),
            ("purpose", "service"),
            ("query", "door@example.com"),
        ];
        let (got, _, _) = send(&app, "POST", "/console/search", Some(&session), Some(&body)).await;
        let want = if declares {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        if got != want {
            wrong.push(format!("{role:?} POST search: got {got}, want {want}"));
        }
        checked += 1;
        // The home page offers `service` to whom declares it, asks the DPO for a reason and
        // links the DPO's desk for the DPO alone.
        let (_, _, home) = send(&app, "GET", "/console", Some(&session), None).await;
        let offers = [
            home.contains("<option value=\"service\""),
            home.contains("id=\"reason\""),
            home.contains("href=\"/console/dpo\""),
        ];
        let dpo = role == Role::Dpo;
        if offers != [declares, dpo, dpo] {
            wrong.push(format!(
                "{role:?} home offers (service, reason, desk) {offers:?}, want {:?}",
                [declares, dpo, dpo]
            ));
        }
        checked += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} console cells differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(checked, Role::ALL.len() * (3 * forms().len() + 5));
}

/// Every state-changing portal form, posted without a portal session (and with a staff member's
/// console session cookie instead), acts for nobody: it answers with the sign-in page or a
/// refusal, and changes nothing the customer's own session would see.
async fn portal_forms_need_the_customer(db: TestDb) {
    let (vault, op, store) = db.open().await;
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Portal Door")
        .await
        .unwrap();
    let _ = crate::support::staff_member(
        &vault,
        op,
        ("Door Agent", Role::SupportAgent, &[outlet]),
        ("door.agent", "a long enough password"),
    )
    .await;
    let customer = crate::support::operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Portal Door", "email": "portal.door@example.com", "outlet_id": outlet}),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let (console_cookie, _) = console_session(&app, "door.agent", "a long enough password").await;
    let before = crate::support::operator_read(&vault, op, customer)
        .await
        .unwrap();
    let forms: [(&str, Vec<(&str, &str)>); 8] = [
        (
            "/portal/consents",
            vec![("purpose", "personalisation"), ("action", "grant")],
        ),
        ("/portal/export", vec![]),
        (
            "/portal/requests/correction",
            vec![("field", "name"), ("value", "Changed By Nobody")],
        ),
        ("/portal/requests/erasure", vec![("confirm", "yes")]),
        (
            "/portal/requests/objection",
            vec![("purpose", "marketing_email")],
        ),
        ("/portal/requests/restriction", vec![("confirm", "yes")]),
        (
            "/portal/surveys/00000000-0000-7000-8000-000000000000/token",
            vec![],
        ),
        ("/portal/sign-out", vec![]),
    ];
    vault.audit().flush().await.unwrap();
    let entries = store.count_audit_entries(customer).await.unwrap();
    for cookie in [None, Some(console_cookie.as_str())] {
        for (path, fields) in &forms {
            let mut body = vec![("csrf", "anything")];
            body.extend(fields.iter().copied());
            let (s, h, page) = send(&app, "POST", path, cookie, Some(&body)).await;
            let to_sign_in =
                s == StatusCode::SEE_OTHER && h.get("location").is_some_and(|l| l == "/portal");
            let refused = matches!(s, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED);
            let sign_in_page = s == StatusCode::OK && page.contains("Send me a code");
            assert!(
                to_sign_in || refused || sign_in_page,
                "POST {path} without the customer's session answered {s}: {page}"
            );
            assert!(!page.contains("portal.door@example.com"), "{path}: {page}");
        }
    }
    // Nothing was done about the customer: no entry about them entered the log.
    vault.audit().flush().await.unwrap();
    assert_eq!(store.count_audit_entries(customer).await.unwrap(), entries);
    // Nothing changed: the customer is there, as before, and gave no consent.
    let after = crate::support::operator_read(&vault, op, customer)
        .await
        .unwrap();
    assert_eq!(before, after);
    let agent = crate::support::principal(&vault, op, Role::SupportAgent).await;
    let consents = vault.consent_state(&agent, customer).await.unwrap();
    assert!(consents.current.is_empty(), "{:?}", consents.current);
}

/// The audit entry a console form's allowed post leaves, by its route (the act itself; a read
/// with a reason is a decided `read`).
fn act_of(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_start_matches("/console/").split('/').collect();
    match parts.as_slice() {
        ["customers", "new"] => "create_customer",
        ["customers", _, "merge"] => "merge",
        ["customers", _, "read"] => "read",
        ["directory", "outlets"] => "create_outlet",
        ["directory", "staff"] => "create_staff",
        ["directory", "staff", _, "disabled"] => "disable_staff",
        ["directory", "tokens", _, "revoke"] => "revoke_token",
        ["purposes"] => "register_purpose",
        ["purposes", _] => "change_purpose",
        ["segments"] => "create_segment",
        ["campaigns"] => "create_campaign",
        ["campaigns", _, "send"] => "send_campaign",
        ["surveys"] => "create_survey",
        ["surveys", _, "send"] => "send_survey",
        ["analytics"] => "analytics_release",
        ["sharing", "recipients"] => "create_recipient",
        ["sharing", "agreements"] => "create_agreement",
        ["sharing", "agreements", _, "end"] => "end_agreement",
        ["dpo", "requests", _, "deny"] => "request.denied",
        ["dpo", "requests", _, "verify"] => "request.fulfilled",
        // A confirmed correction changes the profile (and fulfils the request).
        ["dpo", "requests", _, "confirm"] => "update_customer",
        _ => panic!("{path}: say which entry its act leaves"),
    }
}

/// What each role acts on in [`console_pages_forms_by_role`]: a target of its own for every form
/// that changes state once (a second post would meet a changed state, not the decision).
struct Targets {
    staff: String,
    token: String,
    campaign: String,
    survey: String,
    request: String,
    to_verify: String,
    to_confirm: String,
    agreement: String,
    duplicate: String,
}

/// A console form beside a customer's own: path, fields, the roles it succeeds for, the status
/// of success.
type PageCase = (String, Vec<(&'static str, String)>, Vec<Role>, StatusCode);

/// The console's other state-changing forms for `role`, with the roles the policy lets use
/// each, written out by hand from `steward.cedar`.
fn page_forms(role: Role, t: &Targets, shared: &(String, String, String, String)) -> Vec<PageCase> {
    use Role::*;
    let (outlet, customer, segment, recipient) = shared;
    let r = role.as_str();
    let recorders = vec![SalesAssociate, StoreManager, SupportAgent, Dpo];
    let see_other = StatusCode::SEE_OTHER;
    vec![
        (
            // `record-customers`.
            "/console/customers/new".into(),
            vec![
                ("purpose", "service".into()),
                ("name", format!("Door New {r}")),
                ("outlet_id", outlet.clone()),
            ],
            recorders.clone(),
            see_other,
        ),
        (
            // `merge-duplicates`.
            format!("/console/customers/{customer}/merge"),
            vec![
                ("purpose", "service".into()),
                ("other_id", t.duplicate.clone()),
            ],
            vec![SupportAgent, Dpo],
            see_other,
        ),
        (
            // A read with a reason: the page, for whoever may read the customer for `service`.
            format!("/console/customers/{customer}/read"),
            vec![
                ("purpose", "service".into()),
                (
                    "reason",
                    "the customer called about a disputed charge".into(),
                ),
            ],
            recorders,
            StatusCode::OK,
        ),
        (
            // `directory-admin`, as are the three below.
            "/console/directory/outlets".into(),
            vec![
                ("name", format!("Door Outlet {r}")),
                ("country", "GB".into()),
            ],
            vec![Admin],
            see_other,
        ),
        (
            "/console/directory/staff".into(),
            vec![
                ("name", format!("Door Hire {r}")),
                ("roles", "sales_associate".into()),
                ("outlet_ids", outlet.clone()),
            ],
            vec![Admin],
            see_other,
        ),
        (
            format!("/console/directory/staff/{}/disabled", t.staff),
            vec![("disabled", "true".into())],
            vec![Admin],
            see_other,
        ),
        (
            format!("/console/directory/tokens/{}/revoke", t.token),
            vec![],
            vec![Admin],
            see_other,
        ),
        (
            // `dpo-purposes`, as is the change below.
            "/console/purposes".into(),
            vec![
                ("key", format!("door_{r}")),
                ("lawful_basis", "consent".into()),
                ("data_use", "marketing.communications.sms".into()),
                ("categories", "user.name".into()),
                ("retention_days", "365".into()),
                (
                    "notice_text",
                    "With your consent we text you offers.".into(),
                ),
                ("roles", "marketing".into()),
            ],
            vec![Dpo],
            see_other,
        ),
        (
            "/console/purposes/door_texts".into(),
            vec![
                ("notice_text", format!("Texts, as changed by {r}.")),
                ("retention_days", "180".into()),
                ("categories", "user.name".into()),
                ("roles", "marketing".into()),
            ],
            vec![Dpo],
            see_other,
        ),
        (
            // `segments`.
            "/console/segments".into(),
            vec![
                ("name", format!("Door Segment {r}")),
                ("language", "fr".into()),
            ],
            vec![Marketing, Dpo],
            see_other,
        ),
        (
            // `campaigns`, as is sending one.
            "/console/campaigns".into(),
            vec![
                ("segment_id", segment.clone()),
                ("purpose", "marketing_email".into()),
                ("subject", "Door news".into()),
                ("body", "Something new at the shop.".into()),
            ],
            vec![Marketing],
            see_other,
        ),
        (
            format!("/console/campaigns/{}/send", t.campaign),
            vec![],
            vec![Marketing],
            see_other,
        ),
        (
            // `surveys`, as is sending one.
            "/console/surveys".into(),
            vec![
                ("title", format!("Door survey {r}")),
                ("segment_id", segment.clone()),
                ("purpose", "marketing_email".into()),
                ("q1_kind", "scale".into()),
                ("q1_text", "How was your visit?".into()),
            ],
            vec![Marketing, Dpo],
            see_other,
        ),
        (
            format!("/console/surveys/{}/send", t.survey),
            vec![],
            vec![Marketing, Dpo],
            see_other,
        ),
        (
            // `analytics`.
            "/console/analytics".into(),
            vec![("chart", "outlet".into()), ("epsilon", "0.1".into())],
            vec![Analyst, Dpo],
            see_other,
        ),
        (
            // `dpo-recipients`, as are the two below.
            "/console/sharing/recipients".into(),
            vec![
                ("name", format!("Door Recipient {r}")),
                ("kind", "processor".into()),
                ("country", "DE".into()),
                ("contact", "dpo@parcel.example".into()),
                ("webhook_url", "https://door.example/hooks".into()),
            ],
            vec![Dpo],
            see_other,
        ),
        (
            "/console/sharing/agreements".into(),
            vec![
                ("recipient_id", recipient.clone()),
                ("purposes", "order_fulfilment".into()),
                ("categories", "user.name".into()),
                ("lawful_basis", "contract".into()),
                ("document_sha256", "ab".repeat(32)),
                ("starts_at", "2026-01-01".into()),
                ("expires_at", "2099-01-01".into()),
                ("identity", "identified".into()),
            ],
            vec![Dpo],
            see_other,
        ),
        (
            format!("/console/sharing/agreements/{}/end", t.agreement),
            vec![],
            vec![Dpo],
            see_other,
        ),
        (
            // A denial is the DPO's (`dpo-identity-in-person`: it closes the request).
            format!("/console/dpo/requests/{}/deny", t.request),
            vec![("reason", "claim_not_covered".into())],
            vec![Dpo],
            see_other,
        ),
        (
            // Checked in person: the DPO's (`dpo-identity-in-person`).
            format!("/console/dpo/requests/{}/verify", t.to_verify),
            vec![],
            vec![Dpo],
            see_other,
        ),
        (
            // A verified correction waiting for staff: whoever reads requests (`rights-requests`)
            // and may change the profile (`update-customers`).
            format!("/console/dpo/requests/{}/confirm", t.to_confirm),
            vec![],
            vec![SupportAgent, Dpo],
            see_other,
        ),
    ]
}

/// Every other state-changing console form, posted by every role signed in as a staff member
/// of the customer's outlet: it acts for the roles the policy names and answers 403 to the
/// rest. Publishing the confidentiality notice comes last, then every role acknowledges it.
async fn console_pages_forms_by_role(db: TestDb) {
    let (vault, op, outlet, customer) = door_world(&db).await;
    let store = db.open().await.2;
    // What a form's post left in the log by the role that posted it: whether it acted (an entry
    // other than a refusal). An allowed form must leave one, a refused form none; a refused read
    // is recorded as a `deny`, which is no act.
    // `action`: the entry the allowed act must leave; `None`: any act at all.
    let acted = async |role: Role, before: u64, action: Option<&str>| -> bool {
        vault.audit().flush().await.unwrap();
        let after = store.audit_size().await.unwrap();
        store
            .audit_entries(before, after)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| steward_domain::AuditLeaf::from_bytes(&e.row.leaf))
            .any(|l| {
                l.roles == [role]
                    && l.outcome != "deny"
                    && l.outcome != "denied"
                    && action.is_none_or(|a| l.action == a)
            })
    };
    let size = async || {
        vault.audit().flush().await.unwrap();
        store.audit_size().await.unwrap()
    };
    let dpo = crate::support::principal(&vault, op, Role::Dpo).await;
    let marketing = crate::support::principal(&vault, op, Role::Marketing).await;
    // A campaign or a survey goes only to a segment of at least ten customers who consented.
    for i in 0..10 {
        let id = crate::support::operator_customer(
            &vault,
            op,
            serde_json::json!({"name": format!("Door Reader{i}"), "email": format!("reader{i}@example.com"), "outlet_id": outlet}),
        )
        .await;
        let consent: steward_domain::ConsentInput = serde_json::from_value(
            serde_json::json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"}),
        )
        .unwrap();
        vault.record_consent(&dpo, id, &consent).await.unwrap();
    }
    let segment = vault
        .segments()
        .create_segment(&marketing, "Door Everyone", &serde_json::json!({"all": []}))
        .await
        .unwrap();
    let texts: steward_domain::PurposeInput = serde_json::from_value(serde_json::json!({
        "key": "door_texts", "lawful_basis": "consent", "data_use": "marketing.communications.sms",
        "categories": ["user.name"], "retention_days": 365,
        "notice_text": "With your consent we text you offers.", "roles": ["marketing"],
    }))
    .unwrap();
    vault.purposes().register(&dpo, texts).await.unwrap();
    let app = steward_api::router(vault.clone());
    let (_, dpo_token) = vault
        .identity()
        .create_token(
            op,
            "door setup",
            steward_service::TokenOwner::Role(Role::Dpo),
        )
        .await
        .unwrap();
    let post = async |uri: &str, body: serde_json::Value| {
        let (s, _, v) = crate::support::oneshot(
            &app,
            Some(&dpo_token),
            "POST",
            uri,
            Some(body.to_string()),
            Some("application/json"),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{uri}: {v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let recipient = post(
        "/v1/recipients",
        serde_json::json!({"name": "Door Parcel", "kind": "processor", "country": "DE", "webhook_url": "https://door.example/hooks"}),
    )
    .await;
    let mut targets = Vec::new();
    for role in Role::ALL {
        let r = role.as_str();
        let staff = vault
            .directory()
            .create_staff(
                op.into(),
                &format!("Door Target {r}"),
                &[Role::SalesAssociate],
                &[outlet],
            )
            .await
            .unwrap();
        let (token, _) = vault
            .identity()
            .create_token(
                op,
                "door target",
                steward_service::TokenOwner::Role(Role::Monitoring),
            )
            .await
            .unwrap();
        let campaign = vault
            .outreach()
            .create_campaign(
                &marketing,
                segment.id,
                "marketing_email",
                "Door",
                "Hello.",
                false,
            )
            .await
            .unwrap();
        let survey: steward_domain::survey::SurveyInput = serde_json::from_value(serde_json::json!({
            "title": format!("Door {r}"), "segment_id": segment.id, "purpose": "marketing_email",
            "questions": [{"kind": "scale", "text": "How satisfied are you?"}]
        }))
        .unwrap();
        let survey = vault
            .surveys()
            .create_survey(&marketing, survey)
            .await
            .unwrap();
        let request: steward_domain::RequestInput =
            serde_json::from_value(serde_json::json!({"type": "access", "customer_id": customer}))
                .unwrap();
        let request = vault.create_request(&dpo, &request).await.unwrap();
        let to_verify: steward_domain::RequestInput =
            serde_json::from_value(serde_json::json!({"type": "access", "customer_id": customer}))
                .unwrap();
        let to_verify = vault.create_request(&dpo, &to_verify).await.unwrap();
        // A correction of a social handle, verified by the customer's code: it waits for
        // staff (a handle decides whose posts are kept).
        let fix: steward_domain::RequestInput = serde_json::from_value(serde_json::json!({
            "type": "rectification", "customer_id": customer,
            "corrections": {"social_handles": [{"platform": "instagram", "handle": format!("@door_{r}")}]}
        }))
        .unwrap();
        let to_confirm = vault.create_request(&dpo, &fix).await.unwrap();
        let code = crate::requests::last_code(&db.dir.path().join("mail.txt"), "door@example.com");
        let waiting = vault
            .verify_request(&dpo, to_confirm.id, Some(&code))
            .await
            .unwrap();
        assert!(waiting.awaiting.is_some(), "{waiting:?}");
        let agreement = post(
            "/v1/agreements",
            serde_json::json!({"recipient_id": recipient, "purposes": ["order_fulfilment"], "categories": ["user.name"], "lawful_basis": "contract", "document_sha256": "cd".repeat(32), "identity": "identified", "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
        // The same person registered twice: the same e-mail address.
        let duplicate = post(
            "/v1/customers",
            serde_json::json!({"name": format!("Door Duplicate {r}"), "email": "door@example.com", "outlet_id": outlet, "allow_duplicate": true}),
        )
        .await;
        targets.push(Targets {
            staff: staff.to_string(),
            token: token.to_string(),
            campaign: campaign.id.to_string(),
            survey: survey.id.to_string(),
            request: request.id.to_string(),
            to_verify: to_verify.id.to_string(),
            to_confirm: to_confirm.id.to_string(),
            agreement,
            duplicate: duplicate.to_string(),
        });
    }
    let shared = (
        outlet.to_string(),
        customer.to_string(),
        segment.id.to_string(),
        recipient,
    );
    let password = "a long enough password";
    let mut sessions = Vec::new();
    let (mut wrong, mut checked) = (Vec::new(), 0);
    for (role, t) in Role::ALL.into_iter().zip(&targets) {
        let staff = vault
            .directory()
            .create_staff(op.into(), &format!("Door {role:?}"), &[role], &[outlet])
            .await
            .unwrap();
        let login = format!("door.{}", role.as_str().replace('_', "."));
        vault
            .identity()
            .set_staff_password(op, staff, &login, zeroize::Zeroizing::new(password.into()))
            .await
            .unwrap();
        let (session, csrf) = console_session(&app, &login, password).await;
        for (path, fields, roles, success) in page_forms(role, t, &shared) {
            let mut body = vec![("csrf", csrf.as_str())];
            body.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            let before = size().await;
            let (got, _, page) = send(&app, "POST", &path, Some(&session), Some(&body)).await;
            let allowed = roles.contains(&role);
            let act = act_of(&path);
            if acted(role, before, allowed.then_some(act)).await != allowed {
                wrong.push(format!(
                    "{role:?} POST {path}: {} in the log",
                    if allowed {
                        format!("no `{act}` entry")
                    } else {
                        "an act's entry after a refusal".to_owned()
                    }
                ));
            }
            let want = if roles.contains(&role) {
                success
            } else {
                StatusCode::FORBIDDEN
            };
            if got != want {
                let title = page.split("<title>").nth(1).unwrap_or("").split('<').next();
                let said = page
                    .split("role=\"alert\"")
                    .nth(1)
                    .map(|a| a.chars().take(200).collect::<String>());
                wrong.push(format!(
                    "{role:?} POST {path}: got {got}, want {want} ({title:?}, {said:?})"
                ));
            }
            checked += 1;
        }
        sessions.push((role, session, csrf));
    }
    // The notice: the DPO publishes a version; every staff member acknowledges it.
    for (role, session, csrf) in &sessions {
        let body = [
            ("csrf", csrf.as_str()),
            ("text", "Read only what the task needs."),
        ];
        let before = size().await;
        let (got, _, _) = send(
            &app,
            "POST",
            "/console/notice/publish",
            Some(session),
            Some(&body),
        )
        .await;
        let allowed = *role == Role::Dpo;
        if acted(*role, before, allowed.then_some("publish_notice")).await != allowed {
            wrong.push(format!("{role:?} POST notice/publish: the log disagrees"));
        }
        let want = if *role == Role::Dpo {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FORBIDDEN
        };
        if got != want {
            wrong.push(format!(
                "{role:?} POST notice/publish: got {got}, want {want}"
            ));
        }
        checked += 1;
    }
    for (role, session, csrf) in &sessions {
        let body = [("csrf", csrf.as_str()), ("version", "1")];
        let before = size().await;
        let (got, _, _) = send(&app, "POST", "/console/notice", Some(session), Some(&body)).await;
        if !acted(*role, before, Some("acknowledge")).await {
            wrong.push(format!(
                "{role:?} POST notice: no acknowledgement in the log"
            ));
        }
        if got != StatusCode::SEE_OTHER {
            wrong.push(format!("{role:?} POST notice: got {got}, want 303"));
        }
        checked += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} console cells differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let per_role = page_forms(Role::Dpo, &targets[0], &shared).len() + 2;
    assert_eq!(checked, Role::ALL.len() * per_role);
}

/// Console and portal routes that change nothing a decision guards, and why. Every other POST
/// route of `crates/api/src/console/mod.rs` and `crates/api/src/portal/mod.rs` must be driven by
/// a test of this file: a new form fails [`every_form_is_in_the_door_matrix`] until it is.
const NOT_IN_THE_DOOR: &[(&str, &str)] = &[
    ("/console/sign-in", "the way in: acts for nobody yet"),
    ("/console/sign-out", "ends the caller's own session only"),
    (
        "/portal/code",
        "the way in: sends a code to an address on file",
    ),
    ("/portal/sign-in", "the way in: checks the code"),
    (
        "/portal/confirm-address",
        "acts by the code sent to the new address (portal tests)",
    ),
    (
        "/unsubscribe/{token}",
        "acts by the signed token in the message (unsubscribe tests)",
    ),
];

/// The forms this file drives, by route as the router names them.
const DRIVEN: &[&str] = &[
    "/console/search",
    "/console/customers/{id}/interactions",
    "/console/customers/{id}/purchases",
    "/console/customers/{id}/edit",
    "/console/customers/{id}/consents",
    "/console/customers/{id}/messages",
    "/console/customers/{id}/break-glass",
    "/console/customers/{id}/merge",
    "/console/customers/{id}/read",
    "/console/customers/new",
    "/console/directory/outlets",
    "/console/directory/staff",
    "/console/directory/staff/{id}/disabled",
    "/console/directory/tokens/{id}/revoke",
    "/console/purposes",
    "/console/purposes/{key}",
    "/console/segments",
    "/console/campaigns",
    "/console/campaigns/{id}/send",
    "/console/surveys",
    "/console/surveys/{id}/send",
    "/console/analytics",
    "/console/sharing/recipients",
    "/console/sharing/agreements",
    "/console/sharing/agreements/{id}/end",
    "/console/dpo/requests/{id}/{action}",
    "/console/notice",
    "/console/notice/publish",
    "/portal/consents",
    "/portal/export",
    "/portal/requests/correction",
    "/portal/requests/erasure",
    "/portal/requests/objection",
    "/portal/requests/restriction",
    "/portal/surveys/{id}/token",
    "/portal/sign-out",
];

/// The state-changing routes a router module declares: each `.route("path", …)` whose handlers
/// include `post(`, `put(`, `patch(` or `delete(`. Fails on what it cannot read (a path that is
/// not a literal, a nested or merged router, a service or method filter), so that a route is never
/// skipped unseen.
fn post_routes(source: &str) -> Vec<String> {
    for unread in [
        ".nest(",
        ".merge(",
        "route_service(",
        "_service(",
        "MethodFilter",
        "any(",
    ] {
        assert!(
            !source.contains(unread),
            "the router uses {unread}: teach post_routes to read it"
        );
    }
    source
        .split(".route(")
        .skip(1)
        // The last route's text ends with the function that declares it.
        .map(|r| r.split("\n}").next().unwrap_or(r))
        .filter(|r| {
            ["post(", "put(", "patch(", "delete("]
                .iter()
                .any(|m| r.contains(m))
        })
        .map(|r| {
            let r = r.trim_start();
            assert!(
                r.starts_with('"'),
                "a route path that is not a literal: {r:.80}"
            );
            r.split('"').nth(1).unwrap_or_default().to_owned()
        })
        .collect()
}

/// Every state-changing console and portal route is driven by this file's matrix or named in
/// [`NOT_IN_THE_DOOR`] with a reason, so a form that skipped the decision would fail a test.
#[test]
fn every_form_is_in_the_door_matrix() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src");
    let mut routes = Vec::new();
    for module in ["console/mod.rs", "portal/mod.rs"] {
        let source = std::fs::read_to_string(root.join(module)).unwrap();
        routes.extend(post_routes(&source));
    }
    assert!(routes.len() > 30, "{routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !DRIVEN.contains(&r.as_str()) && !NOT_IN_THE_DOOR.iter().any(|(n, _)| n == r))
        .collect();
    assert!(
        missing.is_empty(),
        "POST routes neither driven by door.rs nor named in NOT_IN_THE_DOOR: {missing:?}"
    );
    let stale: Vec<&&str> = DRIVEN
        .iter()
        .chain(NOT_IN_THE_DOOR.iter().map(|(n, _)| n))
        .filter(|d| !routes.iter().any(|r| r == *d))
        .collect();
    assert!(stale.is_empty(), "listed but no longer routes: {stale:?}");
}
