//! A PostgreSQL server of a test's own, made with the machine's `initdb` and `pg_ctl`: for what
//! the shared server cannot be put through (stopped, lost, and restored from a physical base
//! backup) without taking every other test's database with it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running PostgreSQL server in a temporary directory, stopped when dropped.
pub struct PgInstance {
    root: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
}

impl PgInstance {
    /// A fresh cluster (trust authentication on loopback, replication allowed) on a free port.
    pub fn init() -> PgInstance {
        let (root, bin) = (owned_dir(), bin_dir());
        let data = root.path().join("data");
        run(
            tool(&bin, "initdb").args([
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]),
            "initdb",
        );
        let port = free_port();
        let pg = PgInstance {
            root,
            data,
            bin,
            port,
        };
        pg.start();
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A physical base backup of the whole cluster (`pg_basebackup`, WAL streamed alongside, the
    /// way a managed service or barman takes one), into a directory of its own.
    pub fn base_backup(&self) -> PathBuf {
        let to = self
            .root
            .path()
            .join(format!("base-{}", uuid::Uuid::now_v7()));
        run(
            tool(&self.bin, "pg_basebackup").args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &to.display().to_string(),
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]),
            "pg_basebackup",
        );
        to
    }

    /// Stops this server for good and starts one from `backup` on the same port, as an operator
    /// restoring a lost database machine from its last base backup would.
    pub fn replace_with(&mut self, backup: PathBuf) {
        self.stop("fast");
        self.data = backup;
        self.start();
    }

    fn start(&self) {
        let sockets = self.root.path().display().to_string();
        run(
            tool(&self.bin, "pg_ctl").args([
                "-D",
                &self.data.display().to_string(),
                "-l",
                &self.root.path().join("server.log").display().to_string(),
                "-w",
                "-t",
                "60",
                "-o",
                &format!(
                    "-p {} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
                    self.port
                ),
                "start",
            ]),
            "pg_ctl start",
        );
    }

    fn stop(&self, mode: &str) {
        let _ = tool(&self.bin, "pg_ctl")
            .args(["-D", &self.data.display().to_string(), "-m", mode, "-w"])
            .arg("stop")
            .output();
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        self.stop("immediate");
    }
}

/// The newest PostgreSQL server binaries installed from Debian's packages.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "this test runs a PostgreSQL server of its own and needs initdb, pg_ctl and \
             pg_basebackup under /usr/lib/postgresql/<version>/bin: run scripts/ensure-postgres"
        )
    })
}

/// PostgreSQL refuses to run as root: there the tools run as the `postgres` account.
fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn tool(bin: &Path, name: &str) -> Command {
    let path = bin.join(name);
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

/// A temporary directory the account that runs PostgreSQL owns.
fn owned_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    if as_root() {
        run(
            Command::new("chown").arg("postgres:").arg(dir.path()),
            "chown",
        );
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs `c`, failing the test with its output unless it succeeds.
pub fn run(c: &mut Command, what: &str) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what} could not run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
