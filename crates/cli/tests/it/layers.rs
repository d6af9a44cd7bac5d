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
    ("personalise.rs", &["PersonalisationStore"], false),
    ("segments.rs", &["SegmentStore"], false),
    ("analytics.rs", &["AnalyticsStore"], false),
    ("surveys.rs", &["SurveyStore"], false),
    ("sharing.rs", &["SharingStore"], false),
    ("outreach", &["CampaignStore", "MessageStore"], false),
    ("requests", &["RightsStore"], false),
    ("portal_access", &["PortalStore"], false),
];

/// The vault's uses that cross contexts (a request's steps, the portal's, a merge, retention,
/// a customer's export, an unsubscribe link): they call the contexts' services and name no store.
const ORCHESTRATIONS: &[&str] = &[
    "rights.rs",
    "portal.rs",
    "merge.rs",
    "retention.rs",
    "subject_export.rs",
    "unsubscribe.rs",
];

/// The rest of the service, why it is neither, and the store traits it may name: the
/// composition root and its plumbing, pure code, and the operator's tools over the bare store
/// (run by whoever holds the master key).
const ROOT: &[(&str, &[&str], &str)] = &[
    ("lib.rs", &[], "the crate's exports"),
    (
        "vault.rs",
        &["DynStore", "KeyStore", "MaintenanceStore", "ClusterStore"],
        "the composition root: it wires each context to its store",
    ),
    (
        "cluster.rs",
        &["ClusterStore"],
        "hearing the other servers, readiness: the root's own handles",
    ),
    (
        "error.rs",
        &["Store"],
        "errors (a variant named `Store`: a store failure)",
    ),
    ("seal.rs", &[], "pure: how values are sealed"),
    ("guard.rs", &[], "pure: the bulk guard's window"),
    ("import.rs", &[], "pure: CSV parsing and validation"),
    (
        "notify.rs",
        &[],
        "the notifiers (SMTP, the development file)",
    ),
    (
        "audit.rs",
        &["AuditStore", "ClusterStore"],
        "the audit log's writer, held by the door (a checkpoint's lease)",
    ),
    (
        "audit_export.rs",
        &["DynStore"],
        "operator tool: the log's export",
    ),
    (
        "audit_verify.rs",
        &["DynStore"],
        "operator tool: the log's verification",
    ),
    (
        "keys.rs",
        &["DynStore"],
        "operator tool: master-key files and rotation",
    ),
    ("demo.rs", &[], "operator tool: demo data"),
];

#[test]
fn every_service_file_has_a_place() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/src");
    for e in std::fs::read_dir(&src).expect("the service's sources") {
        let name = e
            .expect("an entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let placed = CONTEXTS.iter().any(|(c, _, _)| *c == name)
            || ORCHESTRATIONS.contains(&name.as_str())
            || ROOT.iter().any(|(r, _, _)| *r == name);
        assert!(
            placed,
            "crates/service/src/{name} is in no context: give it a row in CONTEXTS (a service and its store), ORCHESTRATIONS or ROOT"
        );
    }
    let store_traits = store_traits();
    for (r, allowed, _) in ROOT {
        let text = code_of(&src.join(r));
        for t in &store_traits {
            assert!(
                !names_word(&text, t) || allowed.contains(&t.as_str()),
                "{r} names {t}, which ROOT does not give it: a store belongs to its context's service"
            );
        }
        if !["vault.rs", "cluster.rs"].contains(r) {
            for handle in ["stores", "Stores", "inner", "Inner"] {
                assert!(
                    !names_word(&text, handle),
                    "{r} reaches the vault's store handles ({handle}): only the composition root holds them"
                );
            }
        }
    }
    // Ways around the names: a store trait renamed (`use … as`, `type … =`), a store opened
    // anew, a file pulled in from outside this directory.
    for f in rust_files(&src) {
        let text = code_of(&f);
        for t in &store_traits {
            for line in text.lines().filter(|l| names_word(l, t)) {
                let renames = line.contains(" as ")
                    || line.trim_start().starts_with("type ")
                    || line.contains(" type ");
                assert!(
                    !renames,
                    "{} renames {t} ({line}): a store is named as itself, so the check can see it",
                    f.display()
                );
            }
        }
        for way in [
            "steward_store::open",
            "steward_store::sqlite",
            "steward_store::postgres",
            "#[path",
            "include!",
        ] {
            assert!(
                !text.contains(way),
                "{} reaches a store another way ({way})",
                f.display()
            );
        }
    }
    for o in ORCHESTRATIONS {
        let text = code_of(&src.join(o));
        for t in &store_traits {
            assert!(
                !names_word(&text, t),
                "{o} names {t}: a use that crosses contexts calls the contexts' services"
            );
        }
        for handle in ["stores", "Stores"] {
            assert!(
                !names_word(&text, handle),
                "{o} reaches the vault's store handles ({handle}): call the context's service"
            );
        }
    }
}

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

/// Every store trait the store crate declares (in any file, indented or not), the trait that
/// is all of them, and its handle's alias: a context holding one would reach every context.
fn store_traits() -> BTreeSet<String> {
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
}

/// A source file's code: a comment or a string reaches nothing, and prose says "Stores",
/// "Vault {" and "Online Store".
fn code_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .expect("a service file")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| {
            // Every other `"` opens a string: keep what lies outside them (an escaped quote
            // inside a string only shortens what is kept, never hides code that follows a line).
            l.split('"').step_by(2).collect::<Vec<_>>().join("\"\"")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `text` names `word` as a whole identifier.
fn names_word(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word)
        .any(|(i, _)| !text[..i].ends_with(part) && !text[i + word.len()..].starts_with(part))
}

#[test]
fn contexts_reach_only_their_own_stores() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/src");
    let store_traits = store_traits();
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
            let text = code_of(&f);
            let name = f.display();
            for t in &store_traits {
                assert!(
                    !names_word(&text, t) || allowed.contains(&t.as_str()),
                    "{name} names {t}, another context's store: ask that context's service"
                );
            }
            for handle in ["stores", "Stores", "inner", "Inner"] {
                assert!(
                    !names_word(&text, handle),
                    "{name} reaches the vault's store handles ({handle}): hold the store in the context's service"
                );
            }
            assert!(
                *extends_vault || !names_word(&text, "Vault"),
                "{name} names the vault: a context's functions belong to its service, which holds what it asks"
            );
        }
    }
}
