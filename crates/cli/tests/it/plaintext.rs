//! No plaintext at rest: known personal values go in through the real server; then every byte of
//! the SQLite files (main, -wal, -shm), of a `pg_dump`, and of the server's logs is scanned for
//! each value in its original and normalised forms.

use serde_json::json;

use crate::support::{Kind, Server, TestDb, backend_tests, run, token_in};

backend_tests!(no_personal_value_at_rest_or_in_logs);

/// Each personal value with the forms it could be stored in.
fn needles() -> (Vec<serde_json::Value>, Vec<String>) {
    let people = [
        (
            "Wilhelmina Quarterstaff",
            "Wilhelmina.Q@Example.org",
            "+44 20 7946 0871",
            "17 Juniperberry Close",
        ),
        (
            "Bartholomew Fennimore",
            "BART.fenn@example.net",
            "0044 (113) 496-0872",
            "221 Quincewood Terrace",
        ),
    ];
    let mut bodies = Vec::new();
    let mut forms = Vec::new();
    for (name, email, phone, street) in people {
        bodies.push(json!({"name": name, "email": email, "phone": phone, "address": {"street": street, "city": "Marrowbury", "postal_code": "MB7 3XQ", "country": "Narnialand"}, "date_of_birth": "1977-07-17", "preferred_language": "gsw-LI"}));
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let e164 = format!("+{}", digits.trim_start_matches("00"));
        for v in [
            name,
            email,
            phone,
            street,
            &e164,
            &digits,
            "Marrowbury",
            "MB7 3XQ",
            "Narnialand",
            "1977-07-17",
            "gsw-LI",
        ] {
            forms.push(v.to_owned());
            forms.push(v.to_lowercase());
        }
        forms.push(name.split(' ').nth(1).unwrap().to_owned());
    }
    for v in [
        "My parcel to Snorkelwick never arrived",
        "Xylocarp Tourbillon 1337",
        "Reginald Staffperson",
        "987654321",
        "Quibblewort reason",
        "Quillfeather subject line",
        "Your Zanzibarine order is ready",
        "Marmaladewing reply text",
    ] {
        forms.push(v.to_owned());
        forms.push(v.to_lowercase());
    }
    // Distinctive words alone too, so that a partial leak is caught.
    let words: Vec<String> = forms
        .iter()
        .flat_map(|f| {
            f.split([' ', '.', '@'])
                .filter(|w| w.len() >= 8)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    forms.extend(words);
    forms.sort();
    forms.dedup();
    (bodies, forms)
}

pub(crate) fn hits(hay: &[u8], forms: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for f in forms {
        let hex: String = f.bytes().map(|b| format!("{b:02x}")).collect();
        // pg_dump prints bytea as hex, so a value stored unsealed in a bytea would show up so.
        for needle in [f.as_bytes(), hex.as_bytes()] {
            if needle.len() >= 4
                && hay
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
            {
                found.push(f.clone());
            }
        }
    }
    found
}

pub(crate) fn scan_store(db: &TestDb, forms: &[String], when: &str) -> usize {
    let mut scanned = 0;
    match db.kind {
        Kind::Sqlite => {
            for (file, suffix) in ["steward.db", "steward-audit.db", "steward-audit-index.db"]
                .iter()
                .flat_map(|f| ["", "-wal", "-shm"].map(|s| (f, s)))
            {
                let path = db.dir.path().join(format!("{file}{suffix}"));
                if let Ok(bytes) = std::fs::read(&path) {
                    scanned += bytes.len();
                    let h = hits(&bytes, forms);
                    assert!(h.is_empty(), "{when}: {} holds {h:?}", path.display());
                }
            }
        }
        Kind::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg("--no-owner")
                .arg(&db.url)
                .output()
                .expect("run pg_dump (Debian package postgresql-client)");
            assert!(
                out.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            scanned += out.stdout.len();
            let h = hits(&out.stdout, forms);
            assert!(h.is_empty(), "{when}: pg_dump holds {h:?}");
            // The dump really contains the data: each customer's sealed e-mail is in it.
            assert!(String::from_utf8_lossy(&out.stdout).contains("COPY public.customers"));
        }
    }
    scanned
}

async fn no_personal_value_at_rest_or_in_logs(db: TestDb) {
    let (bodies, forms) = needles();
    let mut tokens = Vec::new();
    for role in [
        "support_agent",
        "admin",
        "sales_associate",
        "marketing",
        "mail_gateway",
    ] {
        let (code, out, err) = run(
            &[
                "token", "create", "--name", "scan", "--role", role, "--init",
            ],
            &db,
        );
        assert_eq!(code, 0, "{err}");
        tokens.push(token_in(&out));
    }
    let token = tokens[0].clone();
    let (ta, ts) = (Some(tokens[1].as_str()), Some(tokens[2].as_str()));
    // Campaign mail goes to a file outside the data directory (what a mail server receives
    // holds the address; only the store and the logs are scanned).
    let outbox = tempfile::tempdir().unwrap();
    let mail_file = outbox.path().join("mail.txt");
    let server = Server::start(
        &db,
        &[
            "--mail-sink",
            mail_file.to_str().unwrap(),
            "--public-url",
            "https://crm.example.test",
            "--segment-threshold",
            "5",
            // Notifications to a closed loopback port: they stay in the outbox, tried.
            "--allow-insecure-webhooks",
        ],
        &[("RUST_LOG", "trace,hyper=debug,h2=debug")],
    );
    let marketing = tokens[3].clone();
    let t = Some(token.as_str());

    let (_, o) = server.json(
        "POST",
        "/v1/outlets",
        ta,
        Some(&json!({"name": "Scan Outlet"})),
    );
    let outlet = o["id"].as_str().unwrap().to_owned();
    let (_, s) = server.json("POST", "/v1/staff", ta, Some(&json!({"name": "Reginald Staffperson", "roles": ["sales_associate"], "outlet_ids": [outlet]})));
    let seller = s["id"].as_str().unwrap().to_owned();
    for body in &bodies {
        let (status, c) = server.json("POST", "/v1/customers", t, Some(body));
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_str().unwrap();
        let (status, _) = server.json("POST", &format!("/v1/customers/{id}/interactions"), t, Some(&json!({"channel": "email", "text": "My parcel to Snorkelwick never arrived", "source": "helpdesk"})));
        assert_eq!(status, 201);
        let purchase = json!({"item": "Xylocarp Tourbillon 1337", "category": "watches", "outlet_id": outlet, "seller_id": seller, "amount_minor": 987654321, "currency": "GBP"});
        assert_eq!(
            server
                .json(
                    "POST",
                    &format!("/v1/customers/{id}/purchases"),
                    ts,
                    Some(&purchase)
                )
                .0,
            201
        );
        // Reads, lookups and a change make the values travel every path.
        let (status, got) = server.json(
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            t,
            None,
        );
        assert_eq!(
            (status, got["address"]["city"].as_str()),
            (200, Some("Marrowbury"))
        );
        assert_eq!(
            server
                .json(
                    "GET",
                    &format!("/v1/customers/{id}/purchases?purpose=service"),
                    t,
                    None
                )
                .0,
            200
        );
        assert_eq!(
            server
                .json(
                    "GET",
                    &format!("/v1/customers/{id}/interactions?purpose=service"),
                    t,
                    None
                )
                .0,
            200
        );
        // A stated reason is free text: it must not be stored or logged either.
        let with_reason = format!(
            "/v1/customers/{id}?purpose=service&reason=Quibblewort%20reason%20given%20here"
        );
        assert_eq!(server.json("GET", &with_reason, t, None).0, 200);
        let (status, found) = server.json(
            "POST",
            "/v1/customers/lookup?purpose=service",
            t,
            Some(&json!({"email": body["email"]})),
        );
        assert_eq!((status, found["items"][0]["id"].as_str()), (200, Some(id)));
        assert_eq!(
            server
                .json(
                    "POST",
                    "/v1/customers/lookup?purpose=service",
                    t,
                    Some(&json!({"phone": body["phone"]}))
                )
                .0,
            200
        );
        assert_eq!(
            server
                .json(
                    "PATCH",
                    &format!("/v1/customers/{id}"),
                    t,
                    Some(&json!({"name": body["name"]}))
                )
                .0,
            204
        );
    }
    // A campaign to them (and to four others: a campaign needs at least the size threshold's
    // five): the templates fill in the name, the envelope takes the address.
    for n in 0..4 {
        let (status, c) = server.json("POST", "/v1/customers", t, Some(&json!({"name": format!("Filler Person{n}"), "email": format!("filler{n}@example.com")})));
        assert_eq!(status, 201, "{c}");
    }
    let (_, page) = server.json("GET", "/v1/customers?purpose=service&limit=50", t, None);
    for c in page["items"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let (status, g) = server.json(
            "POST",
            &format!("/v1/customers/{id}/consents"),
            t,
            Some(&json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"})),
        );
        assert_eq!(status, 201, "{g}");
    }
    let m = Some(marketing.as_str());
    let (_, seg) = server.json(
        "POST",
        "/v1/segments",
        m,
        Some(&json!({"name": "All", "rules": {"all": []}})),
    );
    let (status, c) = server.json("POST", "/v1/campaigns", m, Some(&json!({"segment_id": seg["id"], "purpose": "marketing_email", "subject": "News for {{first_name}}", "body": "Dear {{name}}, hello."})));
    assert_eq!(status, 201, "{c}");
    let campaign = c["id"].as_str().unwrap().to_owned();
    let (status, sent) = server.json("POST", &format!("/v1/campaigns/{campaign}/send"), m, None);
    assert_eq!(status, 202, "{sent}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = server.json("GET", &format!("/v1/campaigns/{campaign}"), m, None);
        if v["status"] == "sent" {
            assert_eq!(v["counts"]["sent"], 6, "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mail = std::fs::read_to_string(&mail_file).unwrap();
    assert!(
        mail.to_lowercase().contains("wilhelmina.q@example.org")
            && mail.contains("Dear Wilhelmina Quarterstaff"),
        "the campaign went out"
    );

    // Sharing (issue 22): two recipients read everyone, one identified and one under
    // pseudonyms; then a change queues notifications. Disclosures, pseudonyms and the outbox
    // hold ids, pseudonyms and category names, never a value.
    let (code, out, err) = run(&["token", "create", "--name", "scan", "--role", "dpo"], &db);
    assert_eq!(code, 0, "{err}");
    let dpo = token_in(&out);
    let d = Some(dpo.as_str());
    let now = steward_domain::Timestamp::now().millis();
    let mut readers = Vec::new();
    for (name, purpose, categories, identity) in [
        (
            "Scan Parcel",
            "order_fulfilment",
            vec![
                "user.name",
                "user.contact.address",
                "user.behavior.purchase_history",
            ],
            "identified",
        ),
        (
            "Scan Insight",
            "analytics",
            vec!["user.behavior.purchase_history"],
            "pseudonymous",
        ),
    ] {
        let (status, r) = server.json("POST", "/v1/recipients", d, Some(&json!({"name": name, "kind": "processor", "country": "GB", "webhook_url": "http://127.0.0.1:9/hooks"})));
        assert_eq!(status, 201, "{r}");
        let id = r["id"].as_str().unwrap().to_owned();
        let (status, a) = server.json("POST", "/v1/agreements", d, Some(&json!({"recipient_id": id, "purposes": [purpose], "categories": categories,
            "lawful_basis": if purpose == "analytics" { "legitimate_interest" } else { "contract" }, "document_sha256": "ab".repeat(32), "identity": identity,
            "starts_at": steward_domain::Timestamp(now - 60_000).to_rfc3339(), "expires_at": steward_domain::Timestamp(now + 86_400_000).to_rfc3339()})));
        assert_eq!(status, 201, "{a}");
        let (code, out, err) = run(
            &["token", "create", "--name", "scan", "--recipient", &id],
            &db,
        );
        assert_eq!(code, 0, "{err}");
        readers.push((purpose, token_in(&out)));
    }
    for c in page["items"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let (status, v) = server.json(
            "GET",
            &format!("/v1/customers/{id}?purpose=order_fulfilment"),
            Some(&readers[0].1),
            None,
        );
        assert_eq!(status, 200, "{v}");
    }
    let (status, shared) = server.json(
        "GET",
        "/v1/shared?purpose=analytics&limit=100",
        Some(&readers[1].1),
        None,
    );
    assert_eq!(status, 200, "{shared}");
    assert!(!shared["items"].as_array().unwrap().is_empty(), "{shared}");
    for c in page["items"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let (status, _) = server.json("PATCH", &format!("/v1/customers/{id}"), t, Some(&json!({"address": {"street": "2 Zephyrine Row", "city": "Marrowbury", "postal_code": "MB1 2ZZ", "country": "GB"}})));
        assert_eq!(status, 204);
    }
    let (_, queued) = server.json("GET", "/v1/notifications?limit=500", d, None);
    assert!(
        queued["items"].as_array().unwrap().len() >= page["items"].as_array().unwrap().len(),
        "{queued}"
    );

    // A staff message to her and her reply through the inbound endpoint: subject, text, alias
    // and the reply (which quotes her address and phone) are sealed or MACed, never in clear.
    let (_, found) = server.json(
        "POST",
        "/v1/customers/lookup?purpose=service",
        t,
        Some(&json!({"email": bodies[0]["email"]})),
    );
    let wilhelmina = found["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, m) = server.json(
        "POST",
        &format!("/v1/customers/{wilhelmina}/messages?purpose=service"),
        t,
        Some(&json!({"subject": "Quillfeather subject line", "text": "Your Zanzibarine order is ready"})),
    );
    assert_eq!(status, 202, "{m}");
    let alias = crate::mail::reply_alias_in(&mail_file);
    let mut forms = forms;
    forms.push(
        alias
            .split('@')
            .next()
            .unwrap()
            .trim_start_matches("reply-")
            .to_owned(),
    );
    let reply = format!(
        "From: Wilhelmina <Wilhelmina.Q@Example.org>\r\nTo: {alias}\r\nSubject: Re: Quillfeather subject line\r\n\r\nMarmaladewing reply text. Call +44 20 7946 0871.\r\n"
    );
    let (status, r) = crate::mail::http(
        &server.addr,
        "POST",
        "/v1/inbound/email",
        Some(tokens[4].as_str()),
        Some(("message/rfc822", reply.as_str())),
    );
    assert_eq!(status, 202, "{r}");

    // Refused input carrying personal values must not leak through logs either.
    let bad =
        json!({"name": "Wilhelmina Quarterstaff", "email": "Wilhelmina.Q@Example.org@nowhere"});
    assert_eq!(server.json("POST", "/v1/customers", t, Some(&bad)).0, 422);
    assert_eq!(server.json("GET", "/v1/staff", ta, None).0, 200);

    let live = scan_store(&db, &forms, "while serving");
    let (stdout, stderr) = server.stop();
    let after = scan_store(&db, &forms, "after shutdown");
    assert!(live > 0 && after > 0, "nothing was scanned");
    let logs = format!("{stdout}\n{stderr}");
    assert!(
        logs.len() > 1000,
        "the server logged almost nothing at trace level; the scan would prove little"
    );
    let h = hits(logs.as_bytes(), &forms);
    assert!(h.is_empty(), "the logs hold {h:?}");
    for t in &tokens {
        // `stw_<hex id>_<secret>`: the secret is base64url and may itself hold `_`, so it is
        // everything after the second underscore (a fragment after the last one can be two
        // characters long and turn up in any log by chance).
        let secret = t.splitn(3, '_').nth(2).unwrap();
        assert!(secret.len() >= 40, "not a whole secret: {}", secret.len());
        assert!(!logs.contains(secret), "the logs hold a token secret");
    }
}

#[test]
fn the_scanner_finds_planted_values() {
    let (_, forms) = needles();
    assert!(
        hits(b"xx wilhelmina.q@example.org yy", &forms)
            .contains(&"Wilhelmina.Q@Example.org".to_owned()),
        "any case"
    );
    let hex: String = "Snorkelwick".bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !hits(format!("\\x00{hex}00").as_bytes(), &forms).is_empty(),
        "hex (bytea) form"
    );
    assert!(
        !hits(b"+442079460871", &forms).is_empty(),
        "normalised phone"
    );
    assert!(hits(b"nothing personal here", &forms).is_empty());
}
