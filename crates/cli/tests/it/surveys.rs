//! Anonymous surveys (issue 21, point 5) through the API and the portal on both backends:
//! marketing sends a survey to a segment; each invited customer, signed in to the portal, gets
//! one token signed blind and answers without a session; a token answers once; results are
//! released only from ten answers, with noise, through the analytics budget; and nothing in
//! the database or the audit log links an answer to the customer who gave it.

use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use steward_crypto::ClientBlinding;
use steward_domain::{Role, SurveyId};
use steward_service::{Actor, TokenOwner};

use crate::console::send;
use crate::portal::Mailbox;
use crate::portal_rights::portal_session;
use crate::support::json_call as call;
use crate::support::{TestDb, backend_tests, oneshot, operator_customer};

backend_tests!(survey_answers_are_anonymous_and_released_only_as_noisy_totals);

/// Posts an answer with no credentials at all, as the portal's script does.
async fn answer(app: &axum::Router, survey: &str, token: &Value, answers: Value) -> (u16, Value) {
    let mut body = token.clone();
    body["answers"] = answers;
    let (s, _, v) = oneshot(
        app,
        None,
        "POST",
        &format!("/v1/surveys/{survey}/responses"),
        Some(body.to_string()),
        Some("application/json"),
        &[],
    )
    .await;
    (s.as_u16(), v)
}

async fn survey_answers_are_anonymous_and_released_only_as_noisy_totals(db: TestDb) {
    let (vault, op, store) = db.open().await;
    let mail = Arc::new(Mailbox::default());
    vault.use_notifier(mail.clone());
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Geneva")
        .await
        .unwrap();
    let app = steward_api::router(vault.clone());
    let token = async |role| crate::access::token(&vault, TokenOwner::Role(role)).await;
    let (marketing, analyst, dpo, support) = (
        token(Role::Marketing).await,
        token(Role::Analyst).await,
        token(Role::Dpo).await,
        token(Role::SupportAgent).await,
    );
    let agent = vault
        .identity()
        .authenticate(&support)
        .await
        .unwrap()
        .unwrap();
    // Eleven customers who agreed to marketing e-mail; a twelfth who did not.
    let mut customers = Vec::new();
    for i in 0..12 {
        let email = format!("respondent{i}@example.com");
        let id = operator_customer(
            &vault,
            op,
            json!({"name": format!("Respondent Number{i}"), "email": email, "outlet_id": outlet}),
        )
        .await;
        if i < 11 {
            let consent: steward_domain::ConsentInput = serde_json::from_value(
                json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"}),
            )
            .unwrap();
            vault.record_consent(&agent, id, &consent).await.unwrap();
        }
        customers.push((id, email));
    }
    let (s, segment) = call(
        &app,
        &marketing,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Everyone", "rules": {"all": []}})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{segment}");

    // Composing: choices and scales; free text is refused, as is anyone but marketing or the DPO.
    let body = json!({"title": "Your visit", "segment_id": segment["id"], "purpose": "marketing_email", "questions": [
        {"kind": "scale", "text": "How satisfied are you?"},
        {"kind": "choice", "text": "What brought you in?", "choices": ["A repair", "A gift", "Just looking"]}
    ]});
    let mut free = body.clone();
    free["questions"][1] = json!({"kind": "text", "text": "Anything else?"});
    let (s, p) = call(&app, &marketing, "POST", "/v1/surveys", Some(free), &[]).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("questions[1].kind")),
        "{p}"
    );
    let mut legitimate = body.clone();
    legitimate["purpose"] = json!("fraud_prevention");
    let (s, p) = call(
        &app,
        &marketing,
        "POST",
        "/v1/surveys",
        Some(legitimate),
        &[],
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (422, Some("purpose")), "{p}");
    let (s, _) = call(
        &app,
        &analyst,
        "POST",
        "/v1/surveys",
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    let (s, created) = call(&app, &marketing, "POST", "/v1/surveys", Some(body), &[]).await;
    assert_eq!(s, 201, "{created}");
    let survey = created["id"].as_str().unwrap().to_owned();
    let survey_id: SurveyId = survey.parse().unwrap();

    // Sent to the segment under marketing e-mail: the eleven who agreed.
    let (s, sent) = call(
        &app,
        &marketing,
        "POST",
        &format!("/v1/surveys/{survey}/send"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{sent}");
    assert_eq!(sent["invited"], 11, "{sent}");
    assert_eq!(sent["responses"], "fewer than 10", "{sent}");

    // Ten of them get a token each in the portal, signed blind.
    let spki = store.survey(survey_id).await.unwrap().unwrap().public_key;
    let mut tokens = Vec::new();
    for (n, (_, email)) in customers.iter().take(10).enumerate() {
        let (session, csrf) = portal_session(&app, &mail, email, n).await;
        let (_, _, home) = send(&app, "GET", "/portal", Some(&session), None).await;
        assert!(
            home.contains(&format!("href=\"/portal/surveys/{survey}\"")),
            "the portal lists the survey"
        );
        let (s, _, page) = send(
            &app,
            "GET",
            &format!("/portal/surveys/{survey}"),
            Some(&session),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("data-n=\"") && page.contains("/portal/assets/survey.js"));
        let message: [u8; 32] =
            std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(n as u8 * 7));
        let client = ClientBlinding::new(&spki, &message).unwrap();
        let blinded = URL_SAFE_NO_PAD.encode(client.blinded());
        let form = [("csrf", csrf.as_str()), ("blinded", blinded.as_str())];
        let (s, _, signed) = send(
            &app,
            "POST",
            &format!("/portal/surveys/{survey}/token"),
            Some(&session),
            Some(&form),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{signed}");
        let signed: Value = serde_json::from_str(&signed).unwrap();
        let blind_sig = URL_SAFE_NO_PAD
            .decode(signed["blind_signature"].as_str().unwrap())
            .unwrap();
        let (randomizer, signature) = client
            .finalize(&blind_sig)
            .expect("the server's blind signature is valid");
        // One token per customer.
        let (s, _, again) = send(
            &app,
            "POST",
            &format!("/portal/surveys/{survey}/token"),
            Some(&session),
            Some(&form),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{again}");
        tokens.push(json!({
            "message": URL_SAFE_NO_PAD.encode(message),
            "randomizer": URL_SAFE_NO_PAD.encode(randomizer),
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }));
    }
    // The key is public and the same for everyone: no cookie needed.
    let (s, _, key) = oneshot(
        &app,
        None,
        "GET",
        &format!("/v1/surveys/{survey}/key"),
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (n, e) = steward_crypto::survey_public_components(&spki).unwrap();
    assert_eq!(
        (key["n"].as_str().unwrap(), key["e"].as_str().unwrap()),
        (
            URL_SAFE_NO_PAD.encode(n).as_str(),
            URL_SAFE_NO_PAD.encode(e).as_str()
        )
    );
    // The customer who did not agree was not asked.
    let (session, _) = portal_session(&app, &mail, &customers[11].1, 10).await;
    let (s, _, _) = send(
        &app,
        "GET",
        &format!("/portal/surveys/{survey}"),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A customer restricted since the survey was sent gets no token.
    assert!(
        store
            .set_restricted(customers[10].0, true, &[])
            .await
            .unwrap()
    );
    let (session, csrf) = portal_session(&app, &mail, &customers[10].1, 11).await;
    let blinded = URL_SAFE_NO_PAD.encode(ClientBlinding::new(&spki, &[1u8; 32]).unwrap().blinded());
    let form = [("csrf", csrf.as_str()), ("blinded", blinded.as_str())];
    let (s, _, refused) = send(
        &app,
        "POST",
        &format!("/portal/surveys/{survey}/token"),
        Some(&session),
        Some(&form),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{refused}");

    // Answers, with no credentials; none of them writes to the audit log.
    vault.audit().flush().await.unwrap();
    let audit_before = store.audit_size().await.unwrap();
    let answers_of = |i: usize| json!([i % 5 + 1, i % 3]);
    for (i, t) in tokens.iter().enumerate().take(9) {
        let (s, v) = answer(&app, &survey, t, answers_of(i)).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(
            v,
            json!({"recorded": true}),
            "nothing that could identify the answer"
        );
    }
    // Nine answers wait, sealed, and none is among the answers yet: a copy of the database
    // never shows one arrive on its own.
    assert_eq!(store.tallies(survey_id).await.unwrap().0, 0);
    assert_eq!(store.survey_counts(survey_id).await.unwrap().waiting, 9);
    // No result yet, and nothing is charged.
    let results = async |eps: f64| {
        call(
            &app,
            &analyst,
            "POST",
            &format!("/v1/surveys/{survey}/results?purpose=analytics"),
            Some(json!({"epsilon": eps})),
            &[],
        )
        .await
    };
    let (s, early) = results(0.5).await;
    assert_eq!(s, 409, "{early}");
    let (_, budget) = call(
        &app,
        &analyst,
        "GET",
        "/v1/analytics/budget?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!(budget["epsilon_spent"].as_f64(), Some(0.0), "{budget}");
    let (s, v) = answer(&app, &survey, &tokens[9], answers_of(9)).await;
    assert_eq!(s, 201, "{v}");
    // The tenth: all ten join the answers at once.
    let c = store.survey_counts(survey_id).await.unwrap();
    assert_eq!((c.waiting, c.responses), (0, 10));

    // A token answers once; a forged one, or one of another survey, not at all; bad answers
    // are named.
    let (s, v) = answer(&app, &survey, &tokens[0], answers_of(0)).await;
    assert_eq!((s, v["field"].as_str()), (409, Some("token")), "{v}");
    let mut forged = tokens[0].clone();
    forged["message"] = json!(URL_SAFE_NO_PAD.encode([9u8; 32]));
    let (s, v) = answer(&app, &survey, &forged, answers_of(0)).await;
    assert_eq!((s, v["field"].as_str()), (403, Some("signature")), "{v}");
    let (s, v) = answer(&app, &survey, &tokens[1], json!([0, 1])).await;
    assert_eq!((s, v["field"].as_str()), (422, Some("answers[0]")), "{v}");
    vault.audit().flush().await.unwrap();
    assert_eq!(
        store.audit_size().await.unwrap(),
        audit_before,
        "an answer left an audit entry"
    );

    // Nothing links an answer to a customer: no row per respondent is kept at all, only how
    // many gave each answer — no id, session, address, time or combination of answers.
    let (total, tallies) = store.tallies(survey_id).await.unwrap();
    assert_eq!(total, 10);
    assert_eq!(
        tallies,
        [
            (0, 0, 2),
            (0, 1, 2),
            (0, 2, 2),
            (0, 3, 2),
            (0, 4, 2),
            (1, 0, 4),
            (1, 1, 3),
            (1, 2, 3)
        ]
    );
    // The audit log names who got a token (participation), never an answer.
    let (_, entries) = call(
        &app,
        &dpo,
        "GET",
        &format!("/v1/audit/entries?start=0&end={audit_before}"),
        None,
        &[],
    )
    .await;
    let issued: Vec<&Value> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "survey_token_issued")
        .collect();
    assert_eq!(issued.len(), 10);
    for e in &issued {
        assert_eq!(e["subject"], survey.as_str());
        assert!(e["customer"].as_str().is_some());
        assert!(!e.to_string().contains("answers"));
    }

    // Results from ten answers: counts per answer, with noise (ε = 1000 makes it negligible
    // here, so the totals show), charged like any release; the same ε again costs nothing.
    vault.analytics().set_analytics_budget(op, 2000.0);
    let (s, released) = results(1000.0).await;
    assert_eq!(s, 200, "{released}");
    let scale: Vec<i64> = released["questions"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    assert_eq!(scale, [2, 2, 2, 2, 2], "{released}");
    let choice: Vec<i64> = released["questions"][1]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    assert_eq!(choice, [4, 3, 3], "{released}");
    assert_eq!(released["questions"][1]["rows"][1]["answer"], "A gift");
    assert_eq!(released["epsilon_spent"].as_f64(), Some(1000.0));
    let (s, again) = results(1000.0).await;
    assert_eq!((s, again["epsilon_spent"].as_f64()), (200, Some(0.0)));
    assert_eq!(again["questions"], released["questions"]);
    // The analyst's releases list the survey's results beside any query's.
    let (s, mine) = call(
        &app,
        &analyst,
        "GET",
        "/v1/analytics/releases?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine[0]["survey"], released["questions"], "{mine}");
    // Marketing sees how many answered, not what.
    let (_, list) = call(&app, &marketing, "GET", "/v1/surveys", None, &[]).await;
    assert_eq!(list[0]["responses"], 10, "{list}");
    let (s, _) = call(
        &app,
        &marketing,
        "POST",
        &format!("/v1/surveys/{survey}/results?purpose=analytics"),
        Some(json!({"epsilon": 1})),
        &[],
    )
    .await;
    assert_eq!(s, 403, "results are the analysts'");

    // The customer's export says they were asked and took their token, and nothing of an answer.
    let out = db.dir.path().join("respondent.zip");
    let id = customers[1].0.to_string();
    let (code, _, err) = crate::support::run(
        &["export", "--customer", &id, "--out", out.to_str().unwrap()],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("surveys.json").unwrap(), &mut text).unwrap();
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed["surveys"][0]["survey"], "Your visit", "{listed}");
    assert_eq!(listed["surveys"][0]["token_issued"], true, "{listed}");
    assert!(!text.contains("answers\""), "{text}");

    // An erasure takes the invitation (that they were asked) and leaves the anonymous answers.
    let dpo_p = vault.identity().authenticate(&dpo).await.unwrap().unwrap();
    vault
        .erase_customer(Actor::Principal(&dpo_p), customers[0].0)
        .await
        .unwrap();
    assert!(store.invitations(customers[0].0).await.unwrap().is_empty());
    assert_eq!(store.tallies(survey_id).await.unwrap().0, 10);
}
