//! `steward audit …`: verify the stored log, export it, verify an export.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::StoreArgs;
use crate::open::{audit_signer, store};

/// "1 entry", "2 entries".
fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".to_owned()
    } else {
        format!("{n} entries")
    }
}

fn bar(template: &str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

/// `steward audit verify`.
pub async fn verify(
    args: &StoreArgs,
    verifier_key: Option<String>,
    refused_seen: u64,
) -> anyhow::Result<ExitCode> {
    let key = match verifier_key {
        Some(k) => k,
        None => {
            let path = args.audit_key_file();
            anyhow::ensure!(
                path.exists(),
                "no audit signing key at {}: pass --verifier-key (from GET /v1/audit/public-key)",
                path.display()
            );
            audit_signer(args)?.verifier_key()
        }
    };
    let store = store(args).await?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} entries verified ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let report = steward_service::verify_log(&store, &key, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await
    .map_err(|e| anyhow::anyhow!("reading the audit log: {e}"))?;
    bar.finish_and_clear();
    let log_ok = match report.first_bad {
        None => {
            println!(
                "audit log OK: {} and {} signed checkpoints verified in {:.2} s",
                entries(report.entries),
                report.checkpoints,
                started.elapsed().as_secs_f64()
            );
            true
        }
        Some((index, why)) => {
            eprintln!("audit log FAILED at entry {index}: {why}");
            false
        }
    };
    let outbox_ok = verify_outbox(args, &store).await?;
    if !(log_ok && outbox_ok) {
        return Ok(ExitCode::from(1));
    }
    if report.refused > refused_seen {
        eprintln!(
            "audit log records {} for pending entries the server refused as tampered (action \
             {}; the rows as they were are in audit_outbox_refused); once investigated, pass \
             --refused-seen {}",
            entries(report.refused),
            steward_service::OUTBOX_REFUSED,
            report.refused
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// The pending entries' tags, where the master key is (their key is wrapped by it); whether
/// none failed.
async fn verify_outbox(args: &StoreArgs, store: &steward_store::DynStore) -> anyhow::Result<bool> {
    let key_file = args.key_file();
    if !key_file.exists() {
        eprintln!(
            "pending entries not checked: no master key at {} (their tags are keyed by it)",
            key_file.display()
        );
        return Ok(true);
    }
    let (keyring, _) = steward_service::keys::load_keyring(&key_file, false)
        .with_context(|| "loading the master key")?;
    let check = steward_service::check_outbox(store, &keyring)
        .await
        .map_err(|e| anyhow::anyhow!("checking the pending entries: {e}"))?;
    if let Some((mark, highest)) = check.mark_ahead {
        eprintln!(
            "pending entries FAILED: the drain's mark ({mark}) stands past every outbox number \
             ever given ({highest}): entries written from now on would be skipped, never appended"
        );
        return Ok(false);
    }
    if check.tampered.is_empty() {
        println!(
            "pending entries OK: {} waiting to be appended, tags checked",
            entries(check.genuine)
        );
        return Ok(true);
    }
    let seqs: Vec<String> = check.tampered.iter().take(20).map(i64::to_string).collect();
    eprintln!(
        "pending entries FAILED: {} with a missing or wrong tag, changed or inserted after they \
         were written (outbox seq {}{}); the server refuses them and records that it did",
        entries(check.tampered.len() as u64),
        seqs.join(", "),
        if check.tampered.len() > 20 {
            ", …"
        } else {
            ""
        }
    );
    Ok(false)
}

/// `steward audit export --out FILE`: the latest signed checkpoint and the entries it covers.
pub async fn export(args: &StoreArgs, out: &Path) -> anyhow::Result<ExitCode> {
    let store = store(args).await?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file = opts
        .open(out)
        .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let bar = bar("{bar:40} {pos}/{len} entries exported");
    let n = steward_service::export_audit(&store, &mut w, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await
    .map_err(|e| anyhow::anyhow!("exporting the audit log: {e}"))?;
    bar.finish_and_clear();
    println!(
        "exported {} and their signed checkpoint to {}",
        entries(n),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `steward audit verify-export FILE --verifier-key KEY`: no database, no master key.
pub fn verify_export(file: &Path, verifier_key: &str) -> anyhow::Result<ExitCode> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    match steward_service::verify_export(std::io::BufReader::new(f), verifier_key) {
        Ok(r) if r.first_bad.is_none() => {
            println!("export OK: {} match the signed checkpoint", entries(r.size));
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            let (at, why) = r.first_bad.unwrap_or_default();
            eprintln!("export FAILED at entry {at}: {why}");
            Ok(ExitCode::from(1))
        }
        Err(why) => {
            eprintln!("export FAILED: {why}");
            Ok(ExitCode::from(1))
        }
    }
}
