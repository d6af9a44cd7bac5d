//! `steward bench all`: every benchmark in one run, one table per benchmark, written into the
//! generated section of `docs/benchmarks.md` with the machine and the date.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

/// Marks the part of the benchmarks file this command owns; the rest is kept as written.
const BEGIN: &str = "<!-- steward bench all: begin (generated; edit outside these markers) -->";
const END: &str = "<!-- steward bench all: end -->";

/// Sizes of one run.
struct Sizes {
    import: (usize, usize),
    read: (usize, u64, usize, usize),
    crypto: usize,
    policy: usize,
    audit: (u64, usize, usize),
    erasure: (usize, usize, usize),
    export: (usize, usize),
}

const FULL: Sizes = Sizes {
    import: (1_000_000, 50_000),
    read: (10_000, 3, 32, 10),
    crypto: 200_000,
    policy: 20_000,
    audit: (1_000_000, 500, 2_000),
    erasure: (500, 3, 100_000),
    export: (10_000, 20),
};

/// Under two minutes on a 2-core machine: the same benchmarks, smaller.
const QUICK: Sizes = Sizes {
    import: (50_000, 25_000),
    read: (2_000, 1, 32, 2),
    crypto: 20_000,
    policy: 5_000,
    audit: (100_000, 500, 500),
    erasure: (100, 1, 10_000),
    export: (10_000, 5),
};

/// The machine, as the table's caption gives it.
pub(super) fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    format!("{cores} cores, {mem_gib:.0} GiB, {cpu}, Linux {kernel}")
}

/// Replaces the section of `text` between the markers `begin` and `end` (or appends one).
pub(super) fn splice(text: &str, begin: &str, end: &str, section: &str) -> String {
    match (text.find(begin), text.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!(
                "{}{begin}\n{section}{end}{}",
                &text[..b],
                &text[e + end.len()..]
            )
        }
        _ => format!("{}\n\n{begin}\n{section}{end}\n", text.trim_end()),
    }
}

/// Runs every benchmark; writes the tables into `docs` unless it is `None`.
pub async fn run(quick: bool, docs: Option<&Path>) -> anyhow::Result<()> {
    let s = if quick { QUICK } else { FULL };
    let started = Instant::now();
    let mut tables: Vec<(&str, Vec<String>)> = Vec::new();
    super::take_report();
    let done = |name, tables: &mut Vec<(&str, Vec<String>)>| {
        tables.push((name, super::take_report()));
    };
    super::bench_import(s.import.0, s.import.1)
        .await
        .context("import benchmark")?;
    done("Import (Steward vs a plain table)", &mut tables);
    super::bench_read(s.read.0, s.read.1, s.read.2, s.read.3)
        .await
        .context("read benchmark")?;
    done(
        "Authorised reads over HTTP (Steward vs plain axum + sqlx)",
        &mut tables,
    );
    super::bench_crypto(s.crypto)
        .await
        .context("crypto benchmark")?;
    done("Crypto of one customer", &mut tables);
    super::policy::run(s.policy).context("policy benchmark")?;
    done("Policy decisions", &mut tables);
    super::audit::run(s.audit.0, s.audit.1, s.audit.2)
        .await
        .context("audit benchmark")?;
    done("Audit log", &mut tables);
    super::erasure::run(s.erasure.0, s.erasure.1, s.erasure.2)
        .await
        .context("erasure benchmark")?;
    done("Erasure", &mut tables);
    super::erasure::run_export(s.export.0, s.export.1)
        .await
        .context("export benchmark")?;
    done("Data-subject export", &mut tables);

    let date = time::OffsetDateTime::now_utc().date();
    let mut section = format!(
        "## Latest `steward bench all{}`\n\nMachine: {}. Date: {date}. Took {:.0} s.\n",
        if quick { " --quick" } else { "" },
        machine(),
        started.elapsed().as_secs_f64()
    );
    for (name, lines) in &tables {
        section.push_str(&format!("\n### {name}\n\n"));
        let mut header_done = false;
        for l in lines {
            if !header_done {
                // Every table gets a header row, so Markdown renders it.
                let cols = l.matches('|').count().saturating_sub(1).max(1);
                section.push_str(&format!("{l}\n|{}\n", " --- |".repeat(cols)));
                header_done = true;
            } else if !l.starts_with("| ---") {
                section.push_str(&format!("{l}\n"));
            }
        }
    }
    println!("\n{section}");
    if let Some(path) = docs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, splice(&text, BEGIN, END, &section))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote the tables into {}.", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_section_is_replaced_and_the_rest_kept() {
        let once = splice("# Benchmarks\n\nhand-written\n", BEGIN, END, "table 1\n");
        assert!(once.starts_with("# Benchmarks\n\nhand-written\n"));
        assert!(once.contains(&format!("{BEGIN}\ntable 1\n{END}")));
        let twice = splice(&format!("{once}after\n"), BEGIN, END, "table 2\n");
        assert!(twice.contains("table 2") && !twice.contains("table 1"));
        assert!(twice.starts_with("# Benchmarks\n\nhand-written\n") && twice.ends_with("after\n"));
    }
}
