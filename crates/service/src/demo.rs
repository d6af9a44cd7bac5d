//! A deterministic, fictional demo data set: outlets, staff, customers, purchases, interactions.
//!
//! Names are combined from short lists, e-mail addresses use the reserved `example.*` domains and
//! phone numbers come from Ofcom's ranges reserved for drama, so no real person is described.

use steward_domain::{
    Address, Channel, NewCustomer, NewInteraction, NewPurchase, OutletId, Role, StaffId, Timestamp,
};

use crate::auth::Operator;
use crate::error::ServiceResult;
use crate::{Activity, Actor, Vault};

/// How much demo data was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    /// Outlets.
    pub outlets: usize,
    /// Staff.
    pub staff: usize,
    /// Customers.
    pub customers: usize,
    /// Purchases.
    pub purchases: usize,
    /// Interactions.
    pub interactions: usize,
}

/// SplitMix64: a tiny, fixed generator so the data set is the same on every machine and
/// version (a library RNG may change its stream between releases). Not for anything secret.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FIRST: &[&str] = &[
    "Ada", "Bruno", "Chiara", "Dev", "Elif", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kofi",
    "Lena", "Mateo", "Nia", "Oskar", "Priya", "Quinn", "Rafa", "Sana", "Timo", "Uma", "Viktor",
    "Wen", "Ximena", "Yusuf", "Zora",
];
const LAST: &[&str] = &[
    "Abara",
    "Brandt",
    "Castell",
    "Dalca",
    "Eskildsen",
    "Ferreira",
    "Grieve",
    "Halloran",
    "Ishikawa",
    "Jovanovic",
    "Kowal",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quiroga",
    "Rasmussen",
    "Sorensen",
    "Takeda",
    "Ulloa",
    "Varga",
    "Whitlock",
    "Yilmaz",
    "Zeller",
];
const STREETS: &[&str] = &[
    "Fictional Lane",
    "Example Road",
    "Sample Street",
    "Placeholder Avenue",
    "Demo Crescent",
    "Testing Row",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Geneva", "1201", "CH"),
    ("Zurich", "8001", "CH"),
    ("Singapore", "018956", "SG"),
    ("London", "W1K 1AA", "GB"),
];
const OUTLETS: &[&str] = &[
    "Geneva Flagship",
    "Zurich Bahnhofstrasse",
    "Singapore Marina",
    "London Mayfair",
    "Online Store",
];
const MODELS: &[(&str, i64)] = &[
    ("Aurelius Chronograph 42", 1_250_000),
    ("Meridian Diver 300", 890_000),
    ("Solstice Moonphase", 2_150_000),
    ("Cartographer GMT", 1_480_000),
    ("Halcyon Dress 38", 640_000),
    ("Tidewater Automatic", 455_000),
    ("Equinox Perpetual", 5_900_000),
    ("Strap, alligator, brown", 38_000),
];
const NOTES: &[(Channel, &str, &str)] = &[
    (
        Channel::Email,
        "helpdesk",
        "Asked when the next allocation of the Solstice Moonphase opens.",
    ),
    (
        Channel::Phone,
        "callcentre",
        "Called about a service appointment for the bracelet.",
    ),
    (
        Channel::InStore,
        "till",
        "Tried on two models; prefers a smaller case.",
    ),
    (
        Channel::Web,
        "webshop",
        "Left a review: delivery was quick and well packed.",
    ),
    (
        Channel::Social,
        "instagram",
        "Commented on the new Meridian Diver post.",
    ),
    (
        Channel::Email,
        "helpdesk",
        "Requested an invoice copy for insurance.",
    ),
];

/// The e-mail address of demo customer number 0 (fictional, `example.com`), for trying the
/// privacy portal; `None` if the demo data set is not loaded.
/// The read is the operator's and is recorded like any other.
pub async fn sample_email(vault: &Vault, operator: Operator) -> ServiceResult<Option<String>> {
    let Some(phone) = steward_domain::normalize::phone("phone", "+44 20 7946 0000").ok() else {
        return Ok(None);
    };
    match vault.records().lookup_ids("phone", &phone).await?.first() {
        Some(id) => {
            let actor = Actor::Operator(operator);
            vault
                .door()
                .authorize_actor(
                    actor,
                    steward_policy::Action::ExportCustomer,
                    Some(*id),
                    false,
                )
                .await?;
            vault
                .door()
                .record_read(actor, "demo_sample", Some(*id), &["email"])
                .await?;
            Ok(vault.records().get_customer(*id).await?.email)
        }
        None => Ok(None),
    }
}

/// The deterministic demo customer number `n` (n < 2000: the phone ranges hold 2000 numbers).
pub fn demo_customer(n: usize, rng: &mut SplitMix64, outlet: Option<OutletId>) -> NewCustomer {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let (city, postcode, country) = *rng.pick(CITIES);
    // Ofcom drama ranges: 020 7946 0000–0999 and 0113 496 0000–0999.
    let phone = if n < 1000 {
        format!("+44 20 7946 {:04}", n)
    } else {
        format!("+44 113 496 {:04}", n % 1000)
    };
    let mut c = NewCustomer {
        name: Some(format!("{first} {last}")),
        email: Some(format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            n
        )),
        phone: steward_domain::normalize::phone("phone", &phone).ok(),
        address: Some(Address {
            street: Some(format!("{} {}", 1 + rng.below(120), rng.pick(STREETS))),
            city: Some(city.into()),
            postal_code: Some(postcode.into()),
            country: Some(country.into()),
        }),
        date_of_birth: Some(format!(
            "{}-{:02}-{:02}",
            1950 + rng.below(55),
            1 + rng.below(12),
            1 + rng.below(28)
        )),
        outlet_id: outlet,
        ..NewCustomer::default()
    };
    // Every other field: its declared demo value.
    c.fill_demo(n);
    c
}

/// Loads the demo data set with `customers` customers (at most 2000).
pub async fn load(
    vault: &Vault,
    operator: Operator,
    customers: usize,
) -> ServiceResult<DemoSummary> {
    let customers = customers.min(2000);
    let mut rng = SplitMix64::new(0x0005_EED0_F57E_3A7D);
    let mut outlets = Vec::new();
    for name in OUTLETS {
        outlets.push(
            vault
                .directory()
                .create_outlet(crate::Actor::Operator(operator), name)
                .await?,
        );
    }
    let mut staff: Vec<(StaffId, OutletId)> = Vec::new();
    for (i, o) in outlets.iter().enumerate() {
        for (j, role) in [
            Role::StoreManager,
            Role::SalesAssociate,
            Role::SalesAssociate,
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!(
                "{} {}",
                FIRST[(i * 3 + j) % FIRST.len()],
                LAST[(i * 5 + j * 7) % LAST.len()]
            );
            staff.push((
                vault
                    .directory()
                    .create_staff(crate::Actor::Operator(operator), &name, &[role], &[*o])
                    .await?,
                *o,
            ));
        }
    }
    let day = 86_400_000i64;
    let base = Timestamp::parse_rfc3339("2026-01-01T10:00:00Z")
        .map(|t| t.millis())
        .unwrap_or(0);
    let now = Timestamp::now();
    let mut sealed = Vec::with_capacity(customers);
    for n in 0..customers {
        let home = *rng.pick(&outlets);
        sealed.push(
            vault
                .records()
                .seal_new_customer(&demo_customer(n, &mut rng, Some(home)), now)?,
        );
    }
    let sealed = vault.records().insert_sealed(operator, sealed).await?;
    let (mut purchases, mut interactions) = (0, 0);
    let mut activity = Vec::new();
    for c in &sealed {
        for _ in 0..rng.below(5) {
            let (seller, outlet) = *rng.pick(&staff);
            let (item, price) = *rng.pick(MODELS);
            activity.push((
                *c,
                Activity::Purchase(NewPurchase {
                    item: item.into(),
                    category: if price < 100_000 {
                        "accessories".into()
                    } else {
                        "watches".into()
                    },
                    outlet_id: outlet,
                    seller_id: Some(seller),
                    amount_minor: price,
                    currency: if rng.below(2) == 0 {
                        "CHF".into()
                    } else {
                        "EUR".into()
                    },
                    occurred_at: Timestamp(base + rng.below(300) as i64 * day),
                }),
            ));
            purchases += 1;
        }
        for _ in 0..rng.below(4) {
            let (channel, source, text) = *rng.pick(NOTES);
            activity.push((
                *c,
                Activity::Interaction(NewInteraction {
                    channel,
                    text: text.into(),
                    source: source.into(),
                    occurred_at: Timestamp(base + rng.below(300) as i64 * day),
                }),
            ));
            interactions += 1;
        }
    }
    for chunk in activity.chunks(2000) {
        vault.records().add_activity(operator, chunk).await?;
    }
    // About half agreed to marketing e-mail and a third to personalisation, in the shop, so a
    // demo marketer's segments and campaigns reach someone.
    let consents = [("marketing_email", 2), ("personalisation", 3)];
    for c in &sealed {
        for (key, one_in) in consents {
            if rng.below(one_in) != 0 {
                continue;
            }
            let purpose = vault.purposes().get("purpose", key)?;
            let input = steward_domain::ConsentInput {
                purpose: key.to_owned(),
                action: steward_domain::ConsentAction::Grant,
                source: steward_domain::ConsentSource::InStore,
            };
            vault
                .write_consent(crate::Actor::Operator(operator), *c, &purpose, &input)
                .await?;
        }
    }
    Ok(DemoSummary {
        outlets: outlets.len(),
        staff: staff.len(),
        customers,
        purchases,
        interactions,
    })
}

/// A console login of the demo set (demo mode only): the role, the login and a fresh password.
pub struct DemoLogin {
    /// The role the demo staff member holds.
    pub role: Role,
    /// The console login, `demo.<role>`.
    pub login: String,
    /// A password made at this start (each start of `serve --demo` makes new ones).
    pub password: zeroize::Zeroizing<String>,
}

/// Gives every role a demo staff member with a console login and a fresh random password, for
/// `serve --demo` to print. Outlet roles use the first demo outlet's staff; the other roles get a
/// staff member of their own, made once. Setting the passwords ends the demo logins' old sessions.
pub async fn logins(vault: &Vault, operator: Operator) -> ServiceResult<Vec<DemoLogin>> {
    let actor = Actor::Operator(operator);
    let staff = vault.directory().list_staff(actor).await?;
    let first_outlet = vault.directory().outlets().await?.first().map(|o| o.id);
    let mut out = Vec::with_capacity(Role::ALL.len());
    for role in Role::ALL {
        let outlet_role = matches!(role, Role::SalesAssociate | Role::StoreManager);
        let name = format!("Demo {}", role.as_str().replace('_', " "));
        let existing = staff.iter().find(|s| {
            s.roles == [role]
                && !s.disabled
                && if outlet_role {
                    first_outlet.is_some_and(|o| s.outlet_ids.contains(&o))
                } else {
                    s.name == name
                }
        });
        let id = match existing {
            Some(s) => s.id,
            None => {
                let outlets: Vec<OutletId> =
                    first_outlet.filter(|_| outlet_role).into_iter().collect();
                vault
                    .directory()
                    .create_staff(actor, &name, &[role], &outlets)
                    .await?
            }
        };
        let login = format!("demo.{}", role.as_str().replace('_', "-"));
        let mut bytes = [0u8; 9];
        getrandom::fill(&mut bytes)
            .map_err(|_| crate::ServiceError::from(steward_crypto::CryptoError::Random))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let password = zeroize::Zeroizing::new(format!("demo-{hex}"));
        vault
            .identity()
            .set_staff_password(operator, id, &login, password.clone())
            .await?;
        out.push(DemoLogin {
            role,
            login,
            password,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        assert_eq!(
            demo_customer(3, &mut a, None),
            demo_customer(3, &mut b, None)
        );
        let c = demo_customer(1500, &mut a, None);
        assert_eq!(c.phone.as_deref(), Some("+441134960500"));
        assert!(c.email.unwrap().ends_with("@example.com"));
    }
}
