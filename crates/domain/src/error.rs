//! Validation errors: they name the offending field and never carry its value.

use std::borrow::Cow;

/// A rejected input: which field, and why, in words that never repeat the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The JSON path of the offending field, e.g. `email` or `address.country`.
    pub field: Cow<'static, str>,
    /// Why it was rejected; must not contain the submitted value.
    pub reason: Cow<'static, str>,
}

impl ValidationError {
    /// A new error for `field` with a fixed `reason`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
