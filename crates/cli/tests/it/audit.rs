//! The audit log through the API and the binary: entries for every decision, signed checkpoints
//! anyone can verify with the public key, inclusion and consistency proofs that check out
//! against them, and `steward audit verify`.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use steward_crypto::merkle;
use steward_crypto::{Checkpoint, NoteVerifier};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token};
use crate::support::{TestDb, backend_tests, oneshot};

backend_tests!(
    audit_log_proves_what_it_holds,
    every_write_is_an_entry,
    operator_actions_are_entries,
    the_export_is_an_entry_per_customer,
    ranges_read_the_stored_columns_exactly,
    the_index_is_built_apart_from_the_writer,
    the_index_merges_its_runs
);

fn b64(v: &Value) -> [u8; 32] {
    STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v["hashes"].as_array().unwrap().iter().map(b64).collect()
}

/// The checkpoint, fetched without a token and verified with the published key.
async fn checkpoint(r: &axum::Router) -> Checkpoint {
    let (s, _, key) = oneshot(r, None, "GET", "/v1/audit/public-key", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let verifier = NoteVerifier::parse(key["verifier_key"].as_str().unwrap()).unwrap();
    let (s, _, note) = oneshot(r, None, "GET", "/v1/audit/checkpoint", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    Checkpoint::open(note.as_str().unwrap(), &verifier).expect("the checkpoint verifies")
}

async fn audit_log_proves_what_it_holds(db: TestDb) {
    let (v, _, store) = db.open().await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let r = steward_api::router(v.clone());
    let id = new_customer(
        &r,
        &support,
        json!({"name": "Alma Audit", "email": "alma@example.com"}),
    )
    .await;
    // The writes so far (two tokens, the customer) are entries too; the reads follow them.
    v.audit().flush().await.unwrap();
    let base = store.audit_size().await.unwrap();
    assert_eq!(base, 3, "token, token, customer");
    for purpose in ["service", "order_fulfilment", "analytics"] {
        call(
            &r,
            &support,
            "GET",
            &format!("/v1/customers/{id}?purpose={purpose}"),
            None,
            false,
        )
        .await;
    }
    let first = checkpoint(&r).await;
    assert_eq!(first.size, base + 3, "one entry per decided read");

    // Entries: the leaf bytes beside what they say; no personal value.
    let (s, page) = call(
        &r,
        &dpo,
        "GET",
        &format!("/v1/audit/entries?start={base}&end={}", base + 10),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let mut leaves = vec![];
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["index"], base + i as u64);
        let leaf = STANDARD.decode(e["leaf"].as_str().unwrap()).unwrap();
        let decoded = steward_domain::AuditLeaf::from_bytes(&leaf).unwrap();
        assert_eq!(json!(decoded.action), e["action"]);
        assert_eq!(json!(decoded.customer), json!(id));
        assert!(!String::from_utf8_lossy(&leaf).contains("Alma"));
        leaves.push(merkle::leaf_hash(&leaf));
    }
    assert_eq!(entries[2]["purpose"], "analytics");
    assert_eq!(
        entries[2]["outcome"], "deny",
        "support agents read no analytics"
    );

    // Every entry's inclusion proof checks out against the signed root.
    for (i, leaf) in leaves.iter().enumerate() {
        let (s, p) = call(
            &r,
            &dpo,
            "GET",
            &format!(
                "/v1/audit/proof/inclusion?index={}&tree_size={}",
                base + i as u64,
                base + 3
            ),
            None,
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert!(merkle::verify_inclusion(
            base + i as u64,
            base + 3,
            leaf,
            &hashes(&p),
            &first.root
        ));
    }

    // The log grows; the new head is consistent with the old one.
    for _ in 0..4 {
        call(
            &r,
            &support,
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            None,
            false,
        )
        .await;
    }
    // A log at rest is all signed: the writer signs the tail once appends pause.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let latest = store
            .latest_audit_checkpoint()
            .await
            .unwrap()
            .map(|(s, _)| s);
        if latest == Some(base + 7) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint over the tail: {latest:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let second = checkpoint(&r).await;
    assert_eq!(second.size, base + 7);
    let (s, p) = call(
        &r,
        &dpo,
        "GET",
        &format!(
            "/v1/audit/proof/consistency?first={}&second={}",
            base + 3,
            base + 7
        ),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert!(merkle::verify_consistency(
        base + 3,
        base + 7,
        &first.root,
        &second.root,
        &hashes(&p)
    ));
    assert!(!merkle::verify_consistency(
        base + 3,
        base + 7,
        &second.root,
        &second.root,
        &hashes(&p)
    ));

    // "Who looked at my data": this customer's accesses, newest first, each provable against
    // the checkpoint given with them — before the by-customer index has caught up, and after.
    let (s, other) = call(
        &r,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Otto Other"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    call(
        &r,
        &support,
        "GET",
        &format!(
            "/v1/customers/{}?purpose=service",
            other["id"].as_str().unwrap()
        ),
        None,
        false,
    )
    .await;
    v.audit().flush().await.unwrap();
    let (_, _, key) = oneshot(&r, None, "GET", "/v1/audit/public-key", None, None, &[]).await;
    let verifier = NoteVerifier::parse(key["verifier_key"].as_str().unwrap()).unwrap();
    // Alma's entries: her creation (just before `base`) and her seven reads.
    let mut alma: Vec<u64> = (base..base + 7).rev().collect();
    alma.push(base - 1);
    // Each read of her access log is itself an entry about her, committed before the answer.
    let mut next = base + 9;
    for round in 0..2 {
        alma.insert(0, next);
        next += 1;
        let (s, log) = call(
            &r,
            &dpo,
            "GET",
            &format!("/v1/customers/{id}/access-log"),
            None,
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let head = Checkpoint::open(log["checkpoint"].as_str().unwrap(), &verifier).unwrap();
        assert_eq!(head.size, next);
        let entries = log["entries"].as_array().unwrap();
        let indexes: Vec<u64> = entries
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(
            indexes, alma,
            "round {round}: only this customer's, newest first"
        );
        for e in entries {
            assert_eq!(e["customer"], json!(id));
            // The support agent's reads, and the DPO's reads of this very log.
            let roles = e["roles"].as_array().unwrap();
            assert!(
                roles.contains(&json!("support_agent"))
                    || (roles.contains(&json!("dpo")) && e["action"] == "read_access_log"),
                "{e}"
            );
            let leaf = merkle::leaf_hash(&STANDARD.decode(e["leaf"].as_str().unwrap()).unwrap());
            let proof: Vec<[u8; 32]> = e["proof"].as_array().unwrap().iter().map(b64).collect();
            assert!(merkle::verify_inclusion(
                e["index"].as_u64().unwrap(),
                head.size,
                &leaf,
                &proof,
                &head.root
            ));
        }
        let (s, page) = call(
            &r,
            &dpo,
            "GET",
            &format!("/v1/customers/{id}/access-log?before={}&limit=2", base + 3),
            None,
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let idx: Vec<u64> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(idx, vec![base + 2, base + 1]);
        assert_eq!(page["next_before"], base + 1);
        alma.insert(0, next);
        next += 1;
        store.index_audit(1000).await.unwrap();
    }
    let marketing = token(&v, TokenOwner::Role(Role::Marketing)).await;
    let (s, _) = call(
        &r,
        &marketing,
        "GET",
        &format!("/v1/customers/{id}/access-log"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Only the DPO reads entries and proofs; bad parameters name themselves.
    let (s, _) = call(
        &r,
        &support,
        "GET",
        "/v1/audit/entries?start=0&end=10",
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for (uri, field) in [
        ("/v1/audit/entries?end=10", "start"),
        ("/v1/audit/proof/inclusion?index=x&tree_size=3", "index"),
        ("/v1/audit/proof/inclusion?index=9&tree_size=9", "index"),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=99",
            "tree_size",
        ),
        ("/v1/audit/proof/consistency?first=0&second=9", "first"),
        ("/v1/audit/entries?start=0&end=5000", "end"),
        ("/v1/customers/{id}/access-log?limit=0", "limit"),
    ] {
        let uri = uri.replace("{id}", &id);
        let (s, p) = call(&r, &dpo, "GET", &uri, None, false).await;
        assert!(s.is_client_error(), "{uri}: {s}");
        assert_eq!(p["field"], field, "{uri}: {p}");
    }

    // The binary recomputes everything and agrees, without the master key.
    // Everything written so far in the log and signed: 3 + 7 reads + Otto + his read + a token,
    // and the four reads of access logs (each an entry since issue 15, finding 10).
    v.audit().flush().await.unwrap();
    v.audit().checkpoint().await.unwrap();
    drop(v);
    std::fs::rename(db.key_file(), db.dir.path().join("elsewhere.key")).unwrap();
    let (code, out, err) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("audit log OK: 17 entries"), "{out}");

    // An export anyone can check with the public key alone: no database, no master key.
    let file = db.dir.path().join("audit-export.jsonl");
    let (code, out, err) =
        crate::support::run(&["audit", "export", "--out", file.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{out}{err}");
    let vkey = key["verifier_key"].as_str().unwrap().to_owned();
    let check = |path: &std::path::Path, vkey: &str| {
        let o = crate::support::steward()
            .args([
                "audit",
                "verify-export",
                path.to_str().unwrap(),
                "--verifier-key",
                vkey,
            ])
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (code, text) = check(&file, &vkey);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("export OK: 17 entries"), "{text}");
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let other_key = steward_crypto::NoteSigner::load_or_create(
        &db.dir.path().join("other-audit.key"),
        "steward/audit",
    )
    .unwrap()
    .0
    .verifier_key();
    let tampered_leaf = {
        let mut l = lines.clone();
        // A compact leaf starts with byte 2: base64 `A`.
        let line = l[3].replacen("\"leaf\":\"A", "\"leaf\":\"B", 1);
        assert_ne!(line, l[3]);
        l[3] = &line;
        l.join("\n")
    };
    for (what, text, key) in [
        ("a changed leaf", tampered_leaf, vkey.as_str()),
        (
            "a missing entry",
            lines[..lines.len() - 1].join("\n"),
            vkey.as_str(),
        ),
        (
            "reordered entries",
            {
                let mut l = lines.clone();
                l.swap(2, 3);
                l.join("\n")
            },
            vkey.as_str(),
        ),
        ("another key", original.clone(), other_key.as_str()),
    ] {
        let bad = db.dir.path().join("bad-export.jsonl");
        std::fs::write(&bad, text).unwrap();
        let (code, out) = check(&bad, key);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("export FAILED"), "{what}: {out}");
    }
}

/// Three `steward serve` processes on one PostgreSQL database append to one log under load:
/// no fork, no gap, every checkpoint any of them signed verifies against the one tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_append_to_one_log() {
    servers_share_one_log(crate::support::Kind::Postgres).await;
}

/// The same on one SQLite file: each server's writer appends on a connection of its own and
/// waits out the others' write locks instead of failing. On a runtime of several threads, as
/// the test blocks its own while servers start: on one thread, a task of the test's vault
/// suspended inside a log transaction would hold SQLite's write lock all that time, and a
/// starting server's drain waited it out to its busy timeout (CI, once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_append_to_one_sqlite_log() {
    servers_share_one_log(crate::support::Kind::Sqlite).await;
}

async fn servers_share_one_log(kind: crate::support::Kind) {
    let db = TestDb::new(kind).await;
    let (support, id) = {
        let v = db.vault().await;
        let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
        let r = steward_api::router(v.clone());
        let id = new_customer(&r, &support, json!({"name": "Multi Process"})).await;
        (support, id)
    };
    // The rate limit holds for the installation (issue 24): lifted, as this is about the log.
    let servers: Vec<_> = (0..3)
        .map(|_| {
            std::sync::Arc::new(crate::support::Server::start(
                &db,
                &["--rate-limit", "default=1000000/1000000"],
                &[],
            ))
        })
        .collect();
    // One of them takes the signer's lease (from the vault above, gone now) within seconds.
    if kind == crate::support::Kind::Postgres {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !servers.iter().any(|s| {
            std::fs::read_to_string(&s.stderr)
                .unwrap_or_default()
                .contains("signs the audit log's checkpoints")
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "no server took the signer's lease\n{}",
                servers
                    .iter()
                    .map(|s| std::fs::read_to_string(&s.stderr).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    const CLIENTS_PER_SERVER: usize = 4;
    const READS: usize = 40;
    let mut threads = Vec::new();
    for server in &servers {
        for c in 0..CLIENTS_PER_SERVER {
            let (server, support, id) = (server.clone(), support.clone(), id.clone());
            threads.push(std::thread::spawn(move || {
                for i in 0..READS {
                    let (s, body) = server.http(
                        "GET",
                        &format!("/v1/customers/{id}?purpose=service"),
                        Some(&support),
                        None,
                    );
                    assert_eq!(
                        s,
                        200,
                        "{body}\n{}",
                        std::fs::read_to_string(&server.stderr).unwrap_or_default()
                    );
                    if (i + c) % 10 == 0 {
                        let (s, body) = server.http("GET", "/v1/audit/checkpoint", None, None);
                        assert_eq!(
                            s,
                            200,
                            "{body}\n{}",
                            std::fs::read_to_string(&server.stderr).unwrap_or_default()
                        );
                    }
                }
            }));
        }
    }
    // Verification while the servers append and index: it checks what existed when it began.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, out, err) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "verify under load: {out}{err}");
    for t in threads {
        t.join().unwrap();
    }
    // The reads, the two writes made before the servers started (the token, the customer), and
    // each server's record of the policy it started with.
    let total = (servers.len() * (CLIENTS_PER_SERVER * READS + 1)) as u64 + 2;
    let (mut signers, mut lost, mut logs) = (0, 0, String::new());
    for s in servers {
        let (out, err) = std::sync::Arc::into_inner(s).unwrap().stop();
        let log = format!("{out}{err}");
        signers += usize::from(log.contains("signs the audit log's checkpoints"));
        lost += usize::from(log.contains("lost the checkpoint signer's lease"));
        logs.push_str(&log);
    }
    // On PostgreSQL one server holds the signer's lease at a time; a SQLite file's servers all
    // may sign. A lease is given up when its connection is slow to answer (a stalled machine),
    // and another server may then take it: a second signer is right only after a loss.
    if kind == crate::support::Kind::Postgres {
        assert!(
            signers == 1 || (signers > 1 && lost >= signers - 1),
            "one server signs checkpoints at a time ({signers} signed, {lost} lost the lease)\n{logs}"
        );
    }
    let (code, out, err) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("audit log OK: {total} entries")),
        "{out}"
    );
    let checkpoints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_checkpoints")
        .fetch_one(&db.raw_log().await)
        .await
        .unwrap();
    assert!(
        checkpoints >= 1,
        "checkpoints were signed along the way ({checkpoints})"
    );
}

/// Every write through the API is an entry, committed with the write (a refused write leaves
/// none), naming fields and purposes but never a value.
async fn every_write_is_an_entry(db: TestDb) {
    let (v, _, store) = db.open().await;
    let admin = token(&v, TokenOwner::Role(Role::Admin)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let manager = token(&v, TokenOwner::Role(Role::StoreManager)).await;
    let r = steward_api::router(v.clone());
    v.audit().flush().await.unwrap();
    let start = store.audit_size().await.unwrap();
    let ok = |s: StatusCode, body: &Value| assert!(s.is_success(), "{s} {body}");
    let (s, outlet) = call(
        &r,
        &admin,
        "POST",
        "/v1/outlets",
        Some(json!({"name": "Audit Outlet"})),
        false,
    )
    .await;
    ok(s, &outlet);
    let (s, again) = call(
        &r,
        &admin,
        "POST",
        "/v1/outlets",
        Some(json!({"name": "Audit Outlet"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{again}");
    let (s, staff) = call(&r, &admin, "POST", "/v1/staff", Some(json!({"name": "Sam Seller", "roles": ["sales_associate"], "outlet_ids": [outlet["id"]]})), false).await;
    ok(s, &staff);
    let (s, c) = call(
        &r,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Wanda Write", "email": "wanda@example.com"})),
        false,
    )
    .await;
    ok(s, &c);
    let id = c["id"].as_str().unwrap().to_owned();
    let steps: [(&str, &str, String, Value); 6] = [
        (
            "PATCH",
            &support,
            format!("/v1/customers/{id}"),
            json!({"phone": "+44 20 7946 0123"}),
        ),
        (
            "POST",
            &support,
            format!("/v1/customers/{id}/interactions"),
            json!({"channel": "email", "text": "Wanda asked about her order", "source": "inbox"}),
        ),
        (
            "POST",
            &manager,
            format!("/v1/customers/{id}/purchases"),
            json!({"item": "Orbit Chronograph", "category": "watches", "outlet_id": outlet["id"], "seller_id": staff["id"], "amount_minor": 420000, "currency": "EUR"}),
        ),
        (
            "POST",
            &support,
            format!("/v1/customers/{id}/consents"),
            json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"}),
        ),
        (
            "POST",
            &dpo,
            "/v1/purposes".to_owned(),
            json!({"key": "audit_sms", "lawful_basis": "consent", "data_use": "marketing.communications.sms", "categories": ["user.contact.phone_number"], "retention_days": 90, "notice_text": "Texts about your orders."}),
        ),
        (
            "PATCH",
            &dpo,
            "/v1/purposes/audit_sms".to_owned(),
            json!({"retention_days": 60}),
        ),
    ];
    for (method, t, uri, body) in steps {
        let (s, b) = call(&r, t, method, &uri, Some(body), false).await;
        ok(s, &b);
    }
    v.audit().flush().await.unwrap();
    let end = store.audit_size().await.unwrap();
    let entries = store.audit_entries(start, end).await.unwrap();
    let leaves: Vec<steward_domain::AuditLeaf> = entries
        .iter()
        .map(|e| steward_domain::AuditLeaf::from_bytes(&e.row.leaf).unwrap())
        .collect();
    let actions: Vec<&str> = leaves.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create_outlet",
            "create_staff",
            "create_customer",
            "update_customer",
            "add_interaction",
            "add_purchase",
            "consent_grant",
            "register_purpose",
            "change_purpose",
        ],
        "one entry per write, none for the refused one"
    );
    assert_eq!(leaves[0].roles, vec![Role::Admin]);
    assert!(leaves[0].principal.starts_with("p_"));
    assert_eq!(leaves[3].categories.keys().collect::<Vec<_>>(), ["phone"]);
    assert_eq!(leaves[6].purpose.as_deref(), Some("marketing_email"));
    assert_eq!(leaves[8].purpose.as_deref(), Some("audit_sms"));
    for e in &entries {
        let text = String::from_utf8_lossy(&e.row.leaf);
        // Long enough that no id or time in a leaf can hold them by chance.
        for value in [
            "Wanda",
            "wanda@",
            "2079460123",
            "Orbit",
            "Sam Seller",
            "her order",
        ] {
            assert!(!text.contains(value), "{value} in {text}");
        }
    }
    let report = steward_service::verify_log(&store, v.audit().verifier_key(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.first_bad, None);
}

/// What the operator does at the command line — exporting everything, rotating the master key —
/// is an entry too.
async fn operator_actions_are_entries(db: TestDb) {
    drop(db.vault().await);
    let out = db.dir.path().join("everything.jsonl");
    let (code, o, e) = crate::support::run(&["export", "--out", out.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = crate::support::run(&["keys", "rotate"], &db);
    assert_eq!(code, 0, "{o}{e}");
    let (v, _, store) = db.open().await;
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    let actions: Vec<(String, String)> = store
        .audit_entries(0, size)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let l = steward_domain::AuditLeaf::from_bytes(&e.row.leaf).unwrap();
            (l.action, l.principal)
        })
        .collect();
    assert!(
        actions.contains(&("export_all".into(), "operator:export".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("rotate_master_key".into(), "operator:keys rotate".into())),
        "{actions:?}"
    );
    // A server records the policy it starts with, by fingerprint.
    drop(v);
    let server = crate::support::Server::start(&db, &[], &[]);
    drop(server);
    let v = db.vault().await;
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    let entries = store.audit_entries(0, size).await.unwrap();
    let policy = entries
        .iter()
        .map(|e| steward_domain::AuditLeaf::from_bytes(&e.row.leaf).unwrap())
        .find(|l| l.action == "load_policy")
        .expect("a load_policy entry");
    assert_eq!(
        policy.subject.as_deref(),
        Some(steward_crypto::fingerprint(steward_policy::DEFAULT_POLICIES.as_bytes()).as_str())
    );
}

/// PostgreSQL databases drained by the former watermark may hold outbox rows at or below it
/// (appended already, a crash before their delete): untagged, they are refused (a stand-in
/// says so) and kept aside, not appended twice — nor deleted unseen on the word of a number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_below_the_old_watermark_are_not_appended_again() {
    use sqlx::Row;
    let db = crate::support::TestDb::new(crate::support::Kind::Postgres).await;
    let (v, op, _) = db.open().await;
    v.audit().flush().await.unwrap();
    let raw = db.raw().await;
    let before: i64 = sqlx::query("SELECT size FROM audit_head")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    // A leftover of the old drain: its seq is at the watermark.
    sqlx::query("INSERT INTO audit_outbox (leaf, occurred_at, action, customer_id) VALUES ($1, 0, 'leftover', NULL)")
        .bind(b"{}".to_vec())
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_drain SET last_seq = (SELECT MAX(seq) FROM audit_outbox)")
        .execute(&raw)
        .await
        .unwrap();
    v.directory()
        .create_outlet(op.into(), "After the upgrade")
        .await
        .unwrap();
    v.audit().flush().await.unwrap();
    let actions: Vec<String> =
        sqlx::query("SELECT action FROM audit_entries WHERE idx >= $1 ORDER BY idx")
            .bind(before)
            .fetch_all(&raw)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(
        actions,
        [steward_service::OUTBOX_REFUSED, "create_outlet"],
        "the leftover is not appended again"
    );
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM audit_outbox")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    raw.close().await;
}

/// An audit entry's columns as stored: idx, leaf, occurred_at, action, customer_id, hashes.
type RawEntry = (i64, Vec<u8>, i64, String, Option<Vec<u8>>, Vec<u8>);

/// A range read gives exactly the stored columns, row for row, across the blocks SQLite's
/// grouped read uses (2,048 entries) and with entries about no customer among them.
async fn ranges_read_the_stored_columns_exactly(db: TestDb) {
    use sqlx::Row;
    let (v, op, store) = db.open().await;
    for i in 0..2_200 {
        if i % 3 == 0 {
            v.record_operator(op, "about_nobody", Some("x"))
                .await
                .unwrap();
        } else {
            let input: steward_domain::CustomerInput =
                serde_json::from_value(json!({"name": format!("Range {i}")})).unwrap();
            v.records()
                .create_customer(op.into(), &input.validate().unwrap())
                .await
                .unwrap();
        }
    }
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    assert!(size >= 2_200, "{size}");
    let raw: Vec<RawEntry> = sqlx::query(
        "SELECT idx, leaf, occurred_at, action, customer_id, hashes FROM audit_entries ORDER BY idx",
    )
    .fetch_all(&db.raw_log().await)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect();
    for (lo, hi) in [(0, size), (1, 2_049), (2_047, 2_100), (size - 3, size)] {
        let read = store.audit_entries(lo, hi).await.unwrap();
        assert_eq!(read.len() as u64, hi - lo);
        for (e, r) in read.iter().zip(&raw[lo as usize..hi as usize]) {
            assert_eq!(e.index as i64, r.0);
            assert_eq!(e.row.leaf, r.1);
            assert_eq!(e.row.occurred_at, r.2);
            assert_eq!(e.row.action, r.3);
            assert_eq!(e.row.customer_id.map(|c| c.as_bytes().to_vec()), r.4);
            assert_eq!(e.hashes, r.5);
        }
    }
    assert!(raw.iter().any(|r| r.4.is_none()) && raw.iter().any(|r| r.4.is_some()));
}

/// `steward export` is the operator's read, decided by the policy and recorded (issue 16): after
/// it, `steward audit verify` passes and the log holds an `export` entry by `operator:export`
/// about each exported customer — so each customer's access log shows it — naming every part of
/// the record and no value.
async fn the_export_is_an_entry_per_customer(db: TestDb) {
    let (v, op, store) = db.open().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let input: steward_domain::CustomerInput = serde_json::from_value(
            json!({"name": format!("Exported {n}"), "email": format!("exported{n}@example.com")}),
        )
        .unwrap();
        ids.push(
            v.records()
                .create_customer(op.into(), &input.validate().unwrap())
                .await
                .unwrap(),
        );
    }
    v.audit().flush().await.unwrap();
    let before = store.audit_size().await.unwrap();
    drop(v);
    let out = db.dir.path().join("everything.jsonl");
    let (code, o, e) = crate::support::run(&["export", "--out", out.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{o}{e}");
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    let (code, o, e) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{o}{e}");

    let (v, _, store) = db.open().await;
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    let exports: Vec<steward_domain::AuditLeaf> = store
        .audit_entries(before, size)
        .await
        .unwrap()
        .iter()
        .map(|e| steward_domain::AuditLeaf::from_bytes(&e.row.leaf).unwrap())
        .filter(|l| l.action == "export")
        .collect();
    assert_eq!(exports.len(), ids.len(), "{exports:?}");
    for id in &ids {
        let leaf = exports
            .iter()
            .find(|l| l.customer == Some(*id))
            .unwrap_or_else(|| panic!("no export entry about {id}"));
        assert_eq!(leaf.principal, "operator:export");
        assert!(leaf.categories.contains_key("email"), "{leaf:?}");
        let text = serde_json::to_string(leaf).unwrap();
        assert!(
            !text.contains("Exported ") && !text.contains("example.com"),
            "{text}"
        );
        // The customer's own access log reaches the entry.
        assert!(store.count_audit_entries(*id).await.unwrap() >= 2);
    }
}

/// An export under a policy with no `operator` permit (a replaced policy file written before it
/// existed) opens nobody, records no export of anyone, and fails rather than pass an empty file
/// for a whole one.
#[tokio::test]
async fn an_export_the_policy_refuses_fails() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    let (v, op, store) = db.open().await;
    let input: steward_domain::CustomerInput =
        serde_json::from_value(json!({"name": "Refused Export"})).unwrap();
    v.records()
        .create_customer(op.into(), &input.validate().unwrap())
        .await
        .unwrap();
    v.audit().flush().await.unwrap();
    drop(v);
    let without = steward_policy::DEFAULT_POLICIES
        .split("@id(\"operator\")")
        .next()
        .unwrap()
        .to_owned();
    assert!(!without.contains("export_customer"));
    let policy = db.dir.path().join("no-operator.cedar");
    std::fs::write(&policy, without).unwrap();
    let out = db.dir.path().join("everything.jsonl");
    let (code, o, e) = crate::support::run(
        &[
            "export",
            "--policy-file",
            policy.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("refused 1 customers"), "{e}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");
    let size = store.audit_size().await.unwrap();
    let exported = store
        .audit_entries(0, size)
        .await
        .unwrap()
        .iter()
        .map(|e| steward_domain::AuditLeaf::from_bytes(&e.row.leaf).unwrap())
        .filter(|l| l.action == "export")
        .count();
    assert_eq!(exported, 0);
}

/// The by-customer index's watermark, read under the application (on SQLite from its own file).
async fn indexed(db: &TestDb) -> i64 {
    use sqlx::Row;
    let raw = db.raw_log().await;
    let w = sqlx::query("SELECT indexed FROM audit_index_state WHERE id = 1")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    raw.close().await;
    w
}

/// An SQLite installation with an entry, its index caught up, and its vault closed: the test
/// database and the log's size.
async fn indexed_and_stopped() -> (TestDb, i64) {
    let db = crate::support::TestDb::new(crate::support::Kind::Sqlite).await;
    let (v, op, store) = db.open().await;
    v.directory()
        .create_outlet(op.into(), "Before")
        .await
        .unwrap();
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap() as i64;
    assert_eq!(indexed_to(&db, size).await, size);
    drop(v);
    drop(store);
    // The indexer starts no step once the vault is gone; one under way ends.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    (db, size)
}

/// The reads in customer `id`'s access log, as the DPO sees it, and the log.
async fn reads_in_access_log(r: &axum::Router, dpo: &str, id: &str) -> (usize, Value) {
    let (s, log) = call(
        r,
        dpo,
        "GET",
        &format!("/v1/customers/{id}/access-log"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let reads = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "read")
        .count();
    (reads, log)
}

/// `steward audit verify` passes on `db`.
fn assert_verifies(db: &TestDb) {
    let (code, out, err) = crate::support::run(&["audit", "verify"], db);
    assert_eq!(code, 0, "{out}{err}");
}

/// Waits until the index's watermark is `size` (5 s at most); the watermark last read.
async fn indexed_to(db: &TestDb, size: i64) -> i64 {
    for _ in 0..100 {
        let w = indexed(db).await;
        if w == size {
            return w;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    indexed(db).await
}

/// Nothing asks for the by-customer index, and it follows the log anyway: a task of its own
/// builds it (issue 19: in the writer's turn, every read waited for it). A customer's access log
/// reads the indexed entries and the tail alike, and `audit verify` checks the index.
async fn the_index_is_built_apart_from_the_writer(db: TestDb) {
    let (v, _, store) = db.open().await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let r = steward_api::router(v.clone());
    let id = new_customer(
        &r,
        &support,
        json!({"name": "Ida Index", "email": "ida@example.com"}),
    )
    .await;
    for _ in 0..5 {
        call(
            &r,
            &support,
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            None,
            false,
        )
        .await;
    }
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap() as i64;
    assert_eq!(
        indexed_to(&db, size).await,
        size,
        "the index caught up on its own"
    );
    let (reads, log) = reads_in_access_log(&r, &dpo, &id).await;
    assert_eq!(reads, 5, "{log}");
    drop(r);
    drop(v);
    assert_verifies(&db);
}

/// Each step of the indexer is a sorted run of its own, and every four runs of a level merge
/// into one of the next (issue 19: one B-tree keyed by customer rewrote a page per read). After
/// twenty steps the runs have merged, every entry about a customer is in the index exactly once,
/// the access log finds them all, newest first, and `audit verify` agrees.
async fn the_index_merges_its_runs(db: TestDb) {
    use sqlx::Row;
    let (v, _, store) = db.open().await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let r = steward_api::router(v.clone());
    let id = new_customer(
        &r,
        &support,
        json!({"name": "Rune Runs", "email": "rune@example.com"}),
    )
    .await;
    for _ in 0..20 {
        let (s, _) = call(
            &r,
            &support,
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            None,
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        v.audit().flush().await.unwrap();
        store.index_audit(100_000).await.unwrap();
    }
    let size = store.audit_size().await.unwrap() as i64;
    assert_eq!(indexed_to(&db, size).await, size);
    let raw = db.raw_log().await;
    let levels: Vec<(i64, i64)> = sqlx::query(
        "SELECT level, COUNT(*) FROM audit_index_runs WHERE run <> 0 GROUP BY level ORDER BY level",
    )
    .fetch_all(&raw)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert!(levels.iter().any(|(l, _)| *l >= 1), "{levels:?}");
    let runs: i64 = levels.iter().map(|(_, n)| n).sum();
    assert!(runs < 20, "twenty steps left {runs} runs: {levels:?}");
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM audit_by_customer")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    let distinct: i64 = sqlx::query(
        "SELECT COUNT(*) FROM (SELECT DISTINCT customer_id, idx FROM audit_by_customer) d",
    )
    .fetch_one(&raw)
    .await
    .unwrap()
    .get(0);
    raw.close().await;
    let about = store
        .audit_entries(0, size as u64)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.row.customer_id.is_some())
        .count() as i64;
    assert_eq!((rows, distinct), (about, about), "each entry indexed once");
    let (reads, log) = reads_in_access_log(&r, &dpo, &id).await;
    assert_eq!(reads, 20, "{log}");
    let idx: Vec<u64> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(idx.windows(2).all(|w| w[0] > w[1]), "newest first: {idx:?}");
    drop(r);
    drop(v);
    assert_verifies(&db);
}

/// An index that reaches past the log (an older log restored beside it) is reported by `audit
/// verify`, then emptied and rebuilt from the entries by the server's indexer; otherwise it would
/// hide the entries appended next.
#[tokio::test]
async fn an_index_past_the_log_is_rebuilt() {
    let (db, size) = indexed_and_stopped().await;
    let raw = db.raw_log().await;
    sqlx::query("UPDATE audit_index_state SET indexed = indexed + 1000 WHERE id = 1")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    // `audit verify` reports it (and leaves it as it found it); the server rebuilds.
    let (code, out, err) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("index claims entries past the log"), "{err}");
    assert_eq!(indexed(&db).await, size + 1000, "verify changed nothing");
    let (v, op, store) = db.open().await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let r = steward_api::router(v.clone());
    let id = new_customer(
        &r,
        &support,
        json!({"name": "Rhea Restored", "email": "rhea@example.com"}),
    )
    .await;
    call(
        &r,
        &support,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    v.directory()
        .create_outlet(op.into(), "After the restore")
        .await
        .unwrap();
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap() as i64;
    assert_eq!(
        indexed_to(&db, size).await,
        size,
        "rebuilt up to the log, not past it"
    );
    let (reads, log) = reads_in_access_log(&r, &dpo, &id).await;
    assert!(
        reads > 0,
        "the read after the restore is in the customer's access log: {log}"
    );
    drop(r);
    drop(v);
    assert_verifies(&db);
}

/// An installation from before issue 19 kept the by-customer index in the log's file: opening it
/// moves the rows and the watermark into the index's file (rather than leaving every access log
/// to scan the whole log until a rebuild) and drops them from the log.
#[tokio::test]
async fn an_index_in_the_log_file_moves_out_on_upgrade() {
    use sqlx::Row;
    let (db, size) = indexed_and_stopped().await;
    // The old layout: the tables in the log's own file (`main` of the raw pool), their
    // migration not yet applied, no index file. A row no rebuild would write marks the carry.
    let raw = db.raw_log().await;
    for sql in [
        "CREATE TABLE main.audit_by_customer (customer_id BLOB NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (customer_id, idx)) STRICT, WITHOUT ROWID",
        "CREATE TABLE main.audit_index_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed INTEGER NOT NULL) STRICT",
        "INSERT INTO main.audit_by_customer SELECT customer_id, idx FROM ix.audit_by_customer",
        "INSERT INTO main.audit_by_customer VALUES (x'00000000000000000000000000000042', 0)",
        "INSERT INTO main.audit_index_state SELECT id, indexed FROM ix.audit_index_state",
        "DELETE FROM main._sqlx_migrations WHERE version = 20261209000005",
    ] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    raw.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(
            db.dir
                .path()
                .join(format!("steward-audit-index.db{suffix}")),
        );
    }
    let (v, _, _) = db.open().await;
    let raw = db.raw_log().await;
    let carried: i64 = sqlx::query("SELECT COUNT(*) FROM ix.audit_by_customer WHERE customer_id = x'00000000000000000000000000000042'")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(carried, 1, "the old rows moved into the index's file");
    let left: i64 = sqlx::query("SELECT COUNT(*) FROM main.sqlite_master WHERE name IN ('audit_by_customer', 'audit_index_state')")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "and left the log's file");
    assert!(indexed(&db).await >= size, "the watermark came with them");
    sqlx::query(
        "DELETE FROM ix.audit_by_customer WHERE customer_id = x'00000000000000000000000000000042'",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    drop(v);
    assert_verifies(&db);
}
