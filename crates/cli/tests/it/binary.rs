//! The real binary: tokens, import, serve, export and key rotation, on both backends; the
//! README's quick start (`serve --demo`) on SQLite.

use std::collections::HashSet;

use serde_json::json;

use crate::support::{Server, TestDb, backend_tests, run, token_after, token_in};

backend_tests!(
    cli_round_trip,
    a_missing_or_wrong_key_is_reported_not_replaced
);

const CSV: &str = "First Name,Last Name,Email,Phone,Street,City,Postal Code,Country,Lead Source\n\
Olive,Importer,Olive.Importer@Example.com,+44 20 7946 0301,3 Csv Lane,Leeds,LS1 1AA,GB,web\n\
Percy,Importer,percy@example.com,+44 20 7946 0302,,,,,\n\
Quill,Broken,not-an-address,,,,,,\n\
Rosa,Importer,rosa@example.com,0044 20 7946 0304,,York,,,\n";

async fn cli_round_trip(db: TestDb) {
    let (code, _, err) = run(
        &["token", "create", "--name", "ops", "--role", "overlord"],
        &db,
    );
    assert_ne!(code, 0);
    assert!(err.contains("--role"), "{err}");
    let (code, out, err) = run(
        &[
            "token",
            "create",
            "--name",
            "ops",
            "--role",
            "support_agent",
            // The first command makes the installation: on purpose.
            "--init",
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let token = token_in(&out);

    let csv = db.dir.path().join("customers.csv");
    std::fs::write(&csv, CSV).unwrap();
    let csv = csv.display().to_string();
    let (code, _, err) = run(&["import", &csv, "--quiet"], &db);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 4: email"), "{err}");
    assert!(
        !err.contains("not-an-address") && !err.contains("Quill"),
        "import errors must not echo values: {err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        err.contains("Lead Source"),
        "ignored columns are named: {err}"
    );

    let server = Server::start(&db, &[], &[]);
    let (s, page) = server.json("GET", "/v1/customers?purpose=service", Some(&token), None);
    assert_eq!(s, 200);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "a refused import stored rows"
    );
    server.stop();

    let (code, _, err) = run(&["import", &csv, "--skip-invalid", "--quiet"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Imported 3 customers"), "{err}");

    let server = Server::start(&db, &[], &[]);
    let (_, page) = server.json("GET", "/v1/customers?purpose=service", Some(&token), None);
    let names: HashSet<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        HashSet::from([
            "Olive Importer".to_owned(),
            "Percy Importer".to_owned(),
            "Rosa Importer".to_owned()
        ])
    );
    let (s, found) = server.json(
        "POST",
        "/v1/customers/lookup?purpose=service",
        Some(&token),
        Some(&json!({"email": "olive.importer@example.com"})),
    );
    assert_eq!(s, 200);
    assert_eq!(found["items"][0]["address"]["city"], "Leeds");
    let (s, _) = server.json(
        "GET",
        "/v1/customers?purpose=service",
        Some("stw_bad"),
        None,
    );
    assert_eq!(s, 401);
    server.stop();

    let export = |name: &str| {
        let out = db.dir.path().join(name);
        let (code, _, err) = run(&["export", "--out", &out.display().to_string()], &db);
        assert_eq!(code, 0, "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        lines.sort_by_key(|l| l["customer"]["id"].as_str().unwrap().to_owned());
        lines
    };
    let before = export("before.jsonl");
    assert_eq!(before.len(), 3);
    assert!(
        before
            .iter()
            .any(|l| l["customer"]["email"] == "rosa@example.com"
                && l["customer"]["phone"] == "+442079460304")
    );

    let old_key = std::fs::read(db.key_file()).unwrap();
    let (code, _, err) = run(&["keys", "rotate"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Rotated"), "{err}");
    assert_ne!(std::fs::read(db.key_file()).unwrap(), old_key);
    assert_eq!(
        export("after.jsonl"),
        before,
        "data reads the same under the new master key"
    );

    // The old key no longer opens anything.
    std::fs::write(db.key_file(), &old_key).unwrap();
    let (code, _, err) = run(
        &[
            "export",
            "--out",
            &db.dir.path().join("x.jsonl").display().to_string(),
        ],
        &db,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("not the one this database was sealed with"),
        "{err}"
    );
}

#[test]
fn demo_quick_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::new(crate::support::Kind::Sqlite));
    // Reading back all 1,200 demo customers is bulk access for a support agent: lifted here, as
    // only explicit configuration can.
    let server = Server::start(&db, &["--demo", "--bulk-limit", "support_agent=none"], &[]);
    let out = server.stdout_text();
    assert!(out.contains(&format!("http://{}", server.addr)), "{out}");
    let token = token_after(&out, "Support-agent token");

    let (mut customers, mut cursor) = (Vec::new(), String::new());
    loop {
        let (s, page) = server.json(
            "GET",
            &format!("/v1/customers?purpose=service&limit=500&cursor={cursor}"),
            Some(&token),
            None,
        );
        assert_eq!(s, 200, "{page}");
        customers.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert!(
        customers.len() >= 1000,
        "{} demo customers",
        customers.len()
    );
    let (mut outlets, mut channels) = (HashSet::new(), HashSet::new());
    for id in customers.iter().take(60) {
        let (_, p) = server.json(
            "GET",
            &format!("/v1/customers/{id}/purchases?purpose=service"),
            Some(&token),
            None,
        );
        outlets.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["outlet_id"].as_str().unwrap().to_owned()),
        );
        let (_, i) = server.json(
            "GET",
            &format!("/v1/customers/{id}/interactions?purpose=service"),
            Some(&token),
            None,
        );
        channels.extend(
            i["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["channel"].as_str().unwrap().to_owned()),
        );
    }
    assert!(outlets.len() >= 3, "{outlets:?}");
    assert!(channels.len() >= 3, "{channels:?}");
    server.stop();

    // Restarting with --demo does not load the data twice, and prints a fresh token.
    let again = Server::start(&db, &["--demo"], &[]);
    let token2 = token_after(&again.stdout_text(), "Support-agent token");
    assert_ne!(token, token2);
    let (_, first) = again.json(
        "GET",
        "/v1/customers?purpose=service&limit=1",
        Some(&token2),
        None,
    );
    assert_eq!(
        first["items"][0]["id"].as_str(),
        Some(customers[0].as_str())
    );

    // A console login for every role, printed as `demo login ROLE: LOGIN / PASSWORD`; a restart
    // makes new passwords for the same staff members (none made twice).
    let logins = |text: &str| -> Vec<(String, String, String)> {
        text.lines()
            .filter_map(|l| l.strip_prefix("demo login "))
            .filter_map(|l| {
                let (role, rest) = l.split_once(": ")?;
                let (login, password) = rest.split_once(" / ")?;
                Some((role.to_owned(), login.to_owned(), password.to_owned()))
            })
            .collect()
    };
    let (before, after) = (logins(&out), logins(&again.stdout_text()));
    let roles: Vec<&str> = after.iter().map(|(r, _, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        steward_domain::Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
    );
    let dpo = |set: &[(String, String, String)]| {
        set.iter().find(|(r, _, _)| r == "dpo").cloned().unwrap()
    };
    let (old, new) = (dpo(&before), dpo(&after));
    assert_eq!(old.1, new.1);
    assert_ne!(old.2, new.2);
    let (s, session) = again.json(
        "POST",
        "/v1/sessions",
        None,
        Some(&serde_json::json!({"login": new.1, "password": new.2})),
    );
    assert_eq!(s, 201, "{session}");
    assert_eq!(session["roles"][0], "dpo");
    let (s, _) = again.json(
        "POST",
        "/v1/sessions",
        None,
        Some(&serde_json::json!({"login": old.1, "password": old.2})),
    );
    assert_eq!(s, 401);
    let admin = token_after(&again.stdout_text(), "One-time admin token");
    let (_, staff) = again.json("GET", "/v1/staff", Some(&admin), None);
    let demo_dpos = staff
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "Demo dpo")
        .count();
    assert_eq!(demo_dpos, 1, "{staff}");
    drop(rt);
}

async fn a_missing_or_wrong_key_is_reported_not_replaced(db: TestDb) {
    // Without --init, nothing is made: a mistyped data directory is no new installation.
    let (code, _, err) = run(
        &["token", "create", "--name", "first", "--role", "dpo"],
        &db,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--init"), "{err}");
    assert!(!db.key_file().exists());
    let (code, _, err) = run(
        &[
            "token", "create", "--name", "first", "--role", "dpo", "--init",
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("generated a new master key"), "{err}");
    let key = std::fs::read(db.key_file()).unwrap();

    std::fs::remove_file(db.key_file()).unwrap();
    let (code, _, err) = run(
        &["token", "create", "--name", "second", "--role", "dpo"],
        &db,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("no master key at") && err.contains("sealed under master key mk_"),
        "{err}"
    );
    assert!(
        !db.key_file().exists(),
        "a key was minted for a database that has one"
    );

    std::fs::write(db.key_file(), &key).unwrap();
    let (code, out, err) = run(
        &["token", "create", "--name", "third", "--role", "dpo"],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    // The scheme name is case-insensitive.
    let server = Server::start(&db, &[], &[]);
    let (s, _) = server.http("GET", "/v1/purposes", None, None);
    assert_eq!(s, 401);
    let (s, _) = server.raw_auth("GET", "/v1/purposes", &format!("bearer {}", token_in(&out)));
    assert_eq!(s, 200);
    server.stop();
}

#[test]
fn policy_check_and_explain() {
    let bin = || crate::support::steward();
    let ok = bin().args(["policy", "check"]).output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.cedar");
    std::fs::write(&bad, "permit (principal, action == Steward::Action::\"read_name\", resource) when { resource.shoe_size > 1 };").unwrap();
    let out = bin().args(["policy", "check"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid"));
    // A server refuses to start on a policy that does not validate.
    let out = bin()
        .args([
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "dpo",
            "--data-dir",
        ])
        .arg(dir.path())
        .arg("--policy-file")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());

    let explain = |args: &[&str]| {
        String::from_utf8_lossy(
            &bin()
                .args(["policy", "explain"])
                .args(args)
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let other = explain(&["--role", "sales_associate", "--purpose", "service"]);
    assert!(
        other
            .lines()
            .any(|l| l.starts_with("purchases") && l.contains("abstract")),
        "{other}"
    );
    let own = explain(&[
        "--role",
        "sales_associate",
        "--purpose",
        "service",
        "--own-outlet",
    ]);
    assert!(
        own.lines()
            .any(|l| l.starts_with("purchases") && l.contains("show")),
        "{own}"
    );
    let no_consent = explain(&["--role", "marketing", "--purpose", "marketing_email"]);
    assert!(
        no_consent.lines().any(|l| l.starts_with("email")
            && l.contains("withhold")
            && l.contains("consent-required")),
        "{no_consent}"
    );
}

/// `serve --time-zone`: an IANA zone the pages show times in; an unknown one stops the server
/// before anything is opened (nothing is created in the data directory).
#[test]
fn an_unknown_time_zone_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::steward()
        .args(["serve", "--time-zone", "Mars/Olympus_Mons", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--time-zone") && err.contains("Mars/Olympus_Mons"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a key or database was created"
    );
}

/// A client that opens many connections at once sends its token on each: one Argon2
/// verification serves them all (issue 19: each ran its own, and on two cores the server's first
/// second stalled every request for a quarter of a second). Counted by the server's own metric.
#[test]
fn many_first_requests_verify_a_token_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::new(crate::support::Kind::Sqlite));
    let v = rt.block_on(db.vault());
    let support = rt.block_on(crate::access::token(
        &v,
        steward_service::TokenOwner::Role(steward_domain::Role::SupportAgent),
    ));
    drop(v);
    let server = Server::start(&db, &["--metrics-listen", "127.0.0.1:0"], &[]);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                let (status, body) = server.http(
                    "GET",
                    "/v1/customers?purpose=service&limit=1",
                    Some(&support),
                    None,
                );
                assert_eq!(status, 200, "{body}");
            });
        }
    });
    let out = server.stdout_text();
    let at = out
        .lines()
        .find_map(|l| l.strip_prefix("Metrics (no token) on http://"))
        .unwrap_or_else(|| panic!("no metrics address in {out}"))
        .to_owned();
    let metrics = ureq_get(&format!("http://{at}"));
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("steward_token_verifications_total "))
        .unwrap_or_else(|| panic!("no verification counter in {metrics}"));
    assert_eq!(count.trim(), "1", "{metrics}");
}

/// The body of a plain GET to `url` (`http://host:port/path`).
fn ureq_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut c = std::net::TcpStream::connect(host).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    answer
}
