//! Tamper evidence: a thousand random changes to the stored audit log, made directly in the
//! database — a byte of any column of any audit table (the by-customer index included), a
//! deleted, reordered, inserted or truncated row, a moved head or watermark — and
//! `audit verify` finds every one, naming an entry.

use serde_json::json;
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token};
use crate::support::{TestDb, backend_tests};

backend_tests!(audit_verify_detects_every_tampering);

/// A small deterministic generator (xorshift64*): the failing mutation can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

async fn exec(pool: &sqlx::AnyPool, sql: &str, binds: Vec<Bind>) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for b in binds {
        q = match b {
            Bind::I(i) => q.bind(i),
            Bind::B(b) => q.bind(b),
            Bind::T(t) => q.bind(t),
            Bind::NullB => q.bind(None::<Vec<u8>>),
        };
    }
    q.execute(pool).await.unwrap();
}

#[derive(Clone, Debug)]
enum Bind {
    I(i64),
    B(Vec<u8>),
    T(String),
    NullB,
}

#[derive(Clone, Debug)]
struct Entry {
    idx: i64,
    leaf: Vec<u8>,
    at: i64,
    action: String,
    customer: Option<Vec<u8>>,
    hashes: Vec<u8>,
}

async fn entries(pool: &sqlx::AnyPool) -> Vec<Entry> {
    sqlx::query(
        "SELECT idx, leaf, occurred_at, action, customer_id, hashes FROM audit_entries ORDER BY idx",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| Entry {
        idx: r.get(0),
        leaf: r.get(1),
        at: r.get(2),
        action: r.get(3),
        customer: r.get(4),
        hashes: r.get(5),
    })
    .collect()
}

fn entry_binds(e: &Entry) -> Vec<Bind> {
    vec![
        Bind::I(e.idx),
        Bind::B(e.leaf.clone()),
        Bind::I(e.at),
        Bind::T(e.action.clone()),
        e.customer.clone().map(Bind::B).unwrap_or(Bind::NullB),
        Bind::B(e.hashes.clone()),
    ]
}

const INSERT_ENTRY: &str = "INSERT INTO audit_entries (idx, leaf, occurred_at, action, customer_id, hashes) VALUES ($1, $2, $3, $4, $5, $6)";

type Undo = Vec<(String, Vec<Bind>)>;

/// The statements that put entry `e` back as it was.
fn restore_entry(e: &Entry) -> Undo {
    vec![
        (
            "DELETE FROM audit_entries WHERE idx = $1".to_owned(),
            vec![Bind::I(e.idx)],
        ),
        (INSERT_ENTRY.to_owned(), entry_binds(e)),
    ]
}

/// Sets one column of entry `e`; returns how to undo it.
async fn set_entry(pool: &sqlx::AnyPool, e: &Entry, column: &str, value: Bind) -> Undo {
    let sql = format!("UPDATE audit_entries SET {column} = $1 WHERE idx = $2");
    exec(pool, &sql, vec![value, Bind::I(e.idx)]).await;
    restore_entry(e)
}

/// One bit of `bytes` flipped.
fn flip(mut bytes: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    let at = rng.below(bytes.len() as u64) as usize;
    bytes[at] ^= 1 << rng.below(8);
    bytes
}

/// Applies mutation `kind`; returns the statements that undo it.
async fn mutate(pool: &sqlx::AnyPool, rng: &mut Rng, kind: u64) -> Undo {
    let all = entries(pool).await;
    let n = all.len() as u64;
    let e = all[rng.below(n) as usize].clone();
    match kind {
        // A byte of the leaf.
        0 => set_entry(pool, &e, "leaf", Bind::B(flip(e.leaf.clone(), rng))).await,
        // The copies kept beside the leaf.
        1 => {
            exec(
                pool,
                "UPDATE audit_entries SET occurred_at = occurred_at + 1 WHERE idx = $1",
                vec![Bind::I(e.idx)],
            )
            .await;
            restore_entry(&e)
        }
        2 => set_entry(pool, &e, "action", Bind::T(format!("{}x", e.action))).await,
        3 => {
            let mut c = e.customer.clone().unwrap_or_else(|| vec![0; 16]);
            c[rng.below(16) as usize] ^= 0x40;
            set_entry(pool, &e, "customer_id", Bind::B(c)).await
        }
        // A byte of the tree hashes stored with an entry.
        4 => set_entry(pool, &e, "hashes", Bind::B(flip(e.hashes.clone(), rng))).await,
        // The head.
        5 => {
            let delta = if rng.below(2) == 0 { 1 } else { -1 };
            exec(
                pool,
                "UPDATE audit_head SET size = size + $1 WHERE id = 1",
                vec![Bind::I(delta)],
            )
            .await;
            vec![(
                "UPDATE audit_head SET size = size - $1 WHERE id = 1".to_owned(),
                vec![Bind::I(delta)],
            )]
        }
        // A character of a signed checkpoint (ASCII for ASCII, so the text stays valid).
        6 => {
            let notes: Vec<(i64, String)> = sqlx::query("SELECT size, note FROM audit_checkpoints")
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let (size, note) = notes[rng.below(notes.len() as u64) as usize].clone();
            let ascii: Vec<usize> = note
                .char_indices()
                .filter(|(_, c)| c.is_ascii_alphanumeric())
                .map(|(i, _)| i)
                .collect();
            let at = ascii[rng.below(ascii.len() as u64) as usize];
            let mut bytes = note.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bytes).unwrap();
            exec(
                pool,
                "UPDATE audit_checkpoints SET note = $1 WHERE size = $2",
                vec![Bind::T(bad), Bind::I(size)],
            )
            .await;
            vec![(
                "UPDATE audit_checkpoints SET note = $1 WHERE size = $2".to_owned(),
                vec![Bind::T(note), Bind::I(size)],
            )]
        }
        // Delete an entry.
        7 => {
            exec(
                pool,
                "DELETE FROM audit_entries WHERE idx = $1",
                vec![Bind::I(e.idx)],
            )
            .await;
            vec![(INSERT_ENTRY.to_owned(), entry_binds(&e))]
        }
        // A tree hash taken away.
        8 => {
            let h = e.hashes[..e.hashes.len() - 32].to_vec();
            set_entry(pool, &e, "hashes", Bind::B(h)).await
        }
        // Reorder: two entries trade places.
        9 => {
            let other = loop {
                let o = all[rng.below(n) as usize].clone();
                if o.leaf != e.leaf {
                    break o;
                }
            };
            let swapped_e = Entry {
                idx: e.idx,
                ..other.clone()
            };
            let swapped_o = Entry {
                idx: other.idx,
                ..e.clone()
            };
            for x in [&e, &other] {
                exec(
                    pool,
                    "DELETE FROM audit_entries WHERE idx = $1",
                    vec![Bind::I(x.idx)],
                )
                .await;
            }
            exec(pool, INSERT_ENTRY, entry_binds(&swapped_e)).await;
            exec(pool, INSERT_ENTRY, entry_binds(&swapped_o)).await;
            let mut undo = restore_entry(&e);
            undo.extend(restore_entry(&other));
            undo
        }
        // Insert: an extra entry after the last.
        10 => {
            let extra = Entry {
                idx: n as i64,
                ..e.clone()
            };
            exec(pool, INSERT_ENTRY, entry_binds(&extra)).await;
            vec![(
                "DELETE FROM audit_entries WHERE idx = $1".to_owned(),
                vec![Bind::I(n as i64)],
            )]
        }
        // A tree hash added.
        11 => {
            let mut h = e.hashes.clone();
            h.extend_from_slice(&[7; 32]);
            set_entry(pool, &e, "hashes", Bind::B(h)).await
        }
        // The by-customer index: a byte of a row, a deleted row, a moved watermark.
        13 | 14 => {
            let rows: Vec<(Vec<u8>, i64)> =
                sqlx::query("SELECT customer_id, idx FROM audit_by_customer")
                    .fetch_all(pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
            let (c, i) = rows[rng.below(rows.len() as u64) as usize].clone();
            let undo = vec![
                (
                    "DELETE FROM audit_by_customer WHERE idx = $1".to_owned(),
                    vec![Bind::I(i)],
                ),
                (
                    "INSERT INTO audit_by_customer (customer_id, idx) VALUES ($1, $2)".to_owned(),
                    vec![Bind::B(c.clone()), Bind::I(i)],
                ),
            ];
            if kind == 13 {
                let mut bad = c.clone();
                bad[rng.below(16) as usize] ^= 1 << rng.below(8);
                exec(pool, "UPDATE audit_by_customer SET customer_id = $1 WHERE customer_id = $2 AND idx = $3", vec![Bind::B(bad), Bind::B(c), Bind::I(i)]).await;
            } else {
                exec(
                    pool,
                    "DELETE FROM audit_by_customer WHERE customer_id = $1 AND idx = $2",
                    vec![Bind::B(c), Bind::I(i)],
                )
                .await;
            }
            undo
        }
        15 => {
            let delta = 1 + rng.below(5) as i64;
            let delta = if rng.below(2) == 0 { delta } else { -delta };
            exec(
                pool,
                "UPDATE audit_index_state SET indexed = indexed + $1 WHERE id = 1",
                vec![Bind::I(delta)],
            )
            .await;
            vec![(
                "UPDATE audit_index_state SET indexed = indexed - $1 WHERE id = 1".to_owned(),
                vec![Bind::I(delta)],
            )]
        }
        // Truncate the tail of the log.
        _ => {
            let from = 1 + rng.below(n - 1) as i64;
            exec(
                pool,
                "DELETE FROM audit_entries WHERE idx >= $1",
                vec![Bind::I(from)],
            )
            .await;
            all.iter()
                .filter(|x| x.idx >= from)
                .map(|x| (INSERT_ENTRY.to_owned(), entry_binds(x)))
                .collect()
        }
    }
}

async fn audit_verify_detects_every_tampering(db: TestDb) {
    let (v, _, store) = db.open().await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let r = steward_api::router(v.clone());
    let id = new_customer(&r, &support, json!({"name": "Tess Tamper"})).await;
    for (i, purpose) in [
        "service",
        "order_fulfilment",
        "analytics",
        "fraud_prevention",
    ]
    .iter()
    .cycle()
    .take(30)
    .enumerate()
    {
        call(
            &r,
            &support,
            "GET",
            &format!("/v1/customers/{id}?purpose={purpose}"),
            None,
            false,
        )
        .await;
        if i % 7 == 0 {
            v.audit().checkpoint().await.unwrap();
        }
    }
    v.audit().checkpoint().await.unwrap();
    v.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    assert_eq!(store.index_audit(1000).await.unwrap(), size);
    let key = v.audit().verifier_key().to_owned();
    let store = store.clone();
    let verify = || async {
        steward_service::verify_log(&store, &key, |_, _| {})
            .await
            .unwrap()
    };
    assert_eq!(verify().await.first_bad, None, "the untouched log verifies");
    // The vault's writer must not run while the log is being mutated: its periodic indexing
    // would index a planted entry, and the undo would then leave an index row past the log.
    drop(r);
    drop(v);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let pool = db.raw_log().await;
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ u64::from(db.kind == crate::support::Kind::Postgres));
    let mut missed = Vec::new();
    const MUTATIONS: u64 = 1000;
    for m in 0..MUTATIONS {
        let kind = m % 16;
        let undo = mutate(&pool, &mut rng, kind).await;
        let report = verify().await;
        if report.first_bad.is_none() {
            missed.push(format!("mutation {m} (kind {kind})"));
        }
        for (sql, binds) in undo {
            exec(&pool, &sql, binds).await;
        }
        if m % 100 == 99 {
            assert_eq!(
                verify().await.first_bad,
                None,
                "restored after mutation {m}"
            );
        }
    }
    assert!(missed.is_empty(), "undetected: {missed:?}");

    // A run struck off the list of runs: the access log no longer reads its rows, and neither
    // does the check.
    let (run, level): (i64, i64) = {
        let row = sqlx::query(
            "SELECT run, CAST(level AS BIGINT) FROM audit_index_runs \
             WHERE run = (SELECT MAX(run) FROM audit_by_customer)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (row.get(0), row.get(1))
    };
    exec(
        &pool,
        "DELETE FROM audit_index_runs WHERE run = $1",
        vec![Bind::I(run)],
    )
    .await;
    assert!(
        verify().await.first_bad.is_some(),
        "a run struck off the list"
    );
    exec(
        &pool,
        "INSERT INTO audit_index_runs (run, level) VALUES ($1, $2)",
        vec![Bind::I(run), Bind::I(level)],
    )
    .await;
    assert_eq!(verify().await.first_bad, None, "the run listed again");
    // Rows moved to a run that is not listed: hidden from the access log, and from the check.
    exec(
        &pool,
        "UPDATE audit_by_customer SET run = 999999 WHERE run = $1",
        vec![Bind::I(run)],
    )
    .await;
    assert!(
        verify().await.first_bad.is_some(),
        "rows moved to an unlisted run"
    );
    exec(
        &pool,
        "UPDATE audit_by_customer SET run = $1 WHERE run = 999999",
        vec![Bind::I(run)],
    )
    .await;
    assert_eq!(verify().await.first_bad, None, "the rows moved back");

    // The binary reports the first bad entry and exits non-zero.
    let undo = mutate(&pool, &mut rng, 0).await;
    let (code, out, err) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("audit log FAILED at entry"), "{err}");
    for (sql, binds) in undo {
        exec(&pool, &sql, binds).await;
    }
    let (code, out, err) = crate::support::run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
}
