//! Test harness: real databases (a SQLite file, a fresh PostgreSQL database), real keys.

use std::path::{Path, PathBuf};

use sqlx::Connection;
use steward_service::Vault;
use tempfile::TempDir;

/// The PostgreSQL server tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("STEWARD_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
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
}

impl TestDb {
    pub async fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("steward.db").display());
                TestDb { kind, url, dir, pg_name: None }
            }
            Kind::Postgres => {
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin} ({e}).\n\
                         Start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                         or point STEWARD_TEST_PG_URL at a server where user postgres may create databases."
                    )
                });
                let name = format!("steward_test_{}", uuid::Uuid::now_v7().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create test database");
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("STEWARD_TEST_PG_URL must end in /<database>"),
                };
                TestDb { kind, url, dir, pg_name: Some(name) }
            }
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the vault as `steward serve` would (creating the key on first use).
    pub async fn vault(&self) -> Vault {
        let (ring, _) = steward_service::keys::load_keyring(&self.key_file(), true).expect("keyring");
        let store = steward_store::open(&self.url).await.expect("open store");
        Vault::open(store, ring).await.expect("open vault")
    }

    /// A raw connection pool, to reach under the application as an attacker with the database would.
    pub async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url).await.expect("raw pool")
    }

    /// Arguments that point the binary at this database.
    pub fn cli_args(&self) -> Vec<String> {
        let mut v = vec!["--data-dir".to_owned(), self.dir.path().display().to_string()];
        if self.kind == Kind::Postgres {
            v.extend(["--database-url".to_owned(), self.url.clone()]);
        }
        v
    }

    pub fn pg_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs inside the test's runtime; use a thread with its own to clean up.
            let admin = pg_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut c).await;
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
