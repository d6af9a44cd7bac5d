//! Abuse limits through `steward serve`: per-token rates (429 with Retry-After), the brake on
//! bad tokens per client address, caps on request heads, page size, and slow clients cut off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Kind, Server, TestDb, run, token_in};

/// Sends raw bytes, returns the whole response (the server closes: `Connection: close`).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: &str, path: &str, token: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn token(db: &TestDb, role: &str) -> String {
    let (code, out, err) = run(
        &["token", "create", "--name", role, "--role", role, "--init"],
        db,
    );
    assert_eq!(code, 0, "{err}");
    token_in(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_is_told_when_to_retry() {
    let db = TestDb::new(Kind::Sqlite).await;
    let (support, dpo) = (token(&db, "support_agent"), token(&db, "dpo"));
    let server = Server::start(&db, &["--rate-limit", "support_agent=1/2"], &[]);
    let statuses: Vec<u16> = (0..3)
        .map(|_| status(&get(&server.addr, "/v1/purposes", &support)))
        .collect();
    assert_eq!(statuses[..2], [200, 200], "the burst");
    let refused = get(&server.addr, "/v1/purposes", &support);
    assert_eq!(status(&refused), 429, "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("\r\nretry-after: 1\r\n"), "{refused}");
    assert!(refused.contains("/problems/rate-limited"), "{refused}");
    assert_eq!(
        status(&get(&server.addr, "/v1/purposes", &dpo)),
        200,
        "other tokens have their own bucket"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        status(&get(&server.addr, "/v1/purposes", &support)),
        200,
        "refilled"
    );
    let (code, _, err) = run(&["serve", "--rate-limit", "support_agent=fast"], &db);
    assert_ne!(code, 0);
    assert!(err.contains("--rate-limit support_agent=fast"), "{err}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_gets_an_address_braked() {
    let db = TestDb::new(Kind::Sqlite).await;
    let support = token(&db, "support_agent");
    let server = Server::start(&db, &[], &[]);
    for n in 0..10 {
        let r = get(
            &server.addr,
            "/v1/purposes",
            &format!("stw_guess{n}_0000000000000000"),
        );
        assert_eq!(status(&r), 401, "{r}");
    }
    let braked = get(&server.addr, "/v1/purposes", &support);
    assert_eq!(status(&braked), 429, "even a good token waits: {braked}");
    assert!(
        braked.contains("/problems/too-many-failed-sign-ins"),
        "{braked}"
    );
    assert!(
        braked.to_ascii_lowercase().contains("\r\nretry-after: "),
        "{braked}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_pages_and_slow_clients_are_bounded() {
    let db = TestDb::new(Kind::Sqlite).await;
    let support = token(&db, "support_agent");
    let server = Server::start(&db, &["--request-timeout-secs", "2"], &[]);

    // A head over 64 KiB, or with more than 64 fields, is refused before any handler runs.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    let r = exchange(&server.addr, big.as_bytes());
    assert!(
        r.is_empty() || status(&r) == 431,
        "{}",
        &r[..r.len().min(200)]
    );
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = exchange(
        &server.addr,
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    );
    assert!(
        r.is_empty() || status(&r) == 431,
        "{}",
        &r[..r.len().min(200)]
    );

    // A page is at most 500 items.
    let r = get(
        &server.addr,
        "/v1/customers?purpose=service&limit=501",
        &support,
    );
    assert_eq!(status(&r), 400, "{r}");
    assert!(r.contains("\"field\":\"limit\""), "{r}");

    // Headers sent too slowly: the connection is closed after the 10-second deadline.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "closed after {waited:?}"
    );
    assert!(out.is_empty() || status(&String::from_utf8_lossy(&out)) == 408);

    // A body sent too slowly: cut off with 408 when the request's time is up.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {support}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"name\": "
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let r = String::from_utf8_lossy(&out);
    assert_eq!(status(&r), 408, "{r}");
    assert!(r.contains("/problems/timeout"), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_portal_codes_gets_an_address_braked() {
    let db = TestDb::new(Kind::Sqlite).await;
    let mail = db.dir.path().join("mail.txt");
    let server = Server::start(&db, &["--mail-sink", mail.to_str().unwrap()], &[]);
    let body = "csrf=c0ffee&email=someone%40example.com";
    let ask = || {
        exchange(
            &server.addr,
            format!("POST /portal/code HTTP/1.1\r\nHost: t\r\nCookie: steward_portal_csrf=c0ffee\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
        )
    };
    // Each code asked for counts against the address, so nobody floods a customer's inbox.
    let statuses: Vec<u16> = (0..12).map(|_| status(&ask())).collect();
    assert_eq!(statuses[..10], [200; 10], "{statuses:?}");
    let refused = ask();
    assert_eq!(status(&refused), 429, "{refused}");
    assert!(refused.to_ascii_lowercase().contains("\r\nretry-after: "));
    assert!(
        !refused.contains("someone@example.com"),
        "the address is echoed"
    );
}
