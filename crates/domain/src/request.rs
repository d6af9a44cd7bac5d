//! Data-subject requests: types and states as in the Data Rights Protocol (DRP), so that a DRP
//! front can be added without a translation table.

use serde::{Deserialize, Serialize};

use crate::{CustomerId, CustomerPatch, ValidationError};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$v,)*];

            /// The wire and storage name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s,)* }
            }

            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

wire_enum!(
    /// What the customer asks for (GDPR Articles 15–21, CCPA, PDPA).
    RequestType {
        /// A copy of their data (Art. 15).
        Access => "access",
        /// Their data in a portable, machine-readable form (Art. 20).
        Export => "export",
        /// Corrections (Art. 16).
        Rectification => "rectification",
        /// Erasure (Art. 17).
        Erasure => "erasure",
        /// Restriction of processing (Art. 18).
        Restriction => "restriction",
        /// Objection to marketing and profiling (Art. 21).
        Objection => "objection",
    }
);

wire_enum!(
    /// Where a request stands (DRP `status`).
    RequestStatus {
        /// Received.
        Open => "open",
        /// Being worked on; see the reason (e.g. `need_user_verification`).
        InProgress => "in_progress",
        /// Done.
        Fulfilled => "fulfilled",
        /// Refused, with a reason.
        Denied => "denied",
        /// Withdrawn by the customer.
        Revoked => "revoked",
        /// Not verified by its deadline.
        Expired => "expired",
    }
);

wire_enum!(
    /// Why a request is where it is (DRP `reason`); never free text, so never a personal value.
    RequestReason {
        /// The customer's identity is not verified yet.
        NeedUserVerification => "need_user_verification",
        /// Fraud is suspected.
        SuspectedFraud => "suspected_fraud",
        /// The identity could not be verified.
        InsufficientVerification => "insufficient_verification",
        /// No such customer.
        NoMatch => "no_match",
        /// The right does not apply (e.g. a legal hold or obligation keeps the data).
        ClaimNotCovered => "claim_not_covered",
        /// Too many requests.
        TooManyRequests => "too_many_requests",
        /// Outside the jurisdiction.
        OutsideJurisdiction => "outside_jurisdiction",
        /// Another reason.
        Other => "other",
    }
);

wire_enum!(
    /// How the customer's identity was verified.
    IdentityCheck {
        /// Not yet.
        Unverified => "unverified",
        /// A one-time code sent to the customer's recorded e-mail was given back.
        EmailCode => "email_code",
        /// Checked in person, recorded by the DPO.
        InPerson => "in_person",
    }
);

/// The body of `POST /v1/requests`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// What is asked for.
    #[serde(rename = "type")]
    pub kind: RequestType,
    /// Whose data.
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    /// `in_person` when the DPO checked the customer's identity in person: the request proceeds
    /// at once. Otherwise a one-time code goes to the customer's recorded e-mail.
    #[serde(default)]
    pub identity_verified: Option<IdentityCheck>,
    /// For `rectification`: the corrections (a merge patch of the profile). Kept as given,
    /// sealed, until the request is fulfilled.
    #[serde(default)]
    #[schema(value_type = Option<CustomerPatch>)]
    pub corrections: Option<serde_json::Value>,
}

impl RequestInput {
    /// Checks that the parts fit the type.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match (&self.kind, &self.corrections) {
            (RequestType::Rectification, None) => Err(ValidationError::new(
                "corrections",
                "is required for a rectification",
            )),
            (RequestType::Rectification, Some(_)) => {
                let p = self.patch()?.unwrap_or_default();
                if p.is_empty() {
                    return Err(ValidationError::new(
                        "corrections",
                        "names no field to correct",
                    ));
                }
                // The values must be valid now, not only when the request is fulfilled. They
                // are checked against a stand-in profile with a name, so that a correction of
                // the address or the date of birth alone is not taken for an empty profile (the
                // whole profile is checked again when the correction applies).
                let stand_in = crate::NewCustomer {
                    name: Some("stand-in".into()),
                    ..crate::NewCustomer::default()
                };
                p.apply(stand_in).map(|_| ()).map_err(|e| {
                    ValidationError::new(format!("corrections.{}", e.field), e.reason)
                })?;
                Ok(())
            }
            (_, None) => Ok(()),
            (_, Some(_)) => Err(ValidationError::new(
                "corrections",
                "is only for a rectification",
            )),
        }?;
        match self.identity_verified {
            None | Some(IdentityCheck::InPerson) => Ok(()),
            Some(_) => Err(ValidationError::new(
                "identity_verified",
                "may only be in_person (a code is sent otherwise)",
            )),
        }
    }
}

impl RequestInput {
    /// The corrections as a profile patch.
    pub fn patch(&self) -> Result<Option<CustomerPatch>, ValidationError> {
        self.corrections
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| {
                ValidationError::new(
                    "corrections",
                    format!("must be a profile patch ({})", crate::profile::names()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rectification(corrections: serde_json::Value) -> RequestInput {
        RequestInput {
            kind: RequestType::Rectification,
            customer_id: crate::CustomerId::new(),
            identity_verified: None,
            corrections: Some(corrections),
        }
    }

    #[test]
    fn a_correction_of_one_field_alone_is_valid() {
        for c in [
            serde_json::json!({"address": "12 Rue du Lac, 1003 Lausanne"}),
            serde_json::json!({"date_of_birth": "1980-02-29"}),
            serde_json::json!({"name": "Pia Muster"}),
        ] {
            assert_eq!(rectification(c.clone()).validate(), Ok(()), "{c}");
        }
        let bad = rectification(serde_json::json!({"phone": "not a phone"})).validate();
        assert_eq!(bad.unwrap_err().field, "corrections.phone");
        let emptied = serde_json::json!({"name": null, "email": null, "phone": null});
        assert!(rectification(emptied).validate().is_err());
    }

    #[test]
    fn names_round_trip() {
        for t in [
            RequestType::Access,
            RequestType::Export,
            RequestType::Rectification,
            RequestType::Erasure,
            RequestType::Restriction,
            RequestType::Objection,
        ] {
            assert_eq!(RequestType::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            RequestStatus::parse("in_progress"),
            Some(RequestStatus::InProgress)
        );
        assert_eq!(
            RequestReason::parse("need_user_verification"),
            Some(RequestReason::NeedUserVerification)
        );
        assert_eq!(RequestStatus::parse("closed"), None);
    }

    #[test]
    fn corrections_belong_to_rectifications_only() {
        let base = |kind, corrections: Option<serde_json::Value>| RequestInput {
            kind,
            customer_id: CustomerId::new(),
            identity_verified: None,
            corrections,
        };
        let patch = serde_json::json!({"name": "New Name"});
        assert!(
            base(RequestType::Rectification, Some(patch.clone()))
                .validate()
                .is_ok()
        );
        assert_eq!(
            base(RequestType::Rectification, None)
                .validate()
                .unwrap_err()
                .field,
            "corrections"
        );
        assert_eq!(
            base(RequestType::Erasure, Some(patch))
                .validate()
                .unwrap_err()
                .field,
            "corrections"
        );
        let bad = serde_json::json!({"email": "not an address"});
        assert_eq!(
            base(RequestType::Rectification, Some(bad))
                .validate()
                .unwrap_err()
                .field,
            "corrections.email"
        );
        let unknown = serde_json::json!({"shoe_size": 9});
        assert_eq!(
            base(RequestType::Rectification, Some(unknown))
                .validate()
                .unwrap_err()
                .field,
            "corrections"
        );
        let mut r = base(RequestType::Access, None);
        r.identity_verified = Some(IdentityCheck::EmailCode);
        assert_eq!(r.validate().unwrap_err().field, "identity_verified");
    }
}
