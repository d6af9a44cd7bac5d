//! The workspace's dependency edges against the layer rules of `docs/architecture.md`: a crate
//! that gains a dependency its layer may not have fails here, so the HTTP layer cannot come to
//! reach the store or the keys (issue 16).

use std::collections::{BTreeMap, BTreeSet};

/// Which Steward crates each crate may depend on (normal, build and dev dependencies alike).
/// The binary is the composition root and wires everything; the fuzz harnesses drive any layer.
fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let set = |v: &[&'static str]| v.iter().copied().collect::<BTreeSet<_>>();
    BTreeMap::from([
        ("steward-domain", set(&[])),
        ("steward-crypto", set(&[])),
        ("steward-policy", set(&["steward-domain"])),
        ("steward-store", set(&["steward-domain"])),
        (
            "steward-service",
            set(&[
                "steward-domain",
                "steward-crypto",
                "steward-store",
                "steward-policy",
            ]),
        ),
        // The HTTP layer: the services and the domain's types, nothing beneath.
        ("steward-api", set(&["steward-domain", "steward-service"])),
        (
            "steward",
            set(&[
                "steward-domain",
                "steward-crypto",
                "steward-store",
                "steward-policy",
                "steward-service",
                "steward-api",
            ]),
        ),
        (
            "steward-fuzz",
            set(&[
                "steward-domain",
                "steward-crypto",
                "steward-policy",
                "steward-service",
                "steward-api",
            ]),
        ),
    ])
}

/// Each workspace crate's Steward dependencies, as `cargo metadata` reads the manifests.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["name"].as_str())
                .filter(|n| n.starts_with("steward"))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependency_edges_follow_the_layer_rules() {
    let rules = allowed();
    let edges = edges();
    for (krate, deps) in &edges {
        let allowed = rules.get(krate.as_str()).unwrap_or_else(|| {
            panic!("{krate} has no layer rule: add it here and to docs/architecture.md")
        });
        for d in deps {
            assert!(
                allowed.contains(d.as_str()),
                "{krate} depends on {d}, which its layer may not (docs/architecture.md)"
            );
        }
    }
    // The rule this test exists for, said plainly.
    let api = &edges["steward-api"];
    assert!(!api.contains("steward-store") && !api.contains("steward-crypto"));
    assert!(
        rules.keys().all(|k| edges.contains_key(*k)),
        "a rule names a crate that is gone"
    );
}
