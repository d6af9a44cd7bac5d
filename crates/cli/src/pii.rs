//! `steward pii scan FILE`: the detector behind `POST /v1/pii/analyze`, on a local file. Nothing
//! is stored, logged or sent anywhere; the findings go to standard output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use steward_domain::pii::{self, Detector};

/// Options of `steward pii scan`.
#[derive(Args)]
pub struct ScanArgs {
    /// The text file to examine (UTF-8); `-` reads standard input.
    file: PathBuf,
    /// Its language (ISO 639-1 or a BCP 47 tag): selects the regions whose national telephone
    /// numbers are looked for.
    #[arg(long, default_value = "en")]
    language: String,
    /// Print one line per finding (`TYPE start end score text-masked`) instead of JSON.
    #[arg(long)]
    lines: bool,
}

/// Prints the personal data found in a file: a JSON array in the API's shape (offsets in code
/// points), or one line per finding with the value masked. Exit 0 when nothing is found, 1 when
/// something is, 2 on an error — so a script can refuse a file that holds personal data.
pub fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    match scan_file(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn scan_file(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let detector = Detector::for_language(&args.language)
        .map_err(|e| anyhow::anyhow!("--language: {}", e.reason))?;
    let bytes = if args.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .context("reading standard input")?;
        b
    } else {
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 (byte {})",
            args.file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    // A file is not bound by the API's 1 MiB per call: it is examined whole.
    let findings = detector.analyze(&text);
    let results = pii::to_code_points(&text, &findings);
    let mut out = std::io::stdout().lock();
    if args.lines {
        for (f, r) in findings.iter().zip(&results) {
            writeln!(
                out,
                "{} {} {} {:.2} {}",
                r.entity_type.as_str(),
                r.start,
                r.end,
                r.score,
                pii::mask(f.entity_type, &text[f.start..f.end])
            )?;
        }
    } else {
        serde_json::to_writer(&mut out, &results)?;
        writeln!(out)?;
    }
    Ok(if results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
