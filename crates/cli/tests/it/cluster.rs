//! Several `steward serve` processes on one PostgreSQL database as one installation (issue 24):
//! what one changes, every other honours within a second; readiness for a load balancer.

use std::time::{Duration, Instant};

use crate::support::{Kind, Server, TestDb, run, token_in};

/// A token of `role` made by the CLI: (secret, id).
pub(crate) fn token(db: &TestDb, role: &str) -> (String, String) {
    let (code, out, err) = run(
        &["token", "create", "--name", role, "--role", role, "--init"],
        db,
    );
    assert_eq!(code, 0, "{err}");
    let id = err
        .split("Created token ")
        .nth(1)
        .and_then(|r| r.split('.').next())
        .expect("the token's id")
        .to_owned();
    (token_in(&out), id)
}

/// Polls `check` until it holds or `within` has passed since `from`; how long it took.
fn within(from: Instant, within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    loop {
        if check() {
            return Some(from.elapsed());
        }
        if from.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_or_a_new_purpose_reaches_every_node_within_a_second() {
    let db = TestDb::new(Kind::Postgres).await;
    let (admin, _) = token(&db, "admin");
    let (support, support_id) = token(&db, "support_agent");
    let (dpo, _) = token(&db, "dpo");
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&db, &[], &[])).collect();
    for n in &nodes {
        let (s, body) = n.http("GET", "/readyz", None, None);
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("\"peers\":\"hearing\""), "{body}");
        // Verified and cached on every node: for 30 seconds no node would look at its row.
        assert_eq!(n.http("GET", "/v1/purposes", Some(&support), None).0, 200);
    }

    // Revoked on the first node through the API.
    let (s, body) = nodes[0].http(
        "DELETE",
        &format!("/v1/tokens/{support_id}"),
        Some(&admin),
        None,
    );
    assert!(s == 204 || s == 200, "{s} {body}");
    let revoked = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        let took = within(revoked, Duration::from_secs(1), || {
            n.http("GET", "/v1/purposes", Some(&support), None).0 == 401
        });
        assert!(
            took.is_some(),
            "node {i} still served a revoked token after a second"
        );
    }

    // Revoked by another process altogether (the CLI), while every node has the token cached.
    let (other, other_id) = token(&db, "support_agent");
    for n in &nodes {
        assert_eq!(n.http("GET", "/v1/purposes", Some(&other), None).0, 200);
    }
    let (code, _, err) = run(&["token", "revoke", &other_id], &db);
    assert_eq!(code, 0, "{err}");
    let revoked = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        let took = within(revoked, Duration::from_secs(1), || {
            n.http("GET", "/v1/purposes", Some(&other), None).0 == 401
        });
        assert!(
            took.is_some(),
            "node {i} still served a token the CLI revoked"
        );
    }

    // A database login that can NOTIFY cannot speak for a server: unsigned word is ignored.
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        // Well formed, with a MAC of the right length that is not this installation's.
        sqlx::query("SELECT pg_notify('steward_changes', 'brake:00000000000000000000000000000000:9223372036854775807 00000000000000000000000000000000')")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let ignored = within(Instant::now(), Duration::from_secs(2), || {
        nodes.iter().all(|n| {
            std::fs::read_to_string(&n.stderr)
                .unwrap_or_default()
                .contains("without this installation's MAC")
        })
    });
    assert!(
        ignored.is_some(),
        "a forged announcement was not refused by every node"
    );

    // A purpose registered on the second node is offered by the others within a second.
    let purpose = serde_json::json!({
        "key": "cluster_newsletter",
        "lawful_basis": "consent",
        "data_use": "marketing.communications.email",
        "categories": ["user.contact.email"],
        "retention_days": 365,
        "notice_text": "With your consent we send a monthly newsletter.",
        "roles": ["marketing"],
    });
    let (s, body) = nodes[1].json("POST", "/v1/purposes", Some(&dpo), Some(&purpose));
    assert_eq!(s, 201, "{body}");
    let registered = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        let took = within(registered, Duration::from_secs(1), || {
            n.http("GET", "/v1/purposes", Some(&dpo), None)
                .1
                .contains("cluster_newsletter")
        });
        assert!(
            took.is_some(),
            "node {i} did not know the new purpose after a second"
        );
    }
    for n in nodes {
        n.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_when_the_database_is_gone_and_when_it_is_back() {
    let db = TestDb::new(Kind::Postgres).await;
    let node = Server::start(&db, &[], &[]);
    let (s, body) = node.http("GET", "/readyz", None, None);
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"status\":\"ready\""), "{body}");

    // The database refuses this installation's connections and ends the ones it has.
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = crate::support::pg_admin_url();
    let sql = |q: String| {
        let admin = admin.clone();
        async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(q))
                .execute(&mut c)
                .await
                .unwrap();
        }
    };
    sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    sql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let down = within(Instant::now(), Duration::from_secs(10), || {
        node.http("GET", "/readyz", None, None).0 == 503
    });
    assert!(down.is_some(), "still ready without a database");
    let (s, body) = node.http("GET", "/readyz", None, None);
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("/problems/not-ready"), "{body}");
    assert!(body.contains("database"), "{body}");
    // Liveness is another matter: the process is alive.
    assert_eq!(node.http("GET", "/healthz", None, None).0, 200);

    sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let back = within(Instant::now(), Duration::from_secs(15), || {
        node.http("GET", "/readyz", None, None).0 == 200
    });
    assert!(back.is_some(), "not ready again once the database is back");
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_on_sqlite_is_ready_and_hearing() {
    let db = TestDb::new(Kind::Sqlite).await;
    let node = Server::start(&db, &[], &[]);
    let (s, body) = node.http("GET", "/readyz", None, None);
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"audit_log\":\"ok\""), "{body}");
    assert!(body.contains("\"peers\":\"hearing\""), "{body}");
    node.stop();
}

/// Whether server `s` said it holds the checkpoint signer's lease.
fn signs(s: &Server) -> bool {
    std::fs::read_to_string(&s.stderr)
        .unwrap_or_default()
        .contains("signs the audit log's checkpoints")
}

const UNLIMITED: &[&str] = &[
    "--rate-limit",
    "default=1000000/1000000",
    "--bulk-limit",
    "support_agent=none",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_killed_under_load_is_replaced_and_nothing_acknowledged_is_lost() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let db = TestDb::new(Kind::Postgres).await;
    let (support, _) = token(&db, "support_agent");
    let mut nodes: Vec<Option<Arc<Server>>> = (0..3)
        .map(|_| Some(Arc::new(Server::start(&db, UNLIMITED, &[]))))
        .collect();
    let holder = within(Instant::now(), Duration::from_secs(10), || {
        nodes.iter().flatten().any(|n| signs(n))
    });
    assert!(holder.is_some(), "no node took the signer's lease");
    let signer = nodes
        .iter()
        .position(|n| n.as_ref().is_some_and(|n| signs(n)))
        .unwrap();
    assert_eq!(
        nodes.iter().flatten().filter(|n| signs(n)).count(),
        1,
        "one signer at a time"
    );

    // Mixed load on every node: creations (acknowledged ones are kept) and reads of them.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (i, n) in nodes.iter().flatten().enumerate() {
        for t in 0..2 {
            let (n, support, acked, stop) =
                (n.clone(), support.clone(), acked.clone(), stop.clone());
            clients.push(std::thread::spawn(move || {
                for k in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let name = format!("Node{i} Client{t} No{k}");
                    let body = serde_json::json!({"name": name, "email": format!("n{i}.c{t}.{k}@example.org")});
                    // The killed node's clients see their connections refused: not acknowledged.
                    let Ok((s, v)) = std::panic::catch_unwind(|| {
                        n.json("POST", "/v1/customers", Some(&support), Some(&body))
                    }) else {
                        return;
                    };
                    if s == 201 {
                        let id = v["id"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().push((id.clone(), name));
                        let _ = std::panic::catch_unwind(|| {
                            n.http("GET", &format!("/v1/customers/{id}?purpose=service"), Some(&support), None)
                        });
                    }
                }
            }));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let killed = nodes[signer].take().unwrap();
    let before_kill = acked.lock().unwrap().len();
    let killed_at = Instant::now();
    // kill -9: no shutdown, no drain, the lease's connection cut by the kernel.
    let status = std::process::Command::new("kill")
        .args(["-KILL", &killed.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let taken = within(killed_at, Duration::from_secs(5), || {
        nodes.iter().flatten().any(|n| signs(n))
    });
    assert!(
        taken.is_some(),
        "no node took over signing within 5 s of the kill"
    );
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before_kill,
        "the survivors kept acknowledging writes"
    );

    // The new signer covers the whole log, entries the killed node left in the outbox included.
    let survivor = nodes.iter().flatten().next().unwrap().clone();
    for (id, name) in &acked {
        let (s, c) = survivor.json(
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            Some(&support),
            None,
        );
        assert_eq!((s, &c["name"]), (200, &serde_json::json!(name)), "{id}");
    }
    let log = db.raw_log().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let covered = loop {
        let size: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries")
            .fetch_one(&log)
            .await
            .unwrap();
        let signed: Option<i64> = sqlx::query_scalar("SELECT MAX(size) FROM audit_checkpoints")
            .fetch_one(&log)
            .await
            .unwrap();
        if signed.unwrap_or(0) >= size {
            break Some(());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(covered.is_some(), "the new signer did not cover the log");
    drop(survivor);
    for n in nodes.into_iter().flatten() {
        Arc::into_inner(n).unwrap().stop();
    }
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_for_the_installation_not_per_node() {
    let db = TestDb::new(Kind::Postgres).await;
    let (support, _) = token(&db, "support_agent");
    let (sales, _) = token(&db, "sales_associate");
    let args = [
        "--rate-limit",
        "support_agent=10/10",
        "--bulk-limit",
        "sales_associate=12",
    ];
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&db, &args, &[])).collect();

    // A token's rate: requests spread over three nodes as fast as they go, for four seconds.
    // The installation allows its burst plus its rate over the time taken, not three times it.
    let started = Instant::now();
    let (mut ok, mut limited, mut i) = (0u32, 0u32, 0usize);
    let mut last_ok = started;
    while started.elapsed() < Duration::from_secs(4) {
        match nodes[i % 3]
            .http("GET", "/v1/purposes", Some(&support), None)
            .0
        {
            200 => {
                ok += 1;
                last_ok = Instant::now();
            }
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
        i += 1;
    }
    let allowed = 10.0 + 10.0 * last_ok.duration_since(started).as_secs_f64();
    assert!(limited > 0, "nothing was limited");
    assert!(
        (f64::from(ok) - allowed).abs() <= allowed * 0.1,
        "{ok} requests passed; the installation allows {allowed:.0} (±10 %)"
    );

    // The bulk-access guard: a sales associate reading distinct customers through every node
    // is refused after the role's 12 for the installation, not 36.
    let (admin, _) = token(&db, "store_manager");
    let mut ids = Vec::new();
    for k in 0..20 {
        let body = serde_json::json!({"name": format!("Bulk {k}")});
        let (s, v) = nodes[0].json("POST", "/v1/customers", Some(&admin), Some(&body));
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let mut read = 0;
    for (k, id) in ids.iter().enumerate() {
        let (s, body) = nodes[k % 3].http(
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            Some(&sales),
            None,
        );
        match s {
            200 => read += 1,
            429 => break,
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!(read, 12, "distinct customers read before the guard refused");
    for (i, n) in nodes.iter().enumerate() {
        // A customer the node saw before is refused once it hears of the refusal.
        let refused = within(Instant::now(), Duration::from_secs(1), || {
            n.http(
                "GET",
                &format!("/v1/customers/{}?purpose=service", ids[0]),
                Some(&sales),
                None,
            )
            .0 == 429
        });
        assert!(
            refused.is_some(),
            "node {i} still serves the reader after a second"
        );
    }
    // Last: the address braked, nothing more gets through from it.
    // Bad tokens from one address, spread over the nodes: braked after ten, not thirty.
    let mut refused_after = None;
    for k in 0..30 {
        let bad = format!(
            "stw_{}_nottherealsecretatall",
            uuid::Uuid::now_v7().simple()
        );
        match nodes[k % 3].http("GET", "/v1/purposes", Some(&bad), None).0 {
            401 => {}
            429 => {
                refused_after = Some(k);
                break;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(
        refused_after,
        Some(10),
        "the brake held for the installation"
    );
    for n in &nodes {
        assert_eq!(
            n.http("GET", "/v1/purposes", Some("stw_x_y"), None).0,
            429,
            "every node brakes the address"
        );
    }

    for n in nodes {
        n.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_https_with_the_certificate_it_is_given() {
    let db = TestDb::new(Kind::Sqlite).await;
    let (support, _) = token(&db, "support_agent");
    // A private CA and a server certificate it signs for 127.0.0.1, by Debian's openssl.
    let p = |f: &str| db.dir.path().join(f).display().to_string();
    let (cert, key, ca) = (
        db.dir.path().join("tls.crt"),
        db.dir.path().join("tls.key"),
        p("ca.crt"),
    );
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-subj",
                "/CN=Test CA",
                "-days",
                "1",
                "-keyout",
                &p("ca.key"),
                "-out",
                &ca,
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                &p("tls.csr"),
            ],
        ]
        .concat(),
    );
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("tls.csr"),
        "-CA",
        &ca,
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        cert.to_str().unwrap(),
    ]);
    let node = Server::start(
        &db,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        node.stdout_text()
            .contains(&format!("listening on https://{}", node.addr))
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let res = client
        .get(format!("https://{}/v1/purposes", node.addr))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ready = client
        .get(format!("https://{}/readyz", node.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // Plain HTTP on the TLS port gets no answer: the token never crosses in clear.
    let (s, _) = node.http("GET", "/healthz", None, None);
    assert_eq!(s, 0, "plain HTTP was answered");
    node.stop();

    // A key that does not match the certificate: refused at start, naming the files only.
    let other = db.dir.path().join("other.key");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-out", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, _, err) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            other.to_str().unwrap(),
        ],
        &db,
    );
    assert_ne!(code, 0);
    assert!(err.contains("do not make a usable pair"), "{err}");
    assert!(!err.contains("BEGIN"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guesses_sent_to_every_node_at_once_meet_one_allowance() {
    let db = TestDb::new(Kind::Postgres).await;
    let _ = token(&db, "admin");
    let nodes: Vec<std::sync::Arc<Server>> = (0..3)
        .map(|_| std::sync::Arc::new(Server::start(&db, &[], &[])))
        .collect();
    // Three clients from one address, one per node, guessing at the same time.
    let guessers: Vec<_> = nodes
        .iter()
        .map(|n| {
            let n = n.clone();
            std::thread::spawn(move || {
                let body = serde_json::json!({"login": "nobody", "password": "not-the-password"});
                (0..10)
                    .map(|_| n.http("POST", "/v1/sessions", None, Some(&body)).0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let answers: Vec<u16> = guessers
        .into_iter()
        .flat_map(|g| g.join().unwrap())
        .collect();
    let checked = answers.iter().filter(|s| **s == 401).count();
    assert!(
        answers.iter().all(|s| *s == 401 || *s == 429),
        "{answers:?}"
    );
    // The allowance is ten a minute for the installation; each node alone would allow ten.
    assert_eq!(checked, 10, "guesses checked out of 30 ({answers:?})");
    for n in nodes {
        std::sync::Arc::into_inner(n).unwrap().stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_consent_or_an_erasure_holds_on_every_node_at_once() {
    let db = TestDb::new(Kind::Postgres).await;
    let (support, _) = token(&db, "support_agent");
    let (marketing, _) = token(&db, "marketing");
    let (dpo, _) = token(&db, "dpo");
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&db, &[], &[])).collect();
    let (s, v) = nodes[0].json(
        "POST",
        "/v1/customers",
        Some(&support),
        Some(&crate::support::customer_json(
            "Consenting Carla",
            "carla.cluster@example.org",
            "+44 20 7946 0999",
            "9 Consent Road",
        )),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let consent = |action: &str| serde_json::json!({"purpose": "marketing_email", "action": action, "source": "in_store"});
    let (s, v) = nodes[0].json(
        "POST",
        &format!("/v1/customers/{id}/consents"),
        Some(&support),
        Some(&consent("grant")),
    );
    assert_eq!(s, 201, "{v}");
    let read = |n: &Server, token: &str, purpose: &str| {
        n.http(
            "GET",
            &format!("/v1/customers/{id}?purpose={purpose}"),
            Some(token),
            None,
        )
        .0
    };
    for n in &nodes {
        assert_eq!(read(n, &marketing, "marketing_email"), 200);
    }

    // Withdrawn through one node: no node serves the consent-based purpose from then on.
    let (s, v) = nodes[1].json(
        "POST",
        &format!("/v1/customers/{id}/consents"),
        Some(&marketing),
        Some(&consent("withdraw")),
    );
    assert_eq!(s, 201, "{v}");
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(
            read(n, &marketing, "marketing_email"),
            403,
            "node {i} served a purpose whose consent was withdrawn"
        );
    }

    // Erased through another: gone everywhere at once.
    let (s, v) = nodes[2].json("DELETE", &format!("/v1/customers/{id}"), Some(&dpo), None);
    assert_eq!(s, 200, "{v}");
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(
            read(n, &support, "service"),
            404,
            "node {i} served an erased customer"
        );
    }
    for n in nodes {
        n.stop();
    }
}
