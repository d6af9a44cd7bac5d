//! Personalisation that can say why (issue 20): item-to-item co-purchase over pseudonymous
//! baskets. The model holds, per item, how many distinct consenting customers bought it and, per
//! pair of items, how many bought both — no customer id, no date, no amount. A customer's
//! recommendations are the items most often bought together with their own, each explained by
//! the customer's own purchases that led to it.
//!
//! Hand-written: the method is a few counting loops, and what matters here — the k threshold,
//! exact removal of one customer's contribution, the explanation — is exactly what general
//! recommender crates (latent factors, embeddings) do not offer.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::Timestamp;

/// One item a customer bought: its name and purchase category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Item {
    /// The item as recorded (e.g. `Silver Ring`).
    pub name: String,
    /// Its purchase category (e.g. `rings`).
    pub category: String,
}

/// One customer's contribution: the distinct items they bought, sensitive ones left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Basket(BTreeSet<Item>);

impl Basket {
    /// The distinct items of `purchases` whose category is not sensitive.
    pub fn of<'a>(
        purchases: impl IntoIterator<Item = &'a Item>,
        sensitive: &dyn Fn(&str) -> bool,
    ) -> Self {
        Basket(
            purchases
                .into_iter()
                .filter(|i| !sensitive(&i.category))
                .cloned()
                .collect(),
        )
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Co-purchase counts over the baskets of consenting customers. Items are interned as numbers
/// (the scoring walk touches thousands of pairs per answer; hashing a number, not two strings).
#[derive(Debug, Clone, Default)]
pub struct CoPurchase {
    ids: HashMap<Item, u32>,
    items: Vec<Item>,
    buyers: Vec<u32>,
    pairs: Vec<HashMap<u32, u32>>,
}

/// A recommended item with the customer's own purchases that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    /// The item.
    pub item: String,
    /// Its purchase category.
    pub category: String,
    /// The customer's own purchases it is recommended because of, strongest first.
    pub because: Vec<Because>,
}

/// One of the customer's own purchases behind a recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Because {
    /// The item the customer bought.
    pub item: String,
    /// When they bought it (the latest time).
    pub occurred_at: Timestamp,
}

/// A purchase of the customer asking, as input to their recommendations.
#[derive(Debug, Clone)]
pub struct Owned {
    /// The item.
    pub item: Item,
    /// When it was bought.
    pub occurred_at: Timestamp,
}

impl CoPurchase {
    /// Adds one customer's basket.
    pub fn add(&mut self, basket: &Basket) {
        let ids: Vec<u32> = basket.0.iter().map(|i| self.intern(i)).collect();
        self.apply(&ids, true);
    }

    /// Removes one customer's basket (exactly what [`CoPurchase::add`] added for it).
    pub fn remove(&mut self, basket: &Basket) {
        let ids: Vec<u32> = basket
            .0
            .iter()
            .filter_map(|i| self.ids.get(i).copied())
            .collect();
        self.apply(&ids, false);
    }

    fn intern(&mut self, item: &Item) -> u32 {
        if let Some(id) = self.ids.get(item) {
            return *id;
        }
        let id = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        self.ids.insert(item.clone(), id);
        self.items.push(item.clone());
        self.buyers.push(0);
        self.pairs.push(HashMap::new());
        id
    }

    fn apply(&mut self, ids: &[u32], add: bool) {
        let step = |n: &mut u32| {
            *n = if add {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            }
        };
        for &a in ids {
            let Some(count) = self.buyers.get_mut(a as usize) else {
                continue;
            };
            step(count);
            let Some(row) = self.pairs.get_mut(a as usize) else {
                continue;
            };
            for &b in ids.iter().filter(|b| **b != a) {
                step(row.entry(b).or_default());
            }
            if !add {
                row.retain(|_, n| *n > 0);
            }
        }
    }

    /// How many distinct customers contributed `item`.
    pub fn buyers(&self, item: &Item) -> u32 {
        self.ids
            .get(item)
            .and_then(|i| self.buyers.get(*i as usize))
            .copied()
            .unwrap_or(0)
    }

    /// The items as the model may show them: bought by at least `k` distinct customers.
    pub fn visible_items(&self, k: u32) -> usize {
        self.buyers.iter().filter(|n| **n >= k).count()
    }

    /// Up to `n` items for a customer who bought `own` (whose basket in the model, if any, is
    /// `mine`: left out of the counts, so the answer rests on others alone): items bought by at
    /// least `k` other customers, together with one of theirs by at least `k` other customers
    /// (so a recommendation never reveals another customer's rare purchase or rare pair), not
    /// bought by them already and not `sensitive`, scored by co-purchases relative to the items'
    /// popularity (cosine), each explained by the own purchases that contributed most. Ties
    /// break by item, so the answer is stable.
    pub fn recommend(
        &self,
        own: &[Owned],
        mine: Option<&Basket>,
        k: u32,
        n: usize,
        sensitive: &dyn Fn(&str) -> bool,
    ) -> Vec<Recommendation> {
        let k = k.max(1);
        let mine: HashSet<u32> = mine
            .map(|b| {
                b.0.iter()
                    .filter_map(|i| self.ids.get(i).copied())
                    .collect()
            })
            .unwrap_or_default();
        let others = |id: u32| {
            self.buyers
                .get(id as usize)
                .copied()
                .unwrap_or(0)
                .saturating_sub(u32::from(mine.contains(&id)))
        };
        // Sensitivity is asked once per item met.
        let mut sensitive_memo: HashMap<u32, bool> = HashMap::new();
        let mut is_sensitive = |id: u32| {
            *sensitive_memo.entry(id).or_insert_with(|| {
                self.items
                    .get(id as usize)
                    .is_none_or(|i| sensitive(&i.category))
            })
        };
        // The customer's own items, the latest time each was bought; those the model does not
        // know lead nowhere.
        let mut latest: HashMap<u32, Timestamp> = HashMap::new();
        for o in own.iter().filter(|o| !sensitive(&o.item.category)) {
            let Some(&id) = self.ids.get(&o.item) else {
                continue;
            };
            let t = latest.entry(id).or_insert(o.occurred_at);
            if o.occurred_at > *t {
                *t = o.occurred_at;
            }
        }
        let item = |id: u32| self.items.get(id as usize);
        // Sources in item order: a score is a sum, and its order must not depend on how items
        // happened to be numbered.
        let mut sources: Vec<u32> = latest
            .keys()
            .copied()
            .filter(|id| others(*id) >= k)
            .collect();
        sources.sort_by(|a, b| item(*a).cmp(&item(*b)));
        let mut scores: HashMap<u32, Score> = HashMap::new();
        for source in sources {
            let Some(row) = self.pairs.get(source as usize) else {
                continue;
            };
            let source_buyers = f64::from(others(source));
            for (&other, &together) in row {
                // Not an item of theirs (owned or in their basket), so no pair with it is theirs
                // and `together` counts others alone.
                if together < k
                    || latest.contains_key(&other)
                    || mine.contains(&other)
                    || others(other) < k
                {
                    continue;
                }
                if is_sensitive(other) {
                    continue;
                }
                let s = f64::from(together) / (source_buyers * f64::from(others(other))).sqrt();
                let e = scores.entry(other).or_default();
                e.0 += s;
                e.1.push((s, source));
            }
        }
        let mut ranked: Vec<(u32, Score)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| {
            b.1.0
                .total_cmp(&a.1.0)
                .then_with(|| item(a.0).cmp(&item(b.0)))
        });
        ranked
            .into_iter()
            .take(n)
            .filter_map(|(id, (_, mut why))| {
                why.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| item(a.1).cmp(&item(b.1))));
                let it = item(id)?;
                Some(Recommendation {
                    item: it.name.clone(),
                    category: it.category.clone(),
                    because: why
                        .into_iter()
                        .take(3)
                        .filter_map(|(_, source)| {
                            Some(Because {
                                item: item(source)?.name.clone(),
                                occurred_at: latest.get(&source).copied().unwrap_or(Timestamp(0)),
                            })
                        })
                        .collect(),
                })
            })
            .collect()
    }
}

/// A candidate's score, and the own items it came from with what each contributed.
type Score = (f64, Vec<(f64, u32)>);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(name: &str, category: &str) -> Item {
        Item {
            name: name.into(),
            category: category.into(),
        }
    }

    /// The customer's purchases, each at a time its name gives (so leaving one out moves no
    /// other).
    fn owned(items: &[Item]) -> Vec<Owned> {
        items
            .iter()
            .map(|it| Owned {
                item: it.clone(),
                occurred_at: Timestamp(it.name.bytes().map(i64::from).sum::<i64>() * 1_000),
            })
            .collect()
    }

    const NONE: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn items_bought_together_are_recommended_with_the_own_purchase_as_the_reason() {
        let (ring, chain, watch, strap) = (
            item("Silver Ring", "rings"),
            item("Silver Chain", "chains"),
            item("Steel Watch", "watches"),
            item("Leather Strap", "straps"),
        );
        let mut m = CoPurchase::default();
        for _ in 0..6 {
            m.add(&Basket::of([&ring, &chain], NONE));
            m.add(&Basket::of([&watch, &strap], NONE));
        }
        let r = m.recommend(&owned(std::slice::from_ref(&ring)), None, 5, 5, NONE);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].item.as_str(), r[0].category.as_str()),
            ("Silver Chain", "chains")
        );
        assert_eq!(r[0].because[0].item, "Silver Ring");
        // Nothing already bought is recommended again.
        assert!(
            m.recommend(&owned(&[ring.clone(), chain.clone()]), None, 5, 5, NONE)
                .is_empty()
        );
    }

    #[test]
    fn an_item_fewer_than_k_customers_bought_never_appears() {
        let (a, b, rare) = (item("A", "x"), item("B", "x"), item("Rare", "x"));
        let mut m = CoPurchase::default();
        for _ in 0..5 {
            m.add(&Basket::of([&a, &b], NONE));
        }
        m.add(&Basket::of([&a, &rare], NONE));
        m.add(&Basket::of([&a, &rare], NONE));
        let r = m.recommend(&owned(std::slice::from_ref(&a)), None, 5, 5, NONE);
        assert!(r.iter().all(|x| x.item != "Rare"), "{r:?}");
        assert_eq!(m.visible_items(5), 2);
        // Nor does it lead anywhere as the customer's own: it reveals who else bought what.
        let r = m.recommend(&owned(std::slice::from_ref(&rare)), None, 5, 5, NONE);
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn a_pair_fewer_than_k_others_bought_together_is_not_shown() {
        let (a, b, c) = (item("A", "x"), item("B", "x"), item("C", "x"));
        let mut m = CoPurchase::default();
        // A and C are each popular, but only one customer bought both.
        for _ in 0..6 {
            m.add(&Basket::of([&a], NONE));
            m.add(&Basket::of([&c, &b], NONE));
        }
        m.add(&Basket::of([&a, &c], NONE));
        let r = m.recommend(&owned(std::slice::from_ref(&a)), None, 5, 5, NONE);
        assert!(r.is_empty(), "one other customer's pair shows: {r:?}");
    }

    #[test]
    fn the_asker_s_own_basket_does_not_count_towards_k() {
        let (a, b) = (item("A", "x"), item("B", "x"));
        let mut m = CoPurchase::default();
        for _ in 0..4 {
            m.add(&Basket::of([&a, &b], NONE));
        }
        // The asker bought A: A has 5 buyers, but only 4 others; B is theirs to discover only
        // if A counts others alone — it does not reach k = 5.
        let mine = Basket::of([&a], NONE);
        m.add(&mine);
        let r = m.recommend(&owned(std::slice::from_ref(&a)), Some(&mine), 5, 5, NONE);
        assert!(r.is_empty(), "{r:?}");
        m.add(&Basket::of([&a, &b], NONE));
        let r = m.recommend(&owned(std::slice::from_ref(&a)), Some(&mine), 5, 5, NONE);
        assert_eq!(r.len(), 1, "{r:?}");
    }

    #[test]
    fn removing_a_basket_undoes_adding_it_exactly() {
        let (a, b, c) = (item("A", "x"), item("B", "y"), item("C", "z"));
        let mut m = CoPurchase::default();
        let before = {
            for _ in 0..5 {
                m.add(&Basket::of([&a, &b], NONE));
            }
            format!("{:?}", sorted(&m))
        };
        let basket = Basket::of([&a, &b, &c], NONE);
        m.add(&basket);
        m.remove(&basket);
        assert_eq!(format!("{:?}", sorted(&m)), before);
    }

    /// An item, its buyers and its pairs.
    type Row = (Item, u32, Vec<(Item, u32)>);

    fn sorted(m: &CoPurchase) -> Vec<Row> {
        let mut out: Vec<Row> = m
            .items
            .iter()
            .enumerate()
            .filter(|(i, _)| m.buyers[*i] > 0)
            .map(|(i, it)| {
                let mut row: Vec<(Item, u32)> = m.pairs[i]
                    .iter()
                    .map(|(j, c)| (m.items[*j as usize].clone(), *c))
                    .collect();
                row.sort();
                (it.clone(), m.buyers[i], row)
            })
            .collect();
        out.sort();
        out
    }

    fn basket_strategy() -> impl Strategy<Value = Vec<(u8, bool)>> {
        // (item number, whether its category is the sensitive one)
        proptest::collection::vec((0u8..12, any::<bool>()), 0..6)
    }

    proptest! {
        /// Adding or removing any customer's sensitive purchases changes no recommendation for
        /// anyone (issue 20, point 3).
        #[test]
        fn sensitive_purchases_change_no_recommendation(
            baskets in proptest::collection::vec(basket_strategy(), 1..40),
            extra_sensitive in proptest::collection::vec(basket_strategy(), 0..10),
            asker in 0usize..40,
        ) {
            let sensitive: &dyn Fn(&str) -> bool = &|c| c == "pharmacy";
            let to_items = |b: &[(u8, bool)], keep_sensitive: bool| -> Vec<Item> {
                b.iter()
                    .filter(|(_, s)| keep_sensitive || !*s)
                    .map(|(n, s)| item(&format!("item{n}{}", if *s { "-rx" } else { "" }), if *s { "pharmacy" } else { "general" }))
                    .collect()
            };
            let build = |with_sensitive: bool| {
                let mut m = CoPurchase::default();
                for (i, b) in baskets.iter().enumerate() {
                    let mut items = to_items(b, with_sensitive);
                    if with_sensitive && let Some(extra) = extra_sensitive.get(i) {
                        items.extend(to_items(extra, true).into_iter().filter(|it| it.category == "pharmacy"));
                    }
                    m.add(&Basket::of(&items, sensitive));
                }
                m
            };
            let (with, without) = (build(true), build(false));
            let asker = &baskets[asker % baskets.len()];
            let own_with = owned(&to_items(asker, true));
            let own_without = owned(&to_items(asker, false));
            for k in [1, 2, 5] {
                let a = with.recommend(&own_with, None, k, 5, sensitive);
                let b = without.recommend(&own_without, None, k, 5, sensitive);
                prop_assert_eq!(&a, &b);
                prop_assert!(a.iter().all(|r| r.category != "pharmacy" && r.because.iter().all(|x| !x.item.ends_with("-rx"))));
            }
        }
    }
}
