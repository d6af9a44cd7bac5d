//! `steward bench http`: authorised reads as a client sees them. The real `steward serve` and a
//! plain baseline (the naive axum + sqlx service a team would otherwise write, reading the same
//! customers in clear) each run in a process of their own; a load generator outside both — this
//! process's own closed-loop client, or Debian's `wrk` with `--load wrk` — reads random customers
//! over loopback, in rounds that alternate which side goes first. Reports req/s, p50, p99, p99.9
//! and the slowest request of each side.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use steward_domain::{CustomerId, NewCustomer, Role};

use super::LoadResult;

/// Options of one `bench http` run.
pub struct HttpArgs {
    /// Customers on each side.
    pub customers: usize,
    /// Seconds per side per round.
    pub seconds: u64,
    /// Concurrent connections.
    pub connections: usize,
    /// Rounds.
    pub rounds: usize,
    /// Drive the load with `wrk` instead of the built-in client.
    pub wrk: bool,
    /// Keep the data here (and reuse it when it is already there) instead of a temporary folder.
    pub keep: Option<PathBuf>,
}

/// The Lua script `--load wrk` hands to wrk (also `scripts/bench-wrk.lua`, for running wrk by hand).
const WRK_SCRIPT: &str = include_str!("../../../../scripts/bench-wrk.lua");

/// The support-agent token file, the ids file and the baseline's database in the data folder.
const TOKEN_FILE: &str = "bench-token";
const IDS_FILE: &str = "bench-ids";
const PLAIN_DB: &str = "plain.db";

/// Loads `customers` generated customers into a Steward installation in `dir` and the same
/// customers, same ids, in clear into `dir/plain.db`; writes the ids and a support-agent token.
async fn prepare(dir: &Path, customers: usize) -> anyhow::Result<()> {
    if dir.join(IDS_FILE).exists() && dir.join(TOKEN_FILE).exists() {
        eprintln!("Reusing the customers in {}", dir.display());
        return Ok(());
    }
    // Generated customers and a token without limits belong in a folder of their own.
    anyhow::ensure!(
        !dir.join("steward.db").exists(),
        "{} holds a Steward database that bench http did not make; give --keep a new folder",
        dir.display()
    );
    std::fs::create_dir_all(dir)?;
    let (vault, operator, _, _) = super::temp_vault(dir).await?;
    let bar = indicatif::ProgressBar::new(customers as u64);
    bar.set_message("customers");
    let data: Vec<NewCustomer> = (0..customers).map(super::generated).collect();
    let mut rows: Vec<(CustomerId, &NewCustomer)> = Vec::with_capacity(customers);
    for chunk in data.chunks(20_000) {
        let sealed = chunk
            .iter()
            .map(|c| {
                vault
                    .records()
                    .seal_new_customer(c, steward_domain::Timestamp::now())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids = vault.records().insert_sealed(operator, sealed).await?;
        rows.extend(ids.into_iter().zip(chunk));
        bar.inc(chunk.len() as u64);
    }
    vault.audit().flush().await?;
    bar.finish_and_clear();
    let (_, token) = vault
        .identity()
        .create_token(
            operator,
            "bench-http",
            steward_service::TokenOwner::Role(Role::SupportAgent),
        )
        .await?;
    drop(vault);

    let plain = format!("sqlite://{}", dir.join(PLAIN_DB).display());
    let pool = steward_store::sqlite::pool(&plain).await?;
    let ids: Vec<uuid::Uuid> = rows
        .iter()
        .map(|(id, _)| uuid::Uuid::from_bytes(*id.as_bytes()))
        .collect();
    let customers: Vec<NewCustomer> = rows.iter().map(|(_, c)| (*c).clone()).collect();
    super::plain_import(&pool, &customers, Some(&ids), 50_000).await?;
    pool.close().await;

    let lines: Vec<String> = ids.iter().map(ToString::to_string).collect();
    std::fs::write(dir.join(IDS_FILE), lines.join("\n") + "\n")?;
    // A bearer token: readable by its owner only, in a file made new (not one found there).
    let path = dir.join(TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    std::io::Write::write_all(&mut file.open(&path)?, token.as_bytes())?;
    Ok(())
}

/// `steward bench baseline`: the plain service, on its own, printing its address the way
/// `steward serve` does.
pub async fn baseline(database: &Path) -> anyhow::Result<()> {
    let pool = steward_store::sqlite::pool(&format!("sqlite://{}", database.display())).await?;
    let router = axum::Router::new()
        .route("/plain/customers/{id}", get(super::plain_customer))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("Baseline is listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

/// One side under load: where it listens, its path prefix and token.
struct Side {
    addr: SocketAddr,
    prefix: &'static str,
    suffix: &'static str,
    token: Option<String>,
}

/// Runs `bench http`.
pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.keep {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    prepare(&dir, args.customers).await?;
    let ids: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(dir.join(IDS_FILE))?
            .lines()
            .map(str::to_owned)
            .collect(),
    );
    let token = std::fs::read_to_string(dir.join(TOKEN_FILE))?;

    // A load test reads every customer many times an hour, as no person does.
    let (steward_child, steward_addr, _) =
        super::serve_child(&dir, &["--bulk-limit", "support_agent=none"])?;
    let (baseline_child, baseline_addr) = baseline_child(&dir.join(PLAIN_DB))?;
    let steward = Side {
        addr: steward_addr,
        prefix: "/v1/customers/",
        suffix: "?purpose=service",
        token: Some(token.trim().to_owned()),
    };
    let plain = Side {
        addr: baseline_addr,
        prefix: "/plain/customers/",
        suffix: "",
        token: None,
    };
    let script = dir.join("bench-wrk.lua");
    if args.wrk {
        std::fs::write(&script, WRK_SCRIPT)?;
    }
    let token_file = dir.join(TOKEN_FILE);
    let drive = |side: &Side, seconds: u64| {
        let (paths, script, ids_file) = (ids.clone(), script.clone(), dir.join(IDS_FILE));
        let token_file = side.token.as_ref().map(|_| token_file.clone());
        let (addr, prefix, suffix, token) =
            (side.addr, side.prefix, side.suffix, side.token.clone());
        let (wrk, connections) = (args.wrk, args.connections);
        async move {
            if wrk {
                run_wrk(
                    &script,
                    &ids_file,
                    addr,
                    prefix,
                    suffix,
                    token_file.as_deref(),
                    connections,
                    seconds,
                )
            } else {
                let paths = Arc::new(
                    paths
                        .iter()
                        .map(|id| format!("{prefix}{id}{suffix}"))
                        .collect::<Vec<_>>(),
                );
                super::load(addr, paths, token, connections, seconds).await
            }
        }
    };

    eprintln!("Warming up…");
    drive(&steward, 2).await?;
    drive(&plain, 2).await?;
    let (mut s, mut p) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        if round % 2 == 0 {
            s.push(drive(&steward, args.seconds).await?);
            p.push(drive(&plain, args.seconds).await?);
        } else {
            p.push(drive(&plain, args.seconds).await?);
            s.push(drive(&steward, args.seconds).await?);
        }
        eprintln!(
            "round {}: Steward {:.0} req/s (p99 {:.1} ms, max {:.1} ms), baseline {:.0} req/s (p99 {:.1} ms, max {:.1} ms)",
            round + 1,
            s[round].rate(),
            s[round].p99_us as f64 / 1e3,
            s[round].max_us as f64 / 1e3,
            p[round].rate(),
            p[round].p99_us as f64 / 1e3,
            p[round].max_us as f64 / 1e3,
        );
    }
    let memory = [
        memory_of(steward_child.0.id()),
        memory_of(baseline_child.0.id()),
    ];
    drop(steward_child);
    drop(baseline_child);
    let footprint = audit_footprint(&dir).await?;

    let generator = if args.wrk {
        "wrk -t2"
    } else {
        "closed-loop client, own process"
    };
    emit!(
        "| GET one random customer over loopback, SQLite, {} customers, {} connections, {} rounds × {} s, load: {generator} | req/s | p50 | p99 | p99.9 | max | requests | errors |",
        args.customers,
        args.connections,
        args.rounds,
        args.seconds
    );
    emit!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, (a, b)) in s.iter().zip(&p).enumerate() {
        row(&format!("round {}: `steward serve`", i + 1), a);
        row(&format!("round {}: plain axum + sqlx", i + 1), b);
    }
    let ratio = |i: usize| s[i].rate() / p[i].rate();
    let mut order: Vec<usize> = (0..args.rounds).collect();
    order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
    let median = order[args.rounds / 2];
    let worst = |v: &[LoadResult], f: fn(&LoadResult) -> u64| v.iter().map(f).max().unwrap_or(0);
    emit!(
        "| ratio Steward / baseline (median round) | **{:.2}** | | p99 {:.1} / {:.1} ms (worst rounds) | p99.9 {:.1} / {:.1} ms | max {:.1} / {:.1} ms | | |",
        ratio(median),
        worst(&s, |r| r.p99_us) as f64 / 1e3,
        worst(&p, |r| r.p99_us) as f64 / 1e3,
        worst(&s, |r| r.p999_us) as f64 / 1e3,
        worst(&p, |r| r.p999_us) as f64 / 1e3,
        worst(&s, |r| r.max_us) as f64 / 1e3,
        worst(&p, |r| r.max_us) as f64 / 1e3,
    );
    for (who, m) in ["`steward serve`", "baseline"].iter().zip(memory) {
        if let Some((rss, peak)) = m {
            emit!(
                "{who}: resident {:.1} MiB at the end, {:.1} MiB at most",
                rss as f64 / 1024.0,
                peak as f64 / 1024.0
            );
        }
    }
    let (bytes, entries) = footprint;
    emit!(
        "audit files (log, index, their WAL and shared memory, at rest): {bytes} bytes for {entries} entries, **{:.0} bytes per entry**",
        bytes as f64 / entries.max(1) as f64
    );
    anyhow::ensure!(
        s.iter().chain(&p).all(|r| r.errors == 0),
        "some requests failed"
    );
    Ok(())
}

/// Resident and peak resident set of process `pid` (KiB), from Linux's `/proc`.
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Every byte the audit log takes in `dir` (the log and its by-customer index, with their WAL
/// and shared memory as the stopped server left them) and the number of entries.
async fn audit_footprint(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let bytes = [
        "steward-audit.db",
        "steward-audit.db-wal",
        "steward-audit.db-shm",
        "steward-audit-index.db",
        "steward-audit-index.db-wal",
        "steward-audit-index.db-shm",
    ]
    .iter()
    .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
    .map(|m| m.len())
    .sum();
    let url = format!("sqlite://{}", dir.join("steward.db").display());
    let store = steward_store::open(&url).await?;
    let entries = store.audit_size().await?;
    Ok((bytes, entries))
}

fn row(label: &str, r: &LoadResult) {
    emit!(
        "| {label} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} ms | {} | {} |",
        r.rate(),
        r.p50_us as f64 / 1e3,
        r.p99_us as f64 / 1e3,
        r.p999_us as f64 / 1e3,
        r.max_us as f64 / 1e3,
        r.requests,
        r.errors
    );
}

/// Starts `steward bench baseline` on `database` as a child process; it and its address.
fn baseline_child(database: &Path) -> anyhow::Result<(super::Child, SocketAddr)> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "baseline", "--database"]).arg(database);
    let (child, addr, _) = super::child_listening(cmd, "Baseline is listening on http://")?;
    Ok((child, addr))
}

/// One run of `wrk` against `addr`; its figures from the script's `done` line.
#[allow(clippy::too_many_arguments)]
fn run_wrk(
    script: &Path,
    ids: &Path,
    addr: SocketAddr,
    prefix: &str,
    suffix: &str,
    token_file: Option<&Path>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<LoadResult> {
    let out = std::process::Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--timeout", "10s", "-s"])
        .arg(script)
        .arg(format!("http://{addr}"))
        .arg("--")
        .arg(ids)
        .args([prefix, suffix])
        // The token's file, not the token: a command line is visible to every local user.
        .args(token_file)
        .output()
        .context("running wrk (scripts/bench-wrk installs it from Debian's packages)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

/// The `STEWARD-WRK key=value …` line the script prints when wrk is done.
fn parse_wrk(text: &str) -> Option<LoadResult> {
    let line = text.lines().find_map(|l| l.strip_prefix("STEWARD-WRK "))?;
    let get = |k: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some(LoadResult {
        requests: get("requests")?,
        errors: get("errors")?,
        seconds: get("duration_us")? as f64 / 1e6,
        p50_us: get("p50_us")?,
        p95_us: get("p95_us")?,
        p99_us: get("p99_us")?,
        p999_us: get("p999_us")?,
        max_us: get("max_us")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_summary_line() {
        let out = "Running 10s test @ http://127.0.0.1:1\n  2 threads\nSTEWARD-WRK requests=1200 errors=3 duration_us=10000000 p50_us=1500 p95_us=2500 p99_us=4000 p999_us=9000.5 max_us=31000\n";
        let r = parse_wrk(out).expect("parsed");
        assert_eq!(
            (r.requests, r.errors, r.p999_us, r.max_us),
            (1200, 3, 9000, 31000)
        );
        assert!((r.rate() - 120.0).abs() < 1e-9);
        assert!(parse_wrk("no summary here").is_none());
        assert!(
            parse_wrk("STEWARD-WRK requests=1").is_none(),
            "missing keys are not zero"
        );
    }

    #[test]
    fn the_script_prints_what_the_parser_reads() {
        for key in [
            "requests=",
            "errors=",
            "duration_us=",
            "p50_us=",
            "p95_us=",
            "p99_us=",
            "p999_us=",
            "max_us=",
        ] {
            assert!(
                WRK_SCRIPT.contains(key),
                "{key} missing from scripts/bench-wrk.lua"
            );
        }
    }
}
