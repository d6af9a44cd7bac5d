//! Integers as JSON Schema reads them: `117626.0` is the integer 117626 (a number "with a zero
//! fractional part", JSON Schema validation §6.1.1), so a client that writes whole numbers as
//! floats — as Python's `json` and some generated clients do — is not refused for it. serde's
//! own integer types take only `117626`.

use serde::{Deserialize, Deserializer, de::Error};

/// A whole JSON number, written with or without a zero fraction, that fits `T`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Signed(i64),
    Unsigned(u64),
    Float(f64),
}

fn whole<T, E: Error>(n: Number) -> Result<T, E>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    let out_of_range = || E::custom("an integer in range");
    match n {
        Number::Signed(i) => T::try_from(i).map_err(|_| out_of_range()),
        Number::Unsigned(u) => T::try_from(u).map_err(|_| out_of_range()),
        // Below 2^52 only: from there on every float is whole, so `4503599627370496.5` would be
        // read as an integer it does not spell.
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 4_503_599_627_370_496.0 => {
            T::try_from(f as i64).map_err(|_| out_of_range())
        }
        Number::Float(_) => Err(E::custom("an integer")),
    }
}

/// `#[serde(deserialize_with = "crate::integral::deserialize")]` for an integer field.
pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    whole(Number::deserialize(d)?)
}

/// The same for an optional integer (`null` or absent is `None`; use with `#[serde(default)]`).
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    Option::<Number>::deserialize(d)?.map(whole).transpose()
}

/// The same for a list of integers.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    Vec::<Number>::deserialize(d)?
        .into_iter()
        .map(whole)
        .collect()
}

/// The same for an optional pair of integers (bounds).
pub fn optional_pair<'de, D, T>(d: D) -> Result<Option<[T; 2]>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    match Option::<[Number; 2]>::deserialize(d)? {
        None => Ok(None),
        Some([a, b]) => Ok(Some([whole(a)?, whole(b)?])),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::deserialize")]
        n: i64,
        #[serde(default, deserialize_with = "super::optional")]
        m: Option<u32>,
    }

    fn parse(json: &str) -> Option<(i64, Option<u32>)> {
        serde_json::from_str::<Body>(json).ok().map(|b| (b.n, b.m))
    }

    #[derive(Deserialize)]
    struct Lists {
        #[serde(deserialize_with = "super::list")]
        all: Vec<u32>,
        #[serde(default, deserialize_with = "super::optional_pair")]
        pair: Option<[i64; 2]>,
    }

    #[test]
    fn lists_and_pairs_take_whole_floats_too() {
        let l: Lists = serde_json::from_str(r#"{"all": [1, 2.0], "pair": [-466.0, 38]}"#).unwrap();
        assert_eq!((l.all, l.pair), (vec![1, 2], Some([-466, 38])));
        let l: Lists = serde_json::from_str(r#"{"all": []}"#).unwrap();
        assert_eq!((l.all, l.pair), (vec![], None));
        assert!(serde_json::from_str::<Lists>(r#"{"all": [1.5]}"#).is_err());
        assert!(serde_json::from_str::<Lists>(r#"{"all": [], "pair": [1]}"#).is_err());
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        assert_eq!(parse(r#"{"n": 117626.0}"#), Some((117_626, None)));
        assert_eq!(parse(r#"{"n": -3, "m": 4.0}"#), Some((-3, Some(4))));
        assert_eq!(parse(r#"{"n": 1, "m": null}"#), Some((1, None)));
        assert_eq!(parse(r#"{"n": 1.5}"#), None);
        assert_eq!(parse(r#"{"n": 1e300}"#), None);
        assert_eq!(parse(r#"{"n": 4503599627370496.5}"#), None);
        // Found by API fuzzing: 2^52 - 2 written as a float was refused.
        assert_eq!(
            parse(r#"{"n": 4503599627370494.0}"#),
            Some((4_503_599_627_370_494, None))
        );
        assert_eq!(
            parse(r#"{"n": 4503599627370496}"#),
            Some((4_503_599_627_370_496, None))
        );
        assert_eq!(parse(r#"{"n": 1, "m": -1}"#), None);
        assert_eq!(parse(r#"{"n": 1, "m": 4294967296}"#), None);
        assert_eq!(parse(r#"{"n": "1"}"#), None);
        assert_eq!(parse(r#"{"n": 18446744073709551615}"#), None);
    }

    proptest! {
        #[test]
        // Every integer the document allows (below 2^52), read exactly: serde_json's
        // `float_roundtrip` (without it a number this long may land an ulp off, leaving a fraction).
        fn an_integer_reads_the_same_with_or_without_a_zero_fraction(n in -(1i64 << 52) + 1..(1i64 << 52)) {
            prop_assert_eq!(parse(&format!(r#"{{"n": {n}}}"#)), Some((n, None)));
            prop_assert_eq!(parse(&format!(r#"{{"n": {n}.0}}"#)), Some((n, None)));
        }
    }
}
