//! `steward bench search`: searching customers by name over sealed names, and a list page, as a
//! client sees them: the real router over loopback, one connection, one request at a time; beside
//! the naive service a team would otherwise write (plaintext names, `LIKE` on every word), in the
//! same run.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::get;
use sqlx::{AnyPool, AssertSqlSafe, Row};
use steward_domain::{NewCustomer, Role};

use super::{generated, load, plain_import, serve, temp_vault};

/// Given names and family names from many languages: 64 × 129 combinations, so a prefix
/// matches as many customers as it would in a real customer base, not one or all.
const GIVEN: &[&str] = &[
    "Maria", "Mark", "Martin", "Marta", "Mateo", "Max", "Mia", "Michael", "Ana", "Anna", "Andrea",
    "Adam", "Ada", "Ahmed", "Aisha", "Akira", "Li", "Lin", "Lena", "Leon", "Lucas", "Luca",
    "Lucia", "Laura", "Sofia", "Sara", "Samuel", "Sam", "Jan", "Jana", "Johan", "John", "José",
    "Juan", "Julia", "Jonas", "Emma", "Emil", "Elena", "Eva", "Noah", "Nina", "Nora", "Omar",
    "Olga", "Oscar", "Paul", "Pablo", "Petra", "Pierre", "Chloé", "Chen", "Carlos", "Clara",
    "David", "Daniel", "Dora", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
];
const FAMILY: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Taylor",
    "Davies",
    "Evans",
    "Wilson",
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Jansen",
    "de Jong",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Visser",
    "Smit",
    "Nielsen",
    "Jensen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Novák",
    "Svoboda",
    "Novotný",
    "Dvořák",
    "Černý",
    "Procházka",
    "Kučera",
    "Veselý",
    "Nagy",
    "Kovács",
    "Tóth",
    "Szabó",
    "Horváth",
    "Varga",
    "Kiss",
    "Molnár",
    "Popescu",
    "Ionescu",
    "Popa",
    "Ivanov",
    "Petrov",
    "Sidorov",
    "Smirnov",
    "Kuznetsov",
    "Papadopoulos",
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Cohen",
    "Levi",
    "Haddad",
    "Khan",
    "Ali",
    "Hussain",
    "Singh",
    "Kumar",
    "Sharma",
    "Patel",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Sato",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Watanabe",
    "Kim",
    "Lee",
    "Park",
    "Nguyen",
];

/// Percent-encodes a query parameter's value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Customer `n`'s name: a given name and one or two family names.
fn name(n: usize) -> String {
    let given = GIVEN[n % GIVEN.len()];
    let family = FAMILY[(n / GIVEN.len()) % FAMILY.len()];
    if n.is_multiple_of(7) {
        let second = FAMILY[(n / 3) % FAMILY.len()];
        format!("{given} {family} {second}")
    } else {
        format!("{given} {family}")
    }
}

/// Times name searches and list pages over `customers` customers of one outlet.
pub(super) async fn bench_search(customers: usize, seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, url) = temp_vault(dir.path()).await?;
    let outlet = vault
        .directory()
        .create_outlet(operator.into(), "Bench outlet")
        .await?;
    let data: Vec<NewCustomer> = (0..customers)
        .map(|n| NewCustomer {
            name: Some(name(n)),
            outlet_id: Some(outlet),
            ..generated(n)
        })
        .collect();
    eprintln!("Storing {customers} customers…");
    let started = std::time::Instant::now();
    crate::import::store_all(&vault, operator, data.clone(), 50_000, |_| {}).await?;
    vault.audit().flush().await?;
    let stored = started.elapsed().as_secs_f64();
    let pool = steward_store::sqlite::pool(&url).await?;
    plain_import(&pool, &data, None, 50_000).await?;
    let plain = axum::Router::new()
        .route("/plain/customers", get(plain_search))
        .with_state(pool);
    let (plain_addr, plain_handle) = serve(plain).await?;
    let (_, token) = vault
        .identity()
        .create_token(
            operator,
            "bench",
            steward_service::TokenOwner::Role(Role::SupportAgent),
        )
        .await?;
    // Every search reads up to a page of customers; a benchmark reads more than any person.
    vault
        .records()
        .set_bulk_limit(operator, Role::SupportAgent, None);
    let (addr, handle) = serve(steward_api::router(vault.clone())).await?;

    // Queries people type: two letters, three, a given name, a given name and the start of a
    // family name, a family name alone.
    let mut queries = Vec::new();
    for (i, g) in GIVEN.iter().enumerate().step_by(4) {
        let f = FAMILY[(i * 5) % FAMILY.len()];
        let two: String = g.chars().take(2).collect();
        let three: String = g.chars().take(3).collect();
        let family4: String = f.chars().take(4).collect();
        queries.extend([
            two,
            three,
            (*g).to_owned(),
            format!("{g} {family4}"),
            f.to_owned(),
        ]);
    }
    let page = |q: &str| {
        let q = encode(q);
        format!("/v1/customers?purpose=service&outlet_id={outlet}&limit=25&q={q}")
    };
    let search_paths = Arc::new(queries.iter().map(|q| page(q)).collect::<Vec<_>>());
    let list_paths = Arc::new(vec![format!(
        "/v1/customers?purpose=service&outlet_id={outlet}&limit=25"
    )]);
    let plain_paths = Arc::new(
        queries
            .iter()
            .map(|q| {
                let q = encode(q);
                format!("/plain/customers?q={q}")
            })
            .collect::<Vec<_>>(),
    );
    let token = Some(token.to_string());
    load(addr, search_paths.clone(), token.clone(), 1, 1).await?;
    load(plain_addr, plain_paths.clone(), None, 1, 1).await?;
    // Steward, the baseline, Steward again: drift of the machine shows as a gap between the two.
    let search = load(addr, search_paths.clone(), token.clone(), 1, seconds).await?;
    let baseline = load(plain_addr, plain_paths, None, 1, seconds).await?;
    let again = load(addr, search_paths, token.clone(), 1, seconds).await?;
    let list = load(addr, list_paths, token, 1, seconds).await?;
    handle.abort();
    plain_handle.abort();

    emit!(
        "| Search and list, SQLite, {customers} customers in one outlet (stored in {stored:.0} s), one connection, {seconds} s each | | | | |"
    );
    for (label, r) in [
        (
            "Steward name search (`q=`, 25 a page, 80 typed queries)",
            &search,
        ),
        ("plain axum + sqlx, `LIKE` per word (baseline)", &baseline),
        ("Steward name search, again after the baseline", &again),
        ("Steward list page (25, one outlet)", &list),
    ] {
        emit!(
            "| {label} | {:.0} req/s | p50 {:.1} ms | p95 {:.1} ms | p99 {:.1} ms, max {:.1} ms, {} requests, {} errors |",
            r.rate(),
            r.p50_us as f64 / 1000.0,
            r.p95_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.max_us as f64 / 1000.0,
            r.requests,
            r.errors
        );
    }
    anyhow::ensure!(
        [&search, &baseline, &again, &list]
            .iter()
            .all(|r| r.errors == 0),
        "some requests failed"
    );
    Ok(())
}

#[derive(serde::Deserialize)]
struct PlainQuery {
    q: String,
}

/// The naive search: names in clear, each word of the query the start of a word of the name
/// (`LIKE`, which SQLite compares case-insensitively for ASCII), a page of 25.
async fn plain_search(
    State(pool): State<AnyPool>,
    Query(p): Query<PlainQuery>,
) -> Result<Json<serde_json::Value>, axum::http::StatusCode> {
    let words: Vec<String> = p.q.split_whitespace().map(str::to_owned).collect();
    let mut sql = String::from("SELECT name, email, phone FROM plain_customers WHERE 1 = 1");
    for _ in &words {
        sql.push_str(" AND (name LIKE ? || '%' OR name LIKE '% ' || ? || '%')");
    }
    sql.push_str(" ORDER BY id LIMIT 25");
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for w in &words {
        q = q.bind(w.clone()).bind(w.clone());
    }
    let rows = q
        .fetch_all(&pool)
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let s = |i: usize| r.try_get::<Option<String>, _>(i).ok().flatten();
            serde_json::json!({"name": s(0), "email": s(1), "phone": s(2)})
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}
