use serde_json::json;

use super::noise::tests::Seeded;
use super::*;

fn query(v: serde_json::Value) -> Result<Query, ValidationError> {
    serde_json::from_value::<QueryInput>(v)
        .map_err(|e| ValidationError::new("body", e.to_string()))?
        .validate()
}

fn field(v: serde_json::Value) -> String {
    query(v).unwrap_err().field.into_owned()
}

#[test]
fn bad_queries_name_their_field() {
    let base = || json!({"metric": "count", "of": "purchases", "epsilon": 0.5});
    assert!(query(base()).is_ok());
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    assert_eq!(field(with("epsilon", json!(0))), "epsilon");
    assert_eq!(field(with("epsilon", json!(-1))), "epsilon");
    assert_eq!(field(with("epsilon", json!(0.0009))), "epsilon");
    assert_eq!(field(with("group_by", json!(["channel"]))), "group_by");
    assert_eq!(
        field(with("group_by", json!(["month", "month"]))),
        "group_by"
    );
    assert_eq!(field(with("bounds", json!([0, 10]))), "bounds");
    assert_eq!(field(with("delta", json!(1e-6))), "delta");
    assert_eq!(field(with("contributions", json!(0))), "contributions");
    assert_eq!(field(with("contributions", json!(101))), "contributions");
    assert_eq!(field(with("currency", json!("chf"))), "currency");
    // A noise scale beyond 10¹³ answers nothing: refused, naming ε.
    let wide = json!({"metric": "sum", "of": "purchases", "epsilon": 0.001,
        "bounds": [0, 1_000_000_000_000i64], "contributions": 100});
    assert_eq!(field(wide), "epsilon");
    assert_eq!(
        field(with("filter", json!({"month": "2026-13"}))),
        "filter.month"
    );
    assert_eq!(
        field(with("filter", json!({"tier": "platinum"}))),
        "filter.tier"
    );
    let sum = json!({"metric": "sum", "of": "purchases", "epsilon": 1, "bounds": [100, 0]});
    assert_eq!(field(sum), "bounds");
    let sum = json!({"metric": "sum", "of": "purchases", "epsilon": 1});
    assert_eq!(field(sum), "bounds");
    let sum = json!({"metric": "sum", "of": "customers", "epsilon": 1, "bounds": [0, 1]});
    assert_eq!(field(sum), "metric");
    let grouped = json!({"metric": "count", "of": "purchases", "epsilon": 1,
        "group_by": ["category"], "delta": 0.1});
    assert_eq!(field(grouped), "delta");
    // Unknown keys are refused by the shape itself.
    assert!(serde_json::from_value::<QueryInput>(with("group_by", json!(["postcode"]))).is_err());
    assert!(serde_json::from_value::<QueryInput>(with("filter", json!({"name": "x"}))).is_err());
}

#[test]
fn epsilon_is_taken_in_thousandths_and_the_key_is_the_whole_body() {
    let a = query(json!({"metric": "count", "of": "purchases", "epsilon": 0.5})).unwrap();
    let b = query(json!({"metric": "count", "of": "purchases", "epsilon": 0.5004})).unwrap();
    let c = query(json!({"metric": "count", "of": "purchases", "epsilon": 0.6})).unwrap();
    assert_eq!(a.epsilon_milli, 500);
    assert_eq!(a.canonical(), b.canonical());
    assert_ne!(a.canonical(), c.canonical());
    let grouped =
        query(json!({"metric": "count", "of": "purchases", "epsilon": 1, "group_by": ["month"]}))
            .unwrap();
    assert_eq!(grouped.delta_nano, DEFAULT_DELTA_NANO);
    assert_ne!(
        grouped.canonical(),
        query(json!({"metric": "count", "of": "purchases",
        "epsilon": 1, "group_by": ["month"], "delta": 1e-7}))
        .unwrap()
        .canonical()
    );
}

#[test]
fn rows_are_filtered_and_crossed() {
    let q = query(json!({"metric": "count", "of": "purchases", "epsilon": 1,
        "group_by": ["segment", "tier"], "filter": {"category": "watch"}}))
    .unwrap();
    let values = |k: GroupKey| match k {
        GroupKey::Segment => vec!["a".to_owned(), "b".to_owned()],
        GroupKey::Tier => vec!["gold".to_owned()],
        GroupKey::Category => vec!["watch".to_owned()],
        _ => vec![],
    };
    let rows = q.rows_of(&values, 1);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].group, ["b", "gold"]);
    let other = |k: GroupKey| match k {
        GroupKey::Category => vec!["ring".to_owned()],
        _ => vec!["x".to_owned()],
    };
    assert!(q.rows_of(&other, 1).is_empty());
}

#[test]
fn one_customer_moves_a_count_by_at_most_c() {
    // A customer with 10,000 purchases in one group adds exactly C to it, whatever they did.
    let q = query(json!({"metric": "count", "of": "purchases", "epsilon": 1,
        "contributions": 5}))
    .unwrap();
    let mut rng = Seeded(1);
    let mut cells = Cells::default();
    let mut heavy: Vec<Row> = (0..10_000)
        .map(|_| Row {
            group: vec![],
            value: 1,
        })
        .collect();
    cells.add_customer(&mut heavy, q.contributions, None, &mut rng);
    assert_eq!(cells.0[&Vec::<String>::new()].count, 5);
    // Spread over groups, the total is still at most C, and each kept row is a real one.
    let mut spread: Vec<Row> = (0..1000)
        .map(|i| Row {
            group: vec![format!("g{}", i % 50)],
            value: 10_000,
        })
        .collect();
    let mut cells = Cells::default();
    cells.add_customer(&mut spread, 5, Some((0, 100)), &mut rng);
    let total: i64 = cells.0.values().map(|c| c.count).sum();
    assert_eq!(total, 5);
    // Clamped to the bound before adding.
    assert!(cells.0.values().all(|c| c.sum == 100 * c.count));
}

#[test]
fn the_choice_of_rows_kept_is_uniform() {
    let mut rng = Seeded(2);
    let mut hits = [0u32; 4];
    for _ in 0..8_000 {
        let mut rows: Vec<Row> = (0..4)
            .map(|i| Row {
                group: vec![i.to_string()],
                value: 1,
            })
            .collect();
        let mut cells = Cells::default();
        cells.add_customer(&mut rows, 1, None, &mut rng);
        for (g, _) in cells.0 {
            hits[g[0].parse::<usize>().unwrap()] += 1;
        }
    }
    assert!(
        hits.iter().all(|&h| (1_800..2_200).contains(&h)),
        "{hits:?}"
    );
}

#[test]
fn partition_selection_hides_a_group_of_one() {
    let q = query(json!({"metric": "count", "of": "purchases", "epsilon": 1,
        "group_by": ["category"], "contributions": 1}))
    .unwrap();
    let mut cells = Cells::default();
    cells
        .0
        .insert(vec!["rare".into()], Cell { count: 1, sum: 0 });
    cells.0.insert(
        vec!["common".into()],
        Cell {
            count: 5_000,
            sum: 0,
        },
    );
    let mut rng = Seeded(4);
    for _ in 0..2_000 {
        let out = q.release(&cells, &[], &mut rng).unwrap();
        assert_eq!(out.len(), 1, "the rare group was released");
        assert_eq!(out[0].group, ["common"]);
        assert!((out[0].value - 5_000).abs() < 40);
    }
}

#[test]
fn public_groups_are_all_released_even_when_empty() {
    let q = query(json!({"metric": "count", "of": "customers", "epsilon": 1,
        "group_by": ["tier"]}))
    .unwrap();
    let domain = public_domain(&q, &fixed_values).unwrap();
    assert_eq!(domain.len(), 4);
    let mut cells = Cells::default();
    cells
        .0
        .insert(vec!["gold".into()], Cell { count: 3, sum: 0 });
    let out = q.release(&cells, &domain, &mut Seeded(6)).unwrap();
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|r| r.ci95 == 3));
    // A filtered key keeps its one value.
    let q = query(json!({"metric": "count", "of": "customers", "epsilon": 1,
        "group_by": ["tier"], "filter": {"tier": "gold"}}))
    .unwrap();
    assert_eq!(public_domain(&q, &fixed_values).unwrap(), [["gold"]]);
    // No key: one row with an empty group.
    let q = query(json!({"metric": "count", "of": "customers", "epsilon": 1})).unwrap();
    assert_eq!(
        public_domain(&q, &fixed_values).unwrap(),
        [Vec::<String>::new()]
    );
}

#[test]
fn a_sum_is_noised_by_its_bound() {
    let q = query(json!({"metric": "sum", "of": "purchases", "epsilon": 1,
        "bounds": [0, 10_000], "contributions": 2}))
    .unwrap();
    let mut cells = Cells::default();
    cells.0.insert(
        vec![],
        Cell {
            count: 10,
            sum: 50_000,
        },
    );
    let out = q.release(&cells, &[vec![]], &mut Seeded(8)).unwrap();
    // Scale C·max|bound|/ε = 20,000: the interval is about 3·20,000 wide.
    assert!((55_000..65_000).contains(&out[0].ci95), "{}", out[0].ci95);
}

#[test]
fn months_and_windows() {
    assert_eq!(month_of(0), "1970-01");
    assert_eq!(month_of(1_796_083_200_000), "2026-12");
    let now = 1_796_083_200_000;
    assert!(window_start(now) <= now && now < window_end(now));
    assert_eq!(
        window_end(now) - window_start(now),
        WINDOW_DAYS * 86_400_000
    );
}
