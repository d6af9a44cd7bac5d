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

/// The service's contexts that have a service of their own, the store traits each may name, and
/// whether its files may also extend the vault (a use that crosses contexts lives on the vault).
/// A context that came to name another's store, or to reach the vault's store handles, would
/// be a second door into that context's data (issue 16, docs/architecture.md).
const CONTEXTS: &[(&str, &[&str], bool)] = &[
    ("door.rs", &["CustomerStore", "AuditStore"], false),
    ("directory.rs", &["DirectoryStore"], false),
    ("notice.rs", &["NoticeStore"], false),
    ("purposes.rs", &["PurposeStore"], false),
    ("audit_trail.rs", &["AuditStore"], false),
    ("audit_search.rs", &[], false),
    ("identity", &["IdentityStore", "SharingStore"], false),
    ("consent.rs", &["ConsentStore"], true),
    ("customer_keys.rs", &["KeyStore"], false),
    ("alerts.rs", &["AlertStore"], false),
    ("webhooks.rs", &["SharingStore"], false),
    ("shared_limits.rs", &["ClusterStore"], false),
    ("erasure.rs", &["ErasureStore", "MaintenanceStore"], true),
    ("records", &["CustomerStore", "ActivityStore"], false),
    ("agreements.rs", &["SharingStore"], false),
    (
        "personalise.rs",
        &["PersonalisationStore", "SegmentStore"],
        false,
    ),
    ("segments.rs", &["SegmentStore"], false),
    ("analytics.rs", &["AnalyticsStore"], false),
    ("surveys.rs", &["SurveyStore"], false),
    ("sharing.rs", &["SharingStore"], false),
    ("outreach", &["CampaignStore", "MessageStore"], false),
    ("requests", &["RightsStore"], false),
];

/// The Rust files of `path` (a file, or every file under a directory).
fn rust_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).expect("a context's directory") {
        out.extend(rust_files(&e.expect("a directory entry").path()));
    }
    out
}

#[test]
fn contexts_reach_only_their_own_stores() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/src");
    // Every store trait the store crate declares (in any file, indented or not), the trait that
    // is all of them, and its handle's alias: a context holding one would reach every context.
    let store_traits: BTreeSet<String> = {
        let mut names = BTreeSet::from(["DynStore".to_owned()]);
        let store_src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/src");
        for f in rust_files(&store_src) {
            let text = std::fs::read_to_string(&f).expect("a store file");
            names.extend(
                text.lines()
                    .filter_map(|l| l.trim_start().strip_prefix("pub trait "))
                    .filter_map(|l| l.split([':', ' ', '<', '{']).next())
                    .filter(|n| n.ends_with("Store"))
                    .map(str::to_owned),
            );
        }
        names
    };
    // The scan must know the traits it looks for, or it would pass by finding nothing.
    for t in [
        "CustomerStore",
        "DirectoryStore",
        "ConsentStore",
        "AuditStore",
        "ClusterStore",
        "Store",
        "DynStore",
    ] {
        assert!(store_traits.contains(t), "the store no longer declares {t}");
    }
    for (context, allowed, extends_vault) in CONTEXTS {
        let files = rust_files(&src.join(context));
        assert!(!files.is_empty(), "{context} is gone: update CONTEXTS");
        for f in files {
            // The code only: a comment reaches nothing, and prose says "Stores" and "Vault {".
            let text: String = std::fs::read_to_string(&f)
                .expect("a context's file")
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let name = f.display();
            for t in &store_traits {
                let word = |c: char| c.is_alphanumeric() || c == '_';
                let named = text.match_indices(t.as_str()).any(|(i, _)| {
                    !text[..i].ends_with(word) && !text[i + t.len()..].starts_with(word)
                });
                assert!(
                    !named || allowed.contains(&t.as_str()),
                    "{name} names {t}, another context's store: ask that context's service"
                );
            }
            for handle in [".stores", "stores:", "Stores", "inner."] {
                assert!(
                    !text.contains(handle),
                    "{name} reaches the vault's store handles ({handle}): hold the store in the context's service"
                );
            }
            if !extends_vault {
                for vault in ["impl Vault", "impl crate::Vault", "vault::Vault", "Vault {"] {
                    assert!(
                        !text.contains(vault),
                        "{name} extends or builds the vault ({vault}): a context's functions belong to its service"
                    );
                }
            }
        }
    }
}
