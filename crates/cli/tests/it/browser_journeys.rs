//! The console as people work in it (issue 17), in headless Chromium against the real
//! `steward serve`, with axe-core's WCAG 2.1 AA rules on every page the journeys reach: a store
//! manager finds a customer by name and records a sale on the timeline, and writes to a
//! customer and reads the reply without seeing the address; a support agent
//! registers a walk-in and is warned of a duplicate; the DPO reads a break-glass reason, fulfils
//! an erasure from the queue and publishes the confidentiality notice; an admin disables a staff
//! member whose open session then fails.

use serde_json::json;
use steward_domain::Role;

use crate::browser::Browser;
use crate::support::{Kind, Server, TestDb, operator_customer};

const PASSWORD: &str = "a long enough password";

/// An installation with an outlet, staff of `roles` there (login = the name's first word, lower
/// case) and customers (name, e-mail) registered there.
fn stage(staff: &[(&str, Role)], customers: &[(&str, &str)]) -> (TestDb, Vec<String>) {
    let (db, _, customers) = stage_with_staff(staff, customers);
    (db, customers)
}

/// [`stage`], with the staff members' ids too.
fn stage_with_staff(
    staff: &[(&str, Role)],
    customers: &[(&str, &str)],
) -> (TestDb, Vec<String>, Vec<String>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = TestDb::new(Kind::Sqlite).await;
        let (vault, op, _) = db.open().await;
        let outlet = vault
            .directory()
            .create_outlet(op.into(), "Geneva")
            .await
            .unwrap();
        let mut staff_ids = Vec::new();
        for (name, role) in staff {
            let id = vault
                .directory()
                .create_staff(op.into(), name, &[*role], &[outlet])
                .await
                .unwrap();
            staff_ids.push(id.to_string());
            let login = name.split(' ').next().unwrap().to_lowercase();
            vault
                .identity()
                .set_staff_password(op, id, &login, zeroize::Zeroizing::new(PASSWORD.into()))
                .await
                .unwrap();
        }
        let mut ids = Vec::new();
        for (name, email) in customers {
            let id = operator_customer(
                &vault,
                op,
                json!({"name": name, "email": email, "outlet_id": outlet}),
            )
            .await;
            ids.push(id.to_string());
        }
        vault.audit().flush().await.unwrap();
        (db, staff_ids, ids)
    })
}

#[test]
fn a_store_manager_finds_a_customer_by_name_and_records_a_sale() {
    let (db, _) = stage(
        &[("Max Manager", Role::StoreManager)],
        &[
            ("Greta Lindqvist", "greta@example.com"),
            ("Gregor Samsa", "gregor@example.com"),
            ("Ada Lovelace", "ada@example.com"),
        ],
    );
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "max", PASSWORD);
    b.assert_accessible("the customer list");
    let found = b.staff_search("gre", "service");
    assert!(
        found.contains("Greta Lindqvist")
            && found.contains("Gregor Samsa")
            && !found.contains("Ada Lovelace"),
        "{found}"
    );
    assert!(found.contains("value=\"gre\""), "the query is kept");
    b.assert_accessible("the search results");
    b.click(".results a");
    b.wait_for("Timeline</h2>");
    b.wait_for("Nothing recorded yet.");
    b.assert_accessible("the customer page with its timeline");
    b.type_into("#item", "Silver Ring");
    b.type_into("#category", "rings");
    b.type_into("#amount", "1250,50");
    b.type_into("#currency", "CHF");
    b.click("form[action$='/purchases'] button");
    let page = b.wait_for("Silver Ring (rings)");
    assert!(page.contains("CHF 1,250.50"), "{page}");
    b.assert_accessible("the timeline after a sale");
    b.screenshot("manager-timeline");
}

#[test]
fn a_store_manager_writes_to_a_customer_and_reads_the_reply_never_the_address() {
    let (db, customers) = stage(
        &[("Max Manager", Role::StoreManager)],
        &[("Greta Lindqvist", "greta.private@example.com")],
    );
    let outbox = tempfile::tempdir().unwrap();
    let sink = outbox.path().join("mail.txt");
    let server = Server::start(
        &db,
        &[
            "--mail-sink",
            sink.to_str().unwrap(),
            "--public-url",
            "https://crm.shop.example",
            "--reply-domain",
            "reply.shop.example",
        ],
        &[],
    );
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "max", PASSWORD);
    b.go(&format!(
        "{base}/console/customers/{}?purpose=service",
        customers[0]
    ));
    b.wait_for("Write to the customer");
    let page = b.source();
    assert!(
        !page.contains("greta.private@example.com") && page.contains("g•••@example.com"),
        "{page}"
    );
    b.type_into("#message-subject", "Your ring is ready");
    b.type_into(
        "#message-text",
        "Dear Greta,\nyour ring is ready for collection.",
    );
    b.click("form[action$='/messages'] button");
    b.wait_for("The message is on its way");
    b.assert_accessible("the customer page after sending a message");
    // The mail server got it, with a reply alias; the customer answers it.
    let alias = crate::mail::reply_alias_in(&sink);
    let reply = format!(
        "From: Greta <greta.private@example.com>\r\nTo: {alias}\r\nSubject: Re: Your ring is ready\r\n\r\nWonderful, I will come on Saturday.\r\n\r\n> sent to greta.private@example.com\r\n"
    );
    let (code, out, err) =
        crate::support::run_with_stdin(&["mail", "receive"], &db, reply.as_bytes());
    assert_eq!(code, 0, "{out}{err}");
    b.go(&format!(
        "{base}/console/customers/{}?purpose=service",
        customers[0]
    ));
    let page = b.wait_for("Wonderful, I will come on Saturday.");
    assert!(
        page.contains("Reply from the customer") && page.contains("[e-mail address removed]"),
        "{page}"
    );
    assert!(!page.contains("greta.private@example.com"), "{page}");
    b.assert_accessible("the customer page with a message thread");
    b.screenshot("manager-message-thread");
}

#[test]
fn a_support_agent_registers_a_walk_in_and_is_warned_of_a_duplicate() {
    let (db, existing) = stage(
        &[("Sue Support", Role::SupportAgent)],
        &[("Walter White", "walter@example.com")],
    );
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "sue", PASSWORD);
    b.click("a[href='/console/customers/new']");
    b.wait_for("New customer</h1>");
    b.assert_accessible("the registration form");
    b.type_into("#name", "Walt W.");
    b.type_into("#email", "WALTER@example.com");
    b.type_into("#address_city", "Albuquerque");
    b.click("main form button[type=submit]");
    let warned = b.wait_for("Another customer already has this e-mail address");
    assert!(
        warned.contains(&format!(
            "/console/customers/{}?purpose=service",
            existing[0]
        )),
        "{warned}"
    );
    assert!(
        warned.contains("value=\"Walt W.\"") && warned.contains("value=\"Albuquerque\""),
        "the form keeps what was typed"
    );
    b.assert_accessible("the duplicate warning");
    b.click("#allow_duplicate");
    b.click("main form button[type=submit]");
    let saved = b.wait_for("The customer is registered.");
    assert!(saved.contains("Walt W."), "{saved}");
    b.assert_accessible("the new customer's page, with its possible duplicate");
    b.click("a[href*='/edit?purpose=']");
    b.wait_for("Correct the customer's details</h1>");
    b.assert_accessible("the correction form");
    b.type_into("#address_city", " NM");
    b.click("main form button[type=submit]");
    let saved = b.wait_for("The changes are saved.");
    assert!(saved.contains("Albuquerque NM"), "{saved}");
    b.screenshot("support-walk-in");
}

#[test]
fn the_dpo_reads_a_reason_fulfils_an_erasure_and_publishes_the_notice() {
    let (db, customers) = stage(
        &[
            ("Dana Officer", Role::Dpo),
            ("Mia Manager", Role::StoreManager),
        ],
        &[("Erin Erase", "erin@example.com")],
    );
    // An erasure request waiting for an identity check, and a manager's break-glass read.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (vault, _, _) = db.open().await;
        let customer: steward_domain::CustomerId = customers[0].parse().unwrap();
        let dana = vault
            .identity()
            .sign_in("dana", zeroize::Zeroizing::new(PASSWORD.into()))
            .await
            .unwrap()
            .unwrap();
        let request: steward_domain::RequestInput =
            serde_json::from_value(json!({"type": "erasure", "customer_id": customer})).unwrap();
        vault
            .create_request(&dana.principal, &request)
            .await
            .unwrap();
        let mia = vault
            .identity()
            .sign_in("mia", zeroize::Zeroizing::new(PASSWORD.into()))
            .await
            .unwrap()
            .unwrap();
        let purpose = vault.purposes().get("purpose", "service").unwrap();
        let access = steward_service::Access {
            principal: &mia.principal,
            purpose: &purpose,
            reason: Some("Customer disputes a charge at the counter today"),
            break_glass: true,
        };
        vault
            .records()
            .read_customer(&access, customer)
            .await
            .unwrap();
        vault.audit().flush().await.unwrap();
    });
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "dana", PASSWORD);
    b.click("a[href='/console/dpo']");
    b.wait_for("Data protection</h1>");
    b.assert_accessible("the DPO's workspace");
    b.click("a[href^='/console/dpo/alerts/']");
    b.wait_for("Customer disputes a charge at the counter today");
    b.assert_accessible("an alert with its reason");
    b.go(&format!("{base}/console/dpo"));
    b.wait_for("Erasure</td>");
    b.click("form[action$='/verify'] button");
    let done = b.wait_for("The identity check is recorded");
    assert!(done.contains("No open request."), "{done}");
    b.go(&format!("{base}/console/dpo?action=erase"));
    b.wait_for("<td>erase</td>");
    b.assert_accessible("the audit log searched");
    b.type_into(
        "#notice-text",
        "Customer data is confidential. Read only what your task needs.",
    );
    b.click("form[action='/console/notice/publish'] button");
    b.wait_for("Not yet acknowledged by:");
    b.go(&format!("{base}/console"));
    b.wait_for("Confidentiality notice</h1>");
    b.assert_accessible("the confidentiality notice");
    b.click("form[action='/console/notice'] button");
    b.wait_for("Find a customer</h1>");
    b.screenshot("dpo-workspace");
}

#[test]
fn an_admin_disables_a_staff_member_whose_open_session_then_fails() {
    let (db, staff, _) = stage_with_staff(
        &[
            ("Ada Admin", Role::Admin),
            ("Lou Leaving", Role::SalesAssociate),
        ],
        &[],
    );
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let lou = Browser::start();
    lou.staff_sign_in(&base, "lou", PASSWORD);
    let admin = Browser::start();
    admin.staff_sign_in(&base, "ada", PASSWORD);
    admin.click("a[href='/console/directory']");
    admin.wait_for("People and outlets</h1>");
    admin.assert_accessible("the directory");
    admin.go(&format!("{base}/console/purposes"));
    admin.wait_for("Purposes</h1>");
    admin.assert_accessible("the purposes");
    admin.go(&format!("{base}/console/directory"));
    admin.wait_for("Disable Lou Leaving");
    admin.click(&format!(
        "form[action='/console/directory/staff/{}/disabled'] button",
        staff[1]
    ));
    admin.wait_for("The staff member is disabled");
    admin.assert_accessible("the directory after disabling");
    lou.go(&format!("{base}/console"));
    lou.wait_for("Sign in</h1>");
    admin.screenshot("admin-directory");
}

#[test]
fn a_marketer_defines_a_segment_and_learns_only_its_size() {
    let (db, _) = stage(
        &[("Max Marketing", Role::Marketing)],
        &[("Amélie Durand", "amelie@example.com")],
    );
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "max", PASSWORD);
    b.click("a[href='/console/segments']");
    b.wait_for("Segments</h1>");
    b.assert_accessible("the segments");
    b.type_into("#name", "French speakers");
    b.type_into("#language", "fr");
    b.click("form[action='/console/segments'] button");
    b.wait_for("The segment is saved.");
    b.wait_for("prefers language fr");
    b.assert_accessible("the segments after saving");
    b.click("form[action='/console/segments'][method='get'] button");
    b.wait_for("reaches fewer than 10 customers");
    b.assert_accessible("a segment's size");
    // Never a customer's name on the page.
    assert!(!b.source().contains("Amélie"));
    b.screenshot("marketing-segments");
}

#[test]
fn a_marketer_composes_previews_and_sends_a_campaign_and_sees_only_counts() {
    let people = [
        ("Amélie Durand", "amelie@example.com"),
        ("Bruno Keller", "bruno@example.com"),
        ("Chiara Rossi", "chiara@example.com"),
        ("Dagmar Olsen", "dagmar@example.com"),
        ("Emeka Obi", "emeka@example.com"),
    ];
    let (db, customers) = stage(&[("Max Marketing", Role::Marketing)], &people);
    // They agreed to marketing e-mail in the shop.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let vault = db.vault().await;
        let agent =
            crate::support::principal(&vault, crate::support::op(), Role::SupportAgent).await;
        for id in &customers {
            let grant = steward_domain::ConsentInput {
                purpose: "marketing_email".into(),
                action: steward_domain::ConsentAction::Grant,
                source: steward_domain::ConsentSource::InStore,
            };
            vault
                .record_consent(&agent, id.parse().unwrap(), &grant)
                .await
                .unwrap();
        }
        vault.audit().flush().await.unwrap();
    });
    let outbox = tempfile::tempdir().unwrap();
    let mail = outbox.path().join("mail.txt");
    let server = Server::start(
        &db,
        &[
            "--mail-sink",
            mail.to_str().unwrap(),
            "--public-url",
            "https://crm.example.test",
            "--segment-threshold",
            "5",
        ],
        &[],
    );
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "max", PASSWORD);
    b.click("a[href='/console/segments']");
    b.wait_for("Segments</h1>");
    b.type_into("#name", "Everyone");
    b.click("form[action='/console/segments'] button");
    b.wait_for("The segment is saved.");
    b.go(&format!("{base}/console"));
    b.click("a[href='/console/campaigns']");
    b.wait_for("Campaigns</h1>");
    b.assert_accessible("the campaigns");
    // A placeholder the purpose does not cover is refused, and the form keeps what was typed.
    b.type_into("#subject", "Winter sale for {{first_name}}");
    b.type_into("#body", "Hello {{phone}}");
    b.click("form[action='/console/campaigns'] button");
    b.wait_for("role=\"alert\"");
    assert!(b.source().contains("Winter sale for {{first_name}}"));
    b.assert_accessible("a refused campaign");
    b.clear_and_type(
        "#body",
        "Dear {{first_name}}, our winter sale starts on Monday.",
    );
    b.click("form[action='/console/campaigns'] button");
    b.wait_for("The campaign is saved as a draft.");
    // The preview is a fictional customer's.
    assert!(
        b.source()
            .contains("Dear Alex, our winter sale starts on Monday.")
    );
    b.assert_accessible("a draft campaign");
    b.click("form[action$='/send'] button");
    b.wait_for("Sending has started.");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !b.source().contains("<span class=\"why\">Sent ") {
        assert!(
            std::time::Instant::now() < deadline,
            "not sent: {}",
            b.source()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.go(&format!("{base}/console/campaigns"));
    }
    b.wait_for("<th scope=\"row\">Sent</th><td>5</td>");
    b.assert_accessible("a sent campaign's results");
    // Counts only: never a customer's name or address on the page.
    let page = b.source();
    for (name, email) in people {
        assert!(
            !page.contains(name) && !page.contains(email),
            "{name} on the page"
        );
    }
    b.screenshot("marketing-campaigns");
    let sent = std::fs::read_to_string(&mail).unwrap();
    assert!(
        sent.contains("Dear Amélie") || sent.contains("Dear Am=C3=A9lie"),
        "{sent}"
    );
}

#[test]
fn an_analyst_releases_charts_with_their_margins_and_the_dpo_sees_the_budget_used() {
    let (db, _) = stage(
        &[("Ana Analyst", Role::Analyst), ("Dora Privacy", Role::Dpo)],
        &[("Amélie Durand", "amelie@example.com")],
    );
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "ana", PASSWORD);
    b.click("a[href='/console/analytics']");
    b.wait_for("Analytics</h1>");
    b.wait_for("ε 0 spent, 1 left");
    b.assert_accessible("the analytics dashboard");
    // Release customers by tier at ε 0.2 (typed over the default).
    b.clear_and_type("#epsilon-tier", "0.2");
    b.click("form[action='/console/analytics'] input[value='tier'] ~ button");
    b.wait_for("“Customers by tier” is released and charged to your budget.");
    b.wait_for("ε 0.2 spent, 0.8 left");
    b.wait_for("<caption>Customers by tier</caption>");
    b.wait_for("Give or take");
    b.assert_accessible("the dashboard with a released chart");
    // More than is left is refused, and what was typed stays.
    b.clear_and_type("#epsilon-outlet", "5");
    b.click("form[action='/console/analytics'] input[value='outlet'] ~ button");
    b.wait_for("would exceed the privacy budget");
    assert!(b.source().contains("value=\"5\""), "the typed ε is kept");
    b.assert_accessible("the dashboard after a refusal");
    assert!(!b.source().contains("Amélie"));
    b.screenshot("analyst-dashboard");

    let d = Browser::start();
    d.staff_sign_in(&base, "dora", PASSWORD);
    d.click("a[href='/console/dpo']");
    d.wait_for("Analytics: privacy budget used this window");
    d.wait_for("Ana Analyst");
    d.assert_accessible("the DPO page with the budget used");
}

/// A customer answers a survey in the portal: the page's own script blinds the token in
/// Chromium (RFC 9474), Steward signs it blind, and the answers go without a cookie; the
/// server stores one anonymous answer and records only that a token was issued.
#[test]
fn a_customer_answers_a_survey_anonymously_in_a_real_browser() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, survey) = rt.block_on(async {
        let db = TestDb::new(Kind::Sqlite).await;
        let (vault, op, _) = db.open().await;
        let (_, dpo) = crate::portal::consenting_customer(
            &vault,
            op,
            ("Sara Survey", "sara.survey@example.com", "+41 21 555 0199"),
        )
        .await;
        let outlet = vault.directory().list_outlets(op.into()).await.unwrap()[0].id;
        for i in 0..10 {
            let id = operator_customer(
                &vault,
                op,
                json!({"name": format!("Other Customer{i}"), "email": format!("other{i}@example.com"), "outlet_id": outlet}),
            )
            .await;
            let consent: steward_domain::ConsentInput = serde_json::from_value(
                json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"}),
            )
            .unwrap();
            vault.record_consent(&dpo, id, &consent).await.unwrap();
        }
        let (_, token) = vault
            .identity()
            .create_token(op, "mk", steward_service::TokenOwner::Role(Role::Marketing))
            .await
            .unwrap();
        let marketing = vault.identity().authenticate(&token).await.unwrap().unwrap();
        let segment = vault
            .segments().create_segment(&marketing, "Everyone", &json!({"all": []}))
            .await
            .unwrap();
        let input: steward_domain::survey::SurveyInput = serde_json::from_value(json!({
            "title": "Your last visit", "segment_id": segment.id, "purpose": "marketing_email",
            "questions": [
                {"kind": "scale", "text": "How satisfied are you?"},
                {"kind": "choice", "text": "What brought you in?", "choices": ["A repair", "A gift"]}
            ]
        }))
        .unwrap();
        let survey = vault.surveys().create_survey(&marketing, input).await.unwrap();
        vault.surveys().send_survey(&marketing, survey.id).await.unwrap();
        vault.audit().flush().await.unwrap();
        (db, survey.id)
    });
    let mail = db.dir.path().join("mail.txt");
    let server = Server::start(&db, &["--mail-sink", mail.to_str().unwrap()], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.customer_sign_in(&base, "sara.survey@example.com", &mail);
    b.wait_for("Surveys for you");
    b.click(&format!("a[href='/portal/surveys/{survey}']"));
    b.wait_for("Your last visit</h1>");
    b.assert_accessible("the survey page");
    b.click("input[name='q0'][value='4']");
    b.click("input[name='q1'][value='1']");
    b.click("#survey button[type='submit']");
    b.wait_for("Thank you: your answers are recorded anonymously.");
    b.assert_accessible("the survey page after answering");
    b.screenshot("portal-survey");
    // One answer, waiting sealed for nine more before it joins the others; the token's issue
    // is the only trace of Sara.
    rt.block_on(async {
        let (_, _, store) = db.open().await;
        assert_eq!(store.tallies(survey).await.unwrap().0, 0);
        let c = store.survey_counts(survey).await.unwrap();
        assert_eq!((c.invited, c.issued, c.waiting, c.responses), (11, 1, 1, 0));
    });
    // Coming back: the token is spent, the page says so, and nothing can be sent again.
    b.go(&format!("{base}/portal/surveys/{survey}"));
    b.wait_for("Your response token was issued already.");
}

/// A marketer composes a survey in the console (a mistake named by its question, what was typed
/// kept), sends it to a segment and sees how many it reached; the analyst's page says results
/// come from ten answers.
#[test]
fn a_marketer_composes_and_sends_a_survey_and_the_analyst_waits_for_ten_answers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(async {
        let db = TestDb::new(Kind::Sqlite).await;
        let (vault, op, _) = db.open().await;
        let outlet = vault.directory().create_outlet(op.into(), "Geneva").await.unwrap();
        for (name, role) in [("Max Marketing", Role::Marketing), ("Ana Analyst", Role::Analyst)] {
            let id = vault
                .directory()
                .create_staff(op.into(), name, &[role], &[outlet])
                .await
                .unwrap();
            let login = name.split(' ').next().unwrap().to_lowercase();
            vault
                .identity()
                .set_staff_password(op, id, &login, zeroize::Zeroizing::new(PASSWORD.into()))
                .await
                .unwrap();
        }
        let (_, token) = vault
            .identity()
            .create_token(op, "sa", steward_service::TokenOwner::Role(Role::SupportAgent))
            .await
            .unwrap();
        let agent = vault.identity().authenticate(&token).await.unwrap().unwrap();
        for i in 0..11 {
            let id = operator_customer(
                &vault,
                op,
                json!({"name": format!("Customer Number{i}"), "email": format!("c{i}@example.com"), "outlet_id": outlet}),
            )
            .await;
            let consent: steward_domain::ConsentInput = serde_json::from_value(
                json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"}),
            )
            .unwrap();
            vault.record_consent(&agent, id, &consent).await.unwrap();
        }
        let (_, token) = vault
            .identity()
            .create_token(op, "mk", steward_service::TokenOwner::Role(Role::Marketing))
            .await
            .unwrap();
        let marketing = vault.identity().authenticate(&token).await.unwrap().unwrap();
        vault
            .segments().create_segment(&marketing, "Everyone", &json!({"all": []}))
            .await
            .unwrap();
        vault.audit().flush().await.unwrap();
        db
    });
    let server = Server::start(&db, &[], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "max", PASSWORD);
    b.click("a[href='/console/surveys']");
    b.wait_for("Surveys</h1>");
    b.assert_accessible("the surveys page");
    b.type_into("#title", "Your visit");
    b.click("#segment_id option:nth-child(2)");
    b.click("#purpose option[value='marketing_email']");
    b.type_into("#q1_text", "How satisfied are you?");
    b.type_into("#q2_text", "What brought you in?");
    b.click("#q2_kind option[value='choice']");
    b.type_into("#q2_choices", "A gift");
    b.click("form[action='/console/surveys'] button[type='submit']");
    b.wait_for("Question 2: two to ten choices");
    assert!(
        b.source().contains("What brought you in?"),
        "what was typed is kept"
    );
    b.assert_accessible("the surveys page with a mistake named");
    b.type_into("#q2_choices", "\nA repair");
    b.click("form[action='/console/surveys'] button[type='submit']");
    b.wait_for("The survey is saved.");
    b.click("form[action$='/send'] button");
    b.wait_for("The survey is sent");
    b.wait_for("11 asked, fewer than 10 answered.");
    b.assert_accessible("the surveys page after sending");
    assert!(
        !b.source().contains("Customer Number"),
        "no customer is named"
    );
    b.screenshot("marketing-surveys");

    let a = Browser::start();
    a.staff_sign_in(&base, "ana", PASSWORD);
    a.click("a[href='/console/analytics']");
    a.wait_for("Survey results");
    a.wait_for("fewer than 10 answers so far: results are released from ten.");
    a.assert_accessible("the analytics page with a survey waiting");
}

#[test]
fn the_dpo_registers_a_recipient_and_an_agreement_and_sees_the_changes_sent() {
    let (db, customers) = stage(
        &[
            ("Dana Officer", Role::Dpo),
            ("Sam Support", Role::SupportAgent),
        ],
        &[("Erin Shared", "erin.shared@example.com")],
    );
    let server = Server::start(&db, &["--allow-insecure-webhooks"], &[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.staff_sign_in(&base, "dana", PASSWORD);
    b.click("a[href='/console/sharing']");
    b.wait_for("Sharing under agreement</h1>");
    b.assert_accessible("the sharing page, empty");
    // A plain-http address is refused, and what was typed stays.
    b.type_into("#name", "Parcel Co");
    b.type_into("#country", "de");
    b.type_into("#webhook_url", "http://parcel.example/hooks");
    b.click("form[action='/console/sharing/recipients'] button");
    let refused = b.wait_for("role=\"alert\"");
    assert!(refused.contains("https://"), "{refused}");
    assert!(
        refused.contains("value=\"Parcel Co\""),
        "kept what was typed"
    );
    b.clear_and_type("#webhook_url", "http://127.0.0.1:9/hooks");
    b.click("form[action='/console/sharing/recipients'] button");
    b.wait_for("The recipient is registered");
    // An agreement for order fulfilment, expiring in ten days: flagged.
    b.click("input[name='purposes'][value='order_fulfilment']");
    b.click("input[name='categories'][value='user.name']");
    b.click("input[name='categories'][value='user.contact.address']");
    b.type_into("#document_sha256", &"ab".repeat(32));
    let day = |offset: i64| {
        let t = steward_domain::Timestamp(
            steward_domain::Timestamp::now().millis() + offset * 86_400_000,
        );
        t.to_rfc3339()[..10].to_owned()
    };
    for (id, value) in [("starts_at", day(-1)), ("expires_at", day(10))] {
        b.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": "document.getElementById(arguments[0]).value = arguments[1];", "args": [id, value]})),
        );
    }
    b.click("form[action='/console/sharing/agreements'] button");
    let recorded = b.wait_for("The agreement is recorded");
    assert!(
        recorded.contains("In force") && recorded.contains("expires soon"),
        "{recorded}"
    );
    assert!(recorded.contains("1 expiring within 30 days"), "{recorded}");
    b.assert_accessible("a recipient with an agreement expiring soon");
    // The recipient reads Erin; a correction to her name follows to it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (vault, op, _) = db.open().await;
        let dana = vault
            .identity()
            .sign_in("dana", zeroize::Zeroizing::new(PASSWORD.into()))
            .await
            .unwrap()
            .unwrap();
        let recipient = vault.sharing().recipients(&dana.principal).await.unwrap()[0].id;
        let (_, token) = vault
            .identity()
            .create_token(
                op,
                "parcel",
                steward_service::TokenOwner::Recipient(recipient),
            )
            .await
            .unwrap();
        let parcel = vault
            .identity()
            .authenticate(&token)
            .await
            .unwrap()
            .unwrap();
        let purpose = vault.purposes().get("purpose", "order_fulfilment").unwrap();
        let access = steward_service::Access {
            principal: &parcel,
            purpose: &purpose,
            reason: None,
            break_glass: false,
        };
        let erin: steward_domain::CustomerId = customers[0].parse().unwrap();
        let seen = vault.records().read_customer(&access, erin).await.unwrap();
        assert_eq!(seen.name.as_deref(), Some("Erin Shared"));
        let patch: steward_domain::CustomerPatch =
            serde_json::from_value(json!({"name": "Erin Renamed"})).unwrap();
        vault
            .update_customer(steward_service::Actor::Operator(op), erin, &patch)
            .await
            .unwrap();
    });
    b.go(&format!("{base}/console/sharing"));
    let page = b.wait_for("Customer rectified");
    assert!(
        page.contains(&customers[0]),
        "the customer as the recipient knows them: {page}"
    );
    b.assert_accessible("a notification waiting for its recipient");
    // Support sees on the customer's page where her data went.
    let s = Browser::start();
    s.staff_sign_in(&base, "sam", PASSWORD);
    s.go(&format!(
        "{base}/console/customers/{}?purpose=service",
        customers[0]
    ));
    let customer = s.wait_for("Shared with recipients</h2>");
    assert!(
        customer.contains("Parcel Co") && customer.contains("Order fulfilment"),
        "{customer}"
    );
    s.assert_accessible("a customer's disclosures");
    // Ending the agreement: recorded, and offered no more.
    b.click("form[action$='/end'] button");
    let ended = b.wait_for("The agreement has ended");
    assert!(
        ended.contains("Ended") && !ended.contains("action=\"/console/sharing/agreements/"),
        "{ended}"
    );
    b.screenshot("dpo-sharing");
}
