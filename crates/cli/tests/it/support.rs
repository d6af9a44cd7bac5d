//! Test harness: real databases (a SQLite file, a fresh PostgreSQL database), real keys.

use std::path::PathBuf;

use sqlx::Connection;
use steward_service::Vault;
use tempfile::TempDir;

/// The PostgreSQL server tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("STEWARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A database and a data directory (for the master key) that vanish with the value.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    pub dir: TempDir,
    pg_name: Option<String>,
    /// The server the database was made on (where it is dropped from).
    admin: String,
}

impl TestDb {
    pub async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("steward.db").display());
                TestDb {
                    kind,
                    url,
                    dir,
                    pg_name: None,
                    admin: String::new(),
                }
            }
            Kind::Postgres => Self::on_server(&pg_admin_url()).await,
        }
    }

    /// A fresh database on the PostgreSQL server at `admin` (a URL naming a database user
    /// `postgres` may connect to), dropped with the value.
    pub async fn on_server(admin: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = admin.to_owned();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}).\n\
                 Start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                 or point STEWARD_TEST_PG_URL at a server where user postgres may create databases."
            )
        });
        let name = format!("steward_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("STEWARD_TEST_PG_URL must end in /<database>"),
        };
        TestDb {
            kind: Kind::Postgres,
            url,
            dir,
            pg_name: Some(name),
            admin,
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    /// Opens the vault as `steward serve` would (creating the key on first use).
    pub async fn vault(&self) -> Vault {
        self.open().await.0
    }

    /// [`TestDb::vault`] with the operator's capability that opening hands out, and the store
    /// beneath (for tests that look under the services, as an attacker with the database would).
    pub async fn open(&self) -> (Vault, steward_service::Operator, steward_store::DynStore) {
        let (ring, _) =
            steward_service::keys::load_keyring(&self.key_file(), true).expect("keyring");
        let store = steward_store::open(&self.url).await.expect("open store");
        let policy = std::sync::Arc::new(steward_policy::Policy::default_policy().expect("policy"));
        let (signer, _, _) = steward_crypto::NoteSigner::load_or_create(
            &self.dir.path().join("audit-signing.key"),
            "steward/audit",
        )
        .expect("audit key");
        let (v, operator) = Vault::open(store.clone(), ring, policy, signer)
            .await
            .expect("open vault");
        // Where the binary keeps it by default: beside the master key.
        v.erasures()
            .use_journal(self.dir.path().join("erasures.journal"));
        let operator = operator.acting("test");
        let _ = OPERATOR.set(operator);
        (v, operator, store)
    }

    /// A raw connection pool, to reach under the application as an attacker with the database would.
    pub async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url).await.expect("raw pool")
    }

    /// A raw pool to where decision records are kept: on SQLite a file of its own, with the
    /// by-customer index's file attached (so its tables answer to their plain names too).
    pub async fn raw_log(&self) -> sqlx::AnyPool {
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        let (url, index) = match self.kind {
            Kind::Sqlite => (
                format!(
                    "sqlite://{}",
                    self.dir.path().join("steward-audit.db").display()
                ),
                Some(
                    self.dir
                        .path()
                        .join("steward-audit-index.db")
                        .display()
                        .to_string(),
                ),
            ),
            Kind::Postgres => (self.url.clone(), None),
        };
        sqlx::any::AnyPoolOptions::new()
            .after_connect(move |conn, _| {
                let index = index.clone();
                Box::pin(async move {
                    if let Some(index) = index {
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "ATTACH DATABASE '{index}' AS ix"
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .expect("raw log pool")
    }

    /// Arguments that point the binary at this database.
    pub fn cli_args(&self) -> Vec<String> {
        let mut v = vec![
            "--data-dir".to_owned(),
            self.dir.path().display().to_string(),
        ];
        if self.kind == Kind::Postgres {
            v.extend(["--database-url".to_owned(), self.url.clone()]);
        }
        v
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs inside the test's runtime; use a thread with its own to clean up.
            let admin = self.admin.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut c)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs an async scenario `fn name(db: TestDb)` once on SQLite and once on PostgreSQL.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::support::TestDb::new(crate::support::Kind::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::support::TestDb::new(crate::support::Kind::Postgres).await).await
            }
        }
    )*};
}
pub(crate) use backend_tests;

/// A customer input with every field, from distinctive values.
pub fn customer_json(name: &str, email: &str, phone: &str, street: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "email": email, "phone": phone, "address": {"street": street, "city": "Testville", "postal_code": "T1 1TT", "country": "GB"}})
}

/// The `steward` binary under test.
pub fn steward() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    for (k, _) in std::env::vars() {
        if k.starts_with("STEWARD_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

/// Runs the binary to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], db: &TestDb) -> (i32, String, String) {
    let out = steward()
        .args(args)
        .args(db.cli_args())
        .output()
        .expect("run steward");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary with `input` on its standard input: (exit code, stdout, stderr).
pub fn run_with_stdin(args: &[&str], db: &TestDb, input: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = steward()
        .args(args)
        .args(db.cli_args())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run steward");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for steward");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `steward serve`, with its output captured to files.
pub struct Server {
    child: std::process::Child,
    pub addr: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Server {
    pub fn start(db: &TestDb, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_in(db, db.dir.path(), extra, env)
    }

    /// [`Server::start`] with a data directory of its own (another node's: its key files must
    /// be copies of the installation's).
    pub fn start_in(
        db: &TestDb,
        data_dir: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let n = uuid::Uuid::now_v7().simple().to_string();
        let logs = db.dir.path().join(format!("logs-{n}"));
        std::fs::create_dir_all(&logs).unwrap();
        let (stdout, stderr) = (logs.join("stdout"), logs.join("stderr"));
        let mut args = db.cli_args();
        args[1] = data_dir.display().to_string();
        let child = steward()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn steward serve");
        let mut server = Server {
            child,
            addr: String::new(),
            stdout,
            stderr,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let out = std::fs::read_to_string(&server.stdout).unwrap_or_default();
            if let Some(rest) = out
                .split("listening on http://")
                .nth(1)
                .or_else(|| out.split("listening on https://").nth(1))
            {
                server.addr = rest.lines().next().unwrap().trim().to_owned();
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "steward serve exited with {status}: {}",
                    std::fs::read_to_string(&server.stderr).unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "steward serve did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// A request with a literal `Authorization` header value.
    pub fn raw_auth(&self, method: &str, path: &str, authorization: &str) -> (u16, String) {
        self.request(method, path, Some(authorization), None)
    }

    /// One HTTP/1.1 request with an optional bearer token: (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, String) {
        self.request(
            method,
            path,
            token.map(|t| format!("Bearer {t}")).as_deref(),
            body,
        )
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(a) = authorization {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).unwrap();
        let mut res = String::new();
        s.read_to_string(&mut res).unwrap();
        let status = res
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let (head, body) = res.split_once("\r\n\r\n").unwrap_or((&res, ""));
        // Bodies may be chunked; de-chunk the simple way.
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    pub fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let (s, b) = self.http(method, path, token, body);
        (
            s,
            serde_json::from_str(&b).unwrap_or(serde_json::Value::String(b)),
        )
    }

    /// Stops the server with SIGTERM (graceful) and waits for it.
    /// Kills the server with SIGKILL: no shutdown, no flush, mid-request.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) -> (String, String) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        (
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The token printed on the line that starts with `label`.
pub fn token_after(text: &str, label: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line starting with {label:?} in {text}"));
    token_in(line)
}

/// The first API token printed on stdout.
pub fn token_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("stw_"))
        .expect("a token in the output")
        .trim_end_matches('\'')
        .to_owned()
}

/// One request through the router in process: (status, content type, body bytes). `headers`
/// are added as given.
pub async fn oneshot_raw(
    router: &axum::Router,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<String>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
) -> (axum::http::StatusCode, String, Vec<u8>) {
    use axum::http::header;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body
        .map(axum::body::Body::from)
        .unwrap_or_else(axum::body::Body::empty);
    let res = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, ct, bytes.to_vec())
}

/// One request through the router in process: (status, content type, body as JSON or as a
/// string). `headers` are added as given.
pub async fn oneshot(
    router: &axum::Router,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<String>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
) -> (axum::http::StatusCode, String, serde_json::Value) {
    let (status, ct, bytes) =
        oneshot_raw(router, token, method, uri, body, content_type, headers).await;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into_owned(),
    ));
    (status, ct, json)
}

/// A JSON call through the router in process with a bearer token: (status, body as JSON).
pub async fn json_call(
    app: &axum::Router,
    token: &str,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let ct = body.as_ref().map(|_| "application/json");
    let (s, _, v) = oneshot(
        app,
        Some(token),
        method,
        uri,
        body.map(|b| b.to_string()),
        ct,
        headers,
    )
    .await;
    (s.as_u16(), v)
}

/// The operator's capability as the first vault a test opened handed it out (it names no vault:
/// it stands for whoever holds the master key, as a test does).
static OPERATOR: std::sync::OnceLock<steward_service::Operator> = std::sync::OnceLock::new();

/// The test's operator, for helpers that are given only a vault; a vault must have been opened.
pub fn op() -> steward_service::Operator {
    *OPERATOR.get().expect("open a vault (TestDb::vault) first")
}

/// One customer as the operator reads them: decided by the policy and audited, as
/// `steward export` reads (tests have no undecided read either).
pub async fn operator_read(
    v: &Vault,
    op: steward_service::Operator,
    id: steward_domain::CustomerId,
) -> Result<steward_domain::Customer, steward_service::ServiceError> {
    v.records()
        .export_customer(op, id)
        .await
        .map(|e| e.customer)
}

/// A service client in `role`, authenticated as the API would authenticate its token.
pub async fn principal(
    v: &Vault,
    op: steward_service::Operator,
    role: steward_domain::Role,
) -> steward_service::Principal {
    let (_, token) = v
        .identity()
        .create_token(op, "test client", steward_service::TokenOwner::Role(role))
        .await
        .expect("token");
    v.identity()
        .authenticate(&token)
        .await
        .expect("auth")
        .expect("valid")
}

/// A caller in `role` reading for `purpose`, as a request of the API would.
pub struct Reader {
    pub principal: steward_service::Principal,
    pub purpose: std::sync::Arc<steward_domain::Purpose>,
}

impl Reader {
    pub async fn new(
        v: &Vault,
        op: steward_service::Operator,
        role: steward_domain::Role,
        purpose: &str,
    ) -> Self {
        Reader {
            principal: principal(v, op, role).await,
            purpose: v.purposes().get("purpose", purpose).expect("purpose"),
        }
    }

    pub fn access(&self) -> steward_service::Access<'_> {
        steward_service::Access {
            principal: &self.principal,
            purpose: &self.purpose,
            reason: None,
            break_glass: false,
        }
    }
}

/// The ids of the customers a support agent finds for `service` by a normalised e-mail or
/// phone (a decided, audited look-up through the blind index).
pub async fn lookup_ids(
    v: &Vault,
    op: steward_service::Operator,
    kind: &'static str,
    value: &str,
) -> Vec<steward_domain::CustomerId> {
    let agent = Reader::new(v, op, steward_domain::Role::SupportAgent, "service").await;
    v.records()
        .lookup_customers(&agent.access(), kind, value)
        .await
        .expect("look-up")
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// A customer made by the operator from a JSON body, as `POST /v1/customers` would take it.
pub async fn operator_customer(
    v: &Vault,
    op: steward_service::Operator,
    body: serde_json::Value,
) -> steward_domain::CustomerId {
    let input: steward_domain::CustomerInput = serde_json::from_value(body).expect("input");
    v.records()
        .create_customer(op.into(), &input.validate().expect("valid"))
        .await
        .expect("created")
}

/// A staff member `name` in `role` at `outlets`, signing in as `login` with `password`.
pub async fn staff_member(
    v: &Vault,
    op: steward_service::Operator,
    (name, role, outlets): (&str, steward_domain::Role, &[steward_domain::OutletId]),
    (login, password): (&str, &str),
) -> steward_domain::StaffId {
    let staff = v
        .directory()
        .create_staff(op.into(), name, &[role], outlets)
        .await
        .expect("staff");
    v.identity()
        .set_staff_password(op, staff, login, zeroize::Zeroizing::new(password.into()))
        .await
        .expect("password");
    staff
}

/// A stored leaf's fields as JSON (any leaf version).
pub fn leaf_json(leaf: &[u8]) -> serde_json::Value {
    serde_json::to_value(steward_domain::AuditLeaf::from_bytes(leaf).expect("a leaf")).unwrap()
}

/// A stored leaf as text to search: its bytes as they are (a personal value would show there)
/// and its decoded fields as JSON.
pub fn leaf_text(leaf: &[u8]) -> String {
    format!("{} {}", String::from_utf8_lossy(leaf), leaf_json(leaf))
}
