//! The blind index: keyed MACs of normalised values, and the list of each customer's own.
//!
//! `lookup_index` is keyed (kind, MAC, customer): what search and the duplicate checks ask. Each
//! customer's entries are also listed on one row of `lookup_owners`, so that rectification and
//! erasure delete exactly those entries by key. The list replaced an index on
//! (customer_id, kind) that held every entry a second time: eight B-tree inserts a customer
//! fewer at import (issue 19). Every write of an entry goes through here, so the list and the
//! index change together, in the caller's transaction.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row, Transaction};
use steward_domain::CustomerId;

use crate::sql::{INSERT_CHUNK, id16, values_clause};
use crate::{Backend, Lookup, SqlStore, StoreError, StoreResult};

/// One entry as listed: `kind:` and the MAC in hex without its trailing zero digits (a name
/// bucket is two bytes padded with zeros: listed in four digits, not thirty-two).
fn listed(out: &mut String, l: &Lookup) {
    // A table, not `write!("{b:02x}")`: the formatter cost an import of 1,000,000 customers
    // almost 5 s on the thread that feeds the database (issue 19).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    if !out.is_empty() {
        out.push(';');
    }
    out.push_str(l.kind);
    out.push(':');
    let mut hex = [0u8; 32];
    for (i, b) in l.mac.iter().enumerate() {
        hex[2 * i] = DIGITS[usize::from(b >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    let digits = hex.iter().rposition(|d| *d != b'0').map_or(0, |p| p + 1);
    out.extend(hex[..digits].iter().map(|d| char::from(*d)));
}

/// The entries of a `lookup_owners` row: (kind, MAC). A row that does not parse is an error,
/// never a shorter list: an erasure must not leave an entry behind unseen.
pub(crate) fn parse_listed(text: &str) -> StoreResult<Vec<(String, [u8; 16])>> {
    const BAD: StoreError = StoreError::Corrupt("a customer's list of blind-index entries");
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(';')
        .map(|e| {
            let (kind, hex) = e.split_once(':').ok_or(BAD)?;
            if kind.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BAD);
            }
            // Hex digits only (checked above), so each is one byte and its value is known.
            let mut mac = [0u8; 16];
            for (i, d) in hex.bytes().enumerate() {
                let v = char::from(d).to_digit(16).ok_or(BAD)? as u8;
                mac[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
            }
            Ok((kind.to_owned(), mac))
        })
        .collect()
}

/// What adds to a customer's list when they have one already (an empty list is replaced).
const ADD_TO_LIST: &str = "ON CONFLICT (customer_id) DO UPDATE SET entries = CASE \
     WHEN lookup_owners.entries = '' THEN excluded.entries \
     ELSE lookup_owners.entries || ';' || excluded.entries END";

impl SqlStore {
    /// Inserts blind-index entries, each customer's listed with them.
    pub(crate) async fn insert_lookups(
        &self,
        tx: &mut Transaction<'static, sqlx::Any>,
        customers: &[(CustomerId, &[Lookup])],
    ) -> StoreResult<()> {
        // In index order: MACs are random, and inserting in key order walks the B-tree once, left
        // to right, instead of hopping between pages; the customer too, as many customers share
        // a name bucket. Kinds are ranked first so that the sort compares bytes, not strings.
        let mut kinds: Vec<&'static str> = customers
            .iter()
            .flat_map(|(_, ls)| ls.iter().map(|l| l.kind))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        let rank = |kind: &'static str| kinds.binary_search(&kind).unwrap_or(kinds.len());
        let mut entries: Vec<(usize, [u8; 16], CustomerId, &'static str)> = customers
            .iter()
            .flat_map(|(id, ls)| ls.iter().map(move |l| (rank(l.kind), l.mac, *id, l.kind)))
            .collect();
        entries.sort_unstable_by_key(|e| (e.0, e.1, e.2));
        for chunk in entries.chunks(INSERT_CHUNK) {
            // An entry already there (written unlisted, e.g. by an older server during an
            // upgrade) is kept and listed below, so the next rectification or erasure deletes it.
            let sql = format!(
                "INSERT INTO lookup_index (kind, mac, customer_id) VALUES {} ON CONFLICT DO NOTHING",
                values_clause(self.backend, chunk.len(), 3)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (_, mac, id, kind) in chunk {
                q = q
                    .bind(*kind)
                    .bind(mac.to_vec())
                    .bind(id.as_bytes().to_vec());
            }
            q.execute(&mut **tx).await?;
        }
        // One row per customer (PostgreSQL refuses a statement that upserts a row twice), in
        // id order: new ids are time-ordered, so an import appends to the list's B-tree.
        let mut lists: Vec<(CustomerId, String)> = customers
            .iter()
            .filter(|(_, ls)| !ls.is_empty())
            .map(|(id, ls)| {
                let mut text = String::with_capacity(ls.len() * 40);
                for l in *ls {
                    listed(&mut text, l);
                }
                (*id, text)
            })
            .collect();
        lists.sort_by_key(|(id, _)| *id);
        lists.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1.push(';');
                first.1.push_str(&later.1);
            }
            same
        });
        for chunk in lists.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO lookup_owners (customer_id, entries) VALUES {} {ADD_TO_LIST}",
                values_clause(self.backend, chunk.len(), 2)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, text) in chunk {
                q = q.bind(id.as_bytes().to_vec()).bind(text.clone());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Customer `id`'s listed entries (none if they have no list).
    async fn listed_of(
        conn: &mut sqlx::AnyConnection,
        id: CustomerId,
    ) -> StoreResult<Vec<(String, [u8; 16])>> {
        let row = sqlx::query("SELECT entries FROM lookup_owners WHERE customer_id = $1")
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(r) => parse_listed(&r.try_get::<String, _>(0)?),
            None => Ok(Vec::new()),
        }
    }

    /// Deletes every blind-index entry of customer `id`, and their list.
    pub(crate) async fn delete_lookups(
        tx: &mut Transaction<'static, sqlx::Any>,
        id: CustomerId,
    ) -> StoreResult<()> {
        let idb = id.as_bytes().to_vec();
        for (kind, mac) in Self::listed_of(tx, id).await? {
            sqlx::query(
                "DELETE FROM lookup_index WHERE kind = $1 AND mac = $2 AND customer_id = $3",
            )
            .bind(kind)
            .bind(mac.to_vec())
            .bind(idb.clone())
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("DELETE FROM lookup_owners WHERE customer_id = $1")
            .bind(idb)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Other customers sharing one of `id`'s entries of `kinds` (at most 20, in id order).
    pub(crate) async fn sharing_lookups_impl(
        &self,
        id: CustomerId,
        kinds: &[&str],
    ) -> StoreResult<Vec<CustomerId>> {
        let mut conn = self.pool.acquire().await?;
        let mut found: Vec<CustomerId> = Vec::new();
        for (kind, mac) in Self::listed_of(&mut conn, id).await? {
            if !kinds.contains(&kind.as_str()) {
                continue;
            }
            let rows = sqlx::query(
                "SELECT customer_id FROM lookup_index WHERE kind = $1 AND mac = $2 \
                 AND customer_id <> $3 ORDER BY customer_id LIMIT 20",
            )
            .bind(kind)
            .bind(mac.to_vec())
            .bind(id.as_bytes().to_vec())
            .fetch_all(&mut *conn)
            .await?;
            for r in &rows {
                let c = id16(r.try_get(0)?, CustomerId::from_slice)?;
                if !found.contains(&c) {
                    found.push(c);
                }
            }
        }
        found.sort_unstable();
        found.truncate(20);
        Ok(found)
    }

    /// Customers (not erased) after `after` with no entry of `kind` listed, in id order.
    pub(crate) async fn missing_lookup_impl(
        &self,
        kind: &str,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let find = match self.backend {
            Backend::Sqlite => "instr(';' || o.entries, ';' || $1 || ':')",
            Backend::Postgres => "strpos(';' || o.entries, ';' || $1 || ':')",
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT c.id FROM customers c WHERE c.id > $2 AND c.erased_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM lookup_owners o WHERE o.customer_id = c.id AND {find} > 0) \
             ORDER BY c.id LIMIT $3"
        )))
        .bind(kind)
        .bind(after.map(|a| a.as_bytes().to_vec()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| id16(r.try_get(0)?, CustomerId::from_slice))
            .collect()
    }

    /// Adds entries to customers still there and not erased, unless they have an entry of the
    /// kind listed by now (the missing-kind backfill: a rectification may have indexed the
    /// customer since the caller read them, and its entries are the current ones).
    pub(crate) async fn add_lookups_impl(
        &self,
        entries: &[(CustomerId, Lookup)],
    ) -> StoreResult<()> {
        let mut by_customer: BTreeMap<CustomerId, Vec<&Lookup>> = BTreeMap::new();
        for (id, l) in entries {
            by_customer.entry(*id).or_default().push(l);
        }
        let mut tx = self.write_tx().await?;
        // The customer's row is locked first on PostgreSQL, as an erasure and a rectification
        // lock it: one running meanwhile commits first and is seen here. (SQLite's write lock
        // serialises them all.)
        let check = match self.backend {
            Backend::Sqlite => "SELECT 1 FROM customers WHERE id = $1 AND erased_at IS NULL",
            Backend::Postgres => {
                "SELECT 1 FROM customers WHERE id = $1 AND erased_at IS NULL FOR UPDATE"
            }
        };
        let mut adding: Vec<(CustomerId, Vec<Lookup>)> = Vec::new();
        for (id, lookups) in by_customer {
            if sqlx::query(check)
                .bind(id.as_bytes().to_vec())
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
            {
                continue;
            }
            let listed = Self::listed_of(&mut tx, id).await?;
            let indexed_not = |l: &&Lookup| !listed.iter().any(|(kind, _)| kind == l.kind);
            adding.push((
                id,
                lookups.into_iter().filter(indexed_not).cloned().collect(),
            ));
        }
        let adding: Vec<(CustomerId, &[Lookup])> =
            adding.iter().map(|(id, ls)| (*id, ls.as_slice())).collect();
        self.insert_lookups(&mut tx, &adding).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What is listed parses back to the same entries, in order.
        #[test]
        fn listed_entries_parse_back(entries in proptest::collection::vec(
            (prop::sample::select(vec!["email", "phone", "name2", "name3", "social"]), any::<[u8; 16]>()),
            0..12,
        )) {
            let mut text = String::new();
            for (kind, mac) in &entries {
                listed(&mut text, &Lookup { kind, mac: *mac });
            }
            let back = parse_listed(&text).unwrap();
            let want: Vec<(String, [u8; 16])> =
                entries.iter().map(|(k, m)| ((*k).to_owned(), *m)).collect();
            prop_assert_eq!(back, want);
        }
    }

    #[test]
    fn uppercase_hex_from_the_migration_parses() {
        let got = parse_listed("email:00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(got[0].0, "email");
        assert_eq!(got[0].1[15], 0xff);
    }

    #[test]
    fn a_name_bucket_is_listed_short() {
        let mut text = String::new();
        let mut mac = [0u8; 16];
        mac[..2].copy_from_slice(&[0x0a, 0x70]);
        listed(&mut text, &Lookup { kind: "name3", mac });
        listed(
            &mut text,
            &Lookup {
                kind: "name2",
                mac: [0; 16],
            },
        );
        assert_eq!(text, "name3:0a7;name2:");
        let back = parse_listed(&text).unwrap();
        assert_eq!(
            back,
            vec![("name3".to_owned(), mac), ("name2".to_owned(), [0; 16])]
        );
    }

    #[test]
    fn a_damaged_list_is_an_error_not_a_shorter_list() {
        for bad in [
            "email",
            ":00112233445566778899aabbccddeeff",
            "email:00112233445566778899aabbccddeeff0",
            "email:00112233445566778899aabbccddeefg",
            "email:00112233445566778899aabbccddeeff;",
            "email:00112233445566778899aabbccddeeéé",
            "email:+0112233445566778899aabbccddeeff",
        ] {
            assert!(parse_listed(bad).is_err(), "{bad}");
        }
    }
}
