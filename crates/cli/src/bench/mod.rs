//! `steward bench`: the benchmarks behind `docs/benchmarks.md`. Each one measures Steward and a
//! plain baseline doing the same work without encryption, on the same machine, in the same run,
//! and prints both and their ratio. Build with `--release`.

/// Prints a line of a benchmark's table and keeps it for `steward bench all`.
macro_rules! emit {
    ($($t:tt)*) => {{
        let line = format!($($t)*);
        println!("{line}");
        if let Ok(mut r) = $crate::bench::REPORT.lock() {
            r.push(line);
        }
    }};
}

mod all;
mod analytics;
mod audit;
mod erasure;
mod http;
mod merge;
mod pii;
mod policy;
mod recommend;
mod search;
mod segment;
mod send;
mod share;
mod soak;

/// A child `steward serve` of a benchmark; killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this binary's `steward serve` on `dir` with `args` (the request rate limit lifted: the
/// load is the point), reading its banner up to the address line, which comes last; returns the
/// child, its address and the lines read.
fn serve_child(
    dir: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<(Child, SocketAddr, Vec<String>)> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--rate-limit", "default=1000000/1000000"])
        .args(args)
        .arg("--data-dir")
        .arg(dir);
    child_listening(cmd, "Steward is listening on http://")
}

/// Starts `cmd` with its standard output piped, reading it up to the line `marker` + address;
/// the child, the address and the lines read.
fn child_listening(
    mut cmd: std::process::Command,
    marker: &str,
) -> anyhow::Result<(Child, SocketAddr, Vec<String>)> {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting a server for the benchmark")?;
    let out = child.stdout.take().context("no stdout")?;
    let child = Child(child);
    let (mut addr, mut lines) = (None, Vec::new());
    for line in std::io::BufReader::new(out).lines() {
        let line = line?;
        let url = line.strip_prefix(marker).map(str::to_owned);
        lines.push(line);
        if let Some(url) = url {
            addr = Some(url.trim().parse::<SocketAddr>()?);
            break;
        }
    }
    match addr {
        Some(a) => Ok((child, a, lines)),
        None => anyhow::bail!("the server did not print its address ({marker}…)"),
    }
}

/// The table lines printed since the last [`take_report`].
static REPORT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The table lines printed since the last call.
fn take_report() -> Vec<String> {
    REPORT
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default()
}

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use sqlx::{AnyPool, AssertSqlSafe, Row};
use steward_domain::{Address, NewCustomer, Role};
use steward_service::Vault;

/// Options of `steward bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Every benchmark in one run: prints each table and rewrites the generated section of a
    /// benchmarks file (default `docs/benchmarks.md`) with them, the machine and the date.
    All {
        /// Small sizes: finishes in well under two minutes.
        #[arg(long)]
        quick: bool,
        /// The Markdown file whose generated section is rewritten.
        #[arg(long, default_value = "docs/benchmarks.md")]
        docs: std::path::PathBuf,
        /// Print only; leave the file alone.
        #[arg(long)]
        no_write: bool,
    },
    /// Import generated customers into SQLite: sealed through Steward vs a plain table.
    Import {
        /// How many customers.
        #[arg(long, default_value_t = 1_000_000)]
        customers: usize,
        /// Customers per transaction.
        #[arg(long, default_value_t = 50_000)]
        batch: usize,
    },
    /// The cryptography of one customer: sealing a new one, and opening one for a read.
    Crypto {
        /// Iterations.
        #[arg(long, default_value_t = 200_000)]
        iterations: usize,
    },
    /// One policy decision for a customer read (six data categories), evaluated and memoized,
    /// and the decisions of a mixed run of reads as a server meets them; single core.
    Policy {
        /// Decisions to time (five times as many in the mixed run).
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
    },
    /// The audit log on SQLite: appends, full verification, inclusion proofs.
    Audit {
        /// Entries in the log.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Entries per append (group commit).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Inclusion proofs to time.
        #[arg(long, default_value_t = 2_000)]
        proofs: usize,
    },
    /// Erasure by crypto-shredding: time until unreadable for short and long histories, and
    /// the purge of a long one (SQLite).
    Erasure {
        /// Customers with one interaction to erase.
        #[arg(long, default_value_t = 500)]
        small: usize,
        /// Customers with a long history to erase.
        #[arg(long, default_value_t = 3)]
        large: usize,
        /// Interactions of each customer with a long history.
        #[arg(long, default_value_t = 100_000)]
        history: usize,
    },
    /// Merging a duplicate with a long history into another customer (SQLite).
    Merge {
        /// Interactions of the duplicate.
        #[arg(long, default_value_t = 10_000)]
        history: usize,
        /// Merges to time.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The data-subject export (ZIP) of one customer with a long history (SQLite).
    Export {
        /// Interactions of the customer.
        #[arg(long, default_value_t = 10_000)]
        history: usize,
        /// Exports to time.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// A real `steward serve --demo` under a steady mixed load at a fraction of its capacity:
    /// per-minute rate, errors, p50/p99 and server memory; writes its table into the benchmarks
    /// file. The documented run is 10 minutes at half capacity.
    Soak {
        /// Minutes under load.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Fraction of the capacity measured first (20 s, closed loop).
        #[arg(long, default_value_t = 0.5)]
        fraction: f64,
        /// A fixed rate in requests per second instead of a fraction of the capacity.
        #[arg(long)]
        rate: Option<f64>,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds per reported window.
        #[arg(long, default_value_t = 60)]
        window: u64,
        /// The Markdown file whose soak section is rewritten.
        #[arg(long, default_value = "docs/benchmarks.md")]
        docs: std::path::PathBuf,
        /// Print only; leave the file alone.
        #[arg(long)]
        no_write: bool,
    },
    /// Name search and a list page over customers of one outlet, one request at a time:
    /// p50/p95/p99 as a client sees them.
    Search {
        /// Customers in the outlet.
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Seconds of searching (and again of listing).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Personalisation: the co-purchase model built from a generated history with a planted
    /// structure; hit-rate@5 on held-out purchases vs a most-popular baseline, build time and
    /// latency per recommendation.
    Recommend {
        /// Customers (all consenting).
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Purchases per customer, the last held out.
        #[arg(long, default_value_t = 11)]
        purchases: usize,
        /// Customers whose held-out purchase is checked.
        #[arg(long, default_value_t = 5_000)]
        sample: usize,
    },
    /// Personal data in free text: the detector over a generated corpus of messages in several
    /// languages with planted values and decoys; MB/s on one core, precision and recall per type.
    Pii {
        /// Megabytes of messages.
        #[arg(long, default_value_t = 50)]
        megabytes: usize,
        /// Bytes per message (about).
        #[arg(long, default_value_t = 2_000)]
        message_bytes: usize,
    },
    /// Sharing under agreement: a recipient's read against a staff read of the same customers
    /// (interleaved), and notifications delivered to a loopback receiver.
    Share {
        /// Customers.
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        /// Interleaved rounds.
        #[arg(long, default_value_t = 6)]
        rounds: usize,
        /// Reads each way per round.
        #[arg(long, default_value_t = 1_000)]
        reads: usize,
        /// Notifications to deliver.
        #[arg(long, default_value_t = 2_000)]
        notifications: usize,
    },
    /// Differentially private analytics over many customers and purchases through the service:
    /// latency per query and the median relative error of counts against the exact answers.
    Analytics {
        /// Customers (0 to 6 purchases each, 3 on average).
        #[arg(long, default_value_t = 1_000_000)]
        customers: usize,
        /// Releases of each query (the median latency is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Sizing segments over many customers and purchases through the service (policy per
    /// customer, sealed amounts opened) vs the same counts in plain SQL; SQLite.
    Segment {
        /// Customers.
        #[arg(long, default_value_t = 1_000_000)]
        customers: usize,
        /// Purchases per customer.
        #[arg(long, default_value_t = 3)]
        purchases: usize,
        /// Times each segment is sized (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// A campaign sent by `steward serve` to an SMTP server vs a plain sender, and one-click
    /// unsubscribe latency (`scripts/bench-send` starts the SMTP server and runs it).
    Send {
        /// Consenting customers.
        #[arg(long, default_value_t = 5_000)]
        customers: usize,
        /// Rounds of each sender.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// The SMTP server (`smtp://127.0.0.1:PORT`).
        #[arg(long)]
        smtp_url: String,
        /// The directory where that server keeps what it receives (for the links).
        #[arg(long)]
        smtp_dir: std::path::PathBuf,
    },
    /// `GET /v1/customers/{id}` under concurrent load vs the same row served in clear.
    Read {
        /// Customers in the database.
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        /// Seconds of load per run.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Rounds; each runs Steward and the baseline once, alternating which goes first.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// Authorised reads as a client sees them: `steward serve` and a plain axum + sqlx service,
    /// each in its own process, read at random over loopback by a load generator outside both;
    /// req/s, p50, p99, p99.9 and max per round.
    Http {
        /// Customers on each side.
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Seconds of load per side per round.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Rounds; each runs both sides once, alternating which goes first.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The load generator: this binary's own client, or Debian's `wrk` (`scripts/bench-wrk`).
        #[arg(long, value_enum, default_value = "client")]
        load: LoadGenerator,
        /// Keep the generated data in this folder and reuse it on the next run.
        #[arg(long)]
        keep: Option<std::path::PathBuf>,
    },
    /// The plain baseline of `bench http` on its own (started by it as a child process).
    #[command(hide = true)]
    Baseline {
        /// The plain SQLite database `bench http` wrote.
        #[arg(long)]
        database: std::path::PathBuf,
    },
}

/// Who drives the load of `bench http`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LoadGenerator {
    /// This binary's closed-loop client, in its own process.
    Client,
    /// Debian's `wrk`, two threads.
    Wrk,
}

/// Generated customer `n`: every profile field filled, values unique per `n`. E-mails and
/// phones are scattered (a bijective mix of `n`), as in a real export, so that neither side's
/// indexes get the unrealistic benefit of sorted input.
/// Seals generated customers `range`, registered at `outlet`, and inserts them in one batch; their
/// ids in order.
async fn insert_generated(
    vault: &Vault,
    operator: steward_service::Operator,
    outlet: steward_domain::OutletId,
    range: std::ops::Range<usize>,
) -> anyhow::Result<Vec<steward_domain::CustomerId>> {
    let sealed = range
        .map(|n| {
            let mut c = generated(n);
            c.outlet_id = Some(outlet);
            vault
                .records()
                .seal_new_customer(&c, steward_domain::Timestamp::now())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vault.records().insert_sealed(operator, sealed).await?)
}

fn generated(n: usize) -> NewCustomer {
    // 0x9E37_79B1 is coprime with 10^8 (odd, not a multiple of 5), so n -> n * it mod 10^8 is a
    // bijection on 0..10^8 (no u64 overflow below 10^8).
    let scattered = (n as u64).wrapping_mul(0x9E37_79B1) % 100_000_000;
    let mut c = NewCustomer {
        name: Some(format!("Bench Customer {n}")),
        email: Some(format!("c{scattered:08}.{n}@example.com")),
        phone: Some(format!("+4420{scattered:08}")),
        address: Some(Address {
            street: Some(format!("{} Bench Street", n % 500)),
            city: Some("London".into()),
            postal_code: Some("W1 1AA".into()),
            country: Some("GB".into()),
        }),
        date_of_birth: Some("1980-01-01".into()),
        outlet_id: None,
        ..NewCustomer::default()
    };
    // Every other declared field: its demo value.
    c.fill_demo(n);
    c
}

/// A vault in `dir` for a benchmark: the vault, the operator, the store beneath it (to read as
/// the benchmark's own harness, never as a client) and the database URL.
async fn temp_vault(
    dir: &std::path::Path,
) -> anyhow::Result<(
    Vault,
    steward_service::Operator,
    steward_store::DynStore,
    String,
)> {
    let key = dir.join("master.key");
    let (ring, _) = steward_service::keys::load_keyring(&key, true)?;
    let url = format!("sqlite://{}", dir.join("steward.db").display());
    let store = steward_store::open(&url).await?;
    let policy = std::sync::Arc::new(steward_policy::Policy::default_policy()?);
    let (signer, _, _) = steward_crypto::NoteSigner::load_or_create(
        &dir.join("audit-signing.key"),
        "steward/bench",
    )?;
    let (vault, operator) = Vault::open(store.clone(), ring, policy, signer).await?;
    Ok((vault, operator.acting("bench"), store, url))
}

const PLAIN_TABLE: &str = "CREATE TABLE IF NOT EXISTS plain_customers (id BLOB PRIMARY KEY, created_at INTEGER NOT NULL, name TEXT, email TEXT, phone TEXT, street TEXT, city TEXT, postal_code TEXT, country TEXT, date_of_birth TEXT) STRICT, WITHOUT ROWID";

/// The baseline: the same customers in a plain table, with the same e-mail and phone indexes a
/// CRM would keep, in the same batches.
async fn plain_import(
    pool: &AnyPool,
    customers: &[NewCustomer],
    ids: Option<&[uuid::Uuid]>,
    batch: usize,
) -> anyhow::Result<()> {
    sqlx::query(PLAIN_TABLE).execute(pool).await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS plain_email ON plain_customers (email)")
        .execute(pool)
        .await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS plain_phone ON plain_customers (phone)")
        .execute(pool)
        .await?;
    let mut next = 0;
    for big in customers.chunks(batch) {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in big.chunks(500) {
            let mut sql = String::from("INSERT INTO plain_customers VALUES ");
            // Anonymous parameters, as Steward's store uses on SQLite (see its `values_clause`).
            for r in 0..chunk.len() {
                sql.push_str(if r > 0 {
                    ",(?,?,?,?,?,?,?,?,?,?)"
                } else {
                    "(?,?,?,?,?,?,?,?,?,?)"
                });
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                let a = c.address.clone().unwrap_or_default();
                let id = ids
                    .and_then(|ids| ids.get(next).copied())
                    .unwrap_or_else(uuid::Uuid::now_v7);
                next += 1;
                q = q
                    .bind(id.as_bytes().to_vec())
                    .bind(0i64)
                    .bind(c.name.clone())
                    .bind(c.email.clone())
                    .bind(c.phone.clone())
                    .bind(a.street)
                    .bind(a.city)
                    .bind(a.postal_code)
                    .bind(a.country)
                    .bind(c.date_of_birth.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn bench_import(customers: usize, batch: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, url) = temp_vault(dir.path()).await?;
    eprintln!("Generating {customers} customers…");
    let data: Vec<NewCustomer> = (0..customers).map(generated).collect();

    // store_all takes its customers; the copy for the baseline is made before the clock starts.
    let for_steward = data.clone();
    let bar = indicatif::ProgressBar::new(customers as u64);
    let t = Instant::now();
    crate::import::store_all(&vault, operator, for_steward, batch, |n| {
        bar.set_position(n as u64)
    })
    .await?;
    // Until every customer's creation is an entry of the Merkle log, not just in the outbox.
    vault.audit().flush().await?;
    let sealed = t.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let plain_db = format!("sqlite://{}", dir.path().join("plain.db").display());
    let pool = steward_store::sqlite::pool(&plain_db).await?;
    let t = Instant::now();
    plain_import(&pool, &data, None, batch).await?;
    let plain = t.elapsed().as_secs_f64();
    drop(url);

    let (rs, rp) = (customers as f64 / sealed, customers as f64 / plain);
    emit!(
        "| import, SQLite, {customers} customers, batch {batch} | Steward (sealed) | {rs:.0} customers/s | {sealed:.1} s |"
    );
    emit!("| | plain table (baseline) | {rp:.0} customers/s | {plain:.1} s |");
    emit!("| | ratio Steward / baseline | {:.2} | |", rs / rp);
    Ok(())
}

struct LoadResult {
    requests: u64,
    errors: u64,
    seconds: f64,
    p50_us: u64,
    p95_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
}

/// A small closed-loop load generator: `connections` keep-alive HTTP/1.1 connections, each
/// sending the next request, for a path drawn at random, as soon as the previous answer is read.
async fn load(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    token: Option<String>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<LoadResult> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (paths, token, stop) = (paths.clone(), token.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (mut lat, mut errors) = (Vec::with_capacity(100_000), 0u64);
            // xorshift64*, seeded per connection: uniform enough to spread reads, and free.
            let mut x =
                0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            while !stop.load(Ordering::Relaxed) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let path =
                    &paths[(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % paths.len()];
                let mut req = hyper::Request::get(path.as_str()).header("host", "bench");
                if let Some(t) = &token {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let t = Instant::now();
                let res = sender
                    .send_request(req.body(Empty::<Bytes>::new())?)
                    .await?;
                let ok = res.status().is_success();
                res.into_body().collect().await?;
                lat.push(t.elapsed().as_micros() as u64);
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await??;
        all.extend(lat);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(LoadResult {
        requests: all.len() as u64,
        errors,
        seconds: secs,
        p50_us: pct(0.50),
        p95_us: pct(0.95),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: all.last().copied().unwrap_or(0),
    })
}

async fn plain_customer(
    State(pool): State<AnyPool>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, axum::http::StatusCode> {
    let id = uuid::Uuid::try_parse(&id).map_err(|_| axum::http::StatusCode::BAD_REQUEST)?;
    let row = sqlx::query("SELECT name, email, phone, street, city, postal_code, country, date_of_birth FROM plain_customers WHERE id = $1")
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&pool)
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?
        .ok_or(axum::http::StatusCode::NOT_FOUND)?;
    let s = |i: usize| row.try_get::<Option<String>, _>(i).ok().flatten();
    Ok(Json(serde_json::json!({
        "id": id, "name": s(0), "email": s(1), "phone": s(2),
        "address": {"street": s(3), "city": s(4), "postal_code": s(5), "country": s(6)}, "date_of_birth": s(7),
    })))
}

async fn serve(router: axum::Router) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr, handle))
}

fn print_load(label: &str, r: &LoadResult) {
    emit!(
        "| {label} | {:.0} req/s | p50 {:.2} ms | p99 {:.2} ms | {} requests, {} errors |",
        r.rate(),
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.requests,
        r.errors
    );
}

async fn bench_read(
    customers: usize,
    seconds: u64,
    connections: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, store, url) = temp_vault(dir.path()).await?;
    let data: Vec<NewCustomer> = (0..customers).map(generated).collect();
    crate::import::store_all(&vault, operator, data.clone(), 50_000, |_| {}).await?;
    vault.audit().flush().await?;
    let pool = steward_store::sqlite::pool(&url).await?;
    plain_import(&pool, &data, None, 50_000).await?;
    let (_, token) = vault
        .identity()
        .create_token(
            operator,
            "bench",
            steward_service::TokenOwner::Role(Role::SupportAgent),
        )
        .await?;

    // A load test reads every customer many times an hour, as no person does.
    vault
        .records()
        .set_bulk_limit(operator, Role::SupportAgent, None);
    let ids = store.list_customer_ids(None, None, 500).await?;
    let sealed_paths: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("/v1/customers/{id}?purpose=service"))
            .collect(),
    );
    let plain_ids = sqlx::query("SELECT id FROM plain_customers ORDER BY id LIMIT 500")
        .fetch_all(&pool)
        .await?;
    let plain_paths: Arc<Vec<String>> = Arc::new(
        plain_ids
            .iter()
            .filter_map(|r| r.try_get::<Vec<u8>, _>(0).ok())
            .filter_map(|b| uuid::Uuid::from_slice(&b).ok())
            .map(|id| format!("/plain/customers/{id}"))
            .collect(),
    );

    let (steward_addr, h1) = serve(steward_api::router(vault.clone())).await?;
    let plain_router = axum::Router::new()
        .route("/plain/customers/{id}", get(plain_customer))
        .with_state(pool);
    let (plain_addr, h2) = serve(plain_router).await?;
    let steward_run = || {
        load(
            steward_addr,
            sealed_paths.clone(),
            Some(token.to_string()),
            connections,
            seconds,
        )
    };
    let plain_run = || load(plain_addr, plain_paths.clone(), None, connections, seconds);

    eprintln!("Warming up…");
    load(
        steward_addr,
        sealed_paths.clone(),
        Some(token.to_string()),
        connections,
        1,
    )
    .await?;
    load(plain_addr, plain_paths.clone(), None, connections, 1).await?;
    // Alternate the order each round so that neither side always runs on a warmer machine.
    let (mut steward, mut plain) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            steward.push(steward_run().await?);
            plain.push(plain_run().await?);
        } else {
            plain.push(plain_run().await?);
            steward.push(steward_run().await?);
        }
        eprintln!(
            "round {}: Steward {:.0} req/s, baseline {:.0} req/s",
            round + 1,
            steward[round].rate(),
            plain[round].rate()
        );
    }
    h1.abort();
    h2.abort();

    emit!(
        "| GET one customer, SQLite, {customers} customers, {connections} connections, {rounds} rounds × {seconds} s | | | | |"
    );
    // Each round runs the two back to back, so drift of the (virtual) machine cancels in the
    // ratio; report the round whose ratio is the median.
    let ratio = |i: usize| steward[i].rate() / plain[i].rate();
    let mut order: Vec<usize> = (0..rounds).collect();
    order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
    let m = order[rounds / 2];
    print_load("Steward (token, policy, unseal)", &steward[m]);
    print_load("plain axum + sqlx (baseline)", &plain[m]);
    let all: Vec<String> = (0..rounds).map(|i| format!("{:.2}", ratio(i))).collect();
    emit!(
        "| ratio Steward / baseline, median round | {:.2} | all rounds: {} | | |",
        ratio(m),
        all.join(", ")
    );
    anyhow::ensure!(
        steward.iter().chain(&plain).all(|r| r.errors == 0),
        "some requests failed"
    );
    Ok(())
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Times sealing a new customer (data key, five fields, key wrap, two blind indexes) and
/// opening one for a read (unwrap the data key, open five fields), on one core.
async fn bench_crypto(iterations: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, _, _, _) = temp_vault(dir.path()).await?;
    let (seal_us, open_us) = vault
        .records()
        .time_seal_and_open(&generated(12_345), iterations)?;
    emit!(
        "| seal one new customer (data key, 5 fields, wrap, 2 blind indexes) | {seal_us:.2} µs |"
    );
    emit!("| open one customer for a read (unwrap, 5 fields) | {open_us:.2} µs |");
    Ok(())
}

/// Runs `steward bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!(
            "WARNING: this is a debug build; benchmark figures need `cargo run --release -p steward -- bench …`."
        );
    }
    match args.which {
        Which::All {
            quick,
            docs,
            no_write,
        } => all::run(quick, (!no_write).then_some(docs.as_path())).await?,
        Which::Policy { iterations } => {
            policy::run(iterations.max(1)).context("policy benchmark")?
        }
        Which::Audit {
            entries,
            batch,
            proofs,
        } => audit::run(entries.max(1), batch.max(1), proofs.max(1))
            .await
            .context("audit benchmark")?,
        Which::Erasure {
            small,
            large,
            history,
        } => erasure::run(small.max(1), large, history)
            .await
            .context("erasure benchmark")?,
        Which::Merge { history, runs } => merge::run(history, runs.max(1))
            .await
            .context("merge benchmark")?,
        Which::Export { history, runs } => erasure::run_export(history, runs.max(1))
            .await
            .context("export benchmark")?,
        Which::Soak {
            minutes,
            fraction,
            rate,
            connections,
            window,
            docs,
            no_write,
        } => {
            anyhow::ensure!(
                minutes > 0.0 && (0.0..=1.0).contains(&fraction) && fraction > 0.0,
                "--minutes must be positive and --fraction between 0 and 1"
            );
            let args = soak::SoakArgs {
                seconds: (minutes * 60.0).round().max(1.0) as u64,
                fraction,
                rate: rate.filter(|r| *r > 0.0),
                connections: connections.max(1),
                window: window.max(1),
            };
            soak::run(args, (!no_write).then_some(docs.as_path()))
                .await
                .context("soak")?
        }
        Which::Crypto { iterations } => bench_crypto(iterations.max(1))
            .await
            .context("crypto benchmark")?,
        Which::Import { customers, batch } => bench_import(customers, batch)
            .await
            .context("import benchmark")?,
        Which::Analytics { customers, runs } => analytics::run(customers.max(10), runs.max(1))
            .await
            .context("analytics benchmark")?,
        Which::Segment {
            customers,
            purchases,
            runs,
        } => segment::run(customers, purchases, runs.max(1))
            .await
            .context("segment benchmark")?,
        Which::Send {
            customers,
            rounds,
            smtp_url,
            smtp_dir,
        } => send::run(send::SendArgs {
            customers,
            rounds: rounds.max(1),
            smtp_url,
            smtp_dir,
        })
        .await
        .context("send benchmark")?,
        Which::Pii {
            megabytes,
            message_bytes,
        } => pii::run(megabytes.max(1), message_bytes).context("pii benchmark")?,
        Which::Share {
            customers,
            rounds,
            reads,
            notifications,
        } => share::run(
            customers.max(10),
            rounds.max(1),
            reads.max(1),
            notifications,
        )
        .await
        .context("share benchmark")?,
        Which::Recommend {
            customers,
            purchases,
            sample,
        } => recommend::run(customers.max(10), purchases.max(2), sample)
            .await
            .context("recommend benchmark")?,
        Which::Search { customers, seconds } => search::bench_search(customers, seconds)
            .await
            .context("search benchmark")?,
        Which::Read {
            customers,
            seconds,
            connections,
            rounds,
        } => bench_read(customers, seconds, connections, rounds.max(1))
            .await
            .context("read benchmark")?,
        Which::Http {
            customers,
            seconds,
            connections,
            rounds,
            load,
            keep,
        } => http::run(http::HttpArgs {
            customers: customers.max(1),
            seconds: seconds.max(1),
            connections: connections.max(1),
            rounds: rounds.max(1),
            wrk: matches!(load, LoadGenerator::Wrk),
            keep,
        })
        .await
        .context("http benchmark")?,
        Which::Baseline { database } => http::baseline(&database).await?,
    }
    Ok(ExitCode::SUCCESS)
}
