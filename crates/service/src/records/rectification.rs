//! Rectification: fields marked verified (checked against a document, say) are corrected only
//! after staff confirm, and every profile change keeps its previous values, sealed.

use serde_json::{Value, json};
use steward_domain::{CustomerId, ProfileField, Timestamp, ValidationError};
use steward_policy::Action;

use crate::auth::Actor;
use crate::error::{ServiceError, ServiceResult};
use crate::records::Records;
use crate::seal;

impl Records {
    /// Marks exactly `fields` of a customer's profile as verified: a customer's correction of
    /// any of them then waits for staff confirmation.
    pub async fn set_verified_fields(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        fields: &[String],
    ) -> ServiceResult<()> {
        let mut names: Vec<&'static str> = Vec::new();
        for f in fields {
            let name = ProfileField::parse(f)
                .map(ProfileField::name)
                .ok_or_else(|| {
                    ValidationError::new(
                        "fields",
                        format!(
                            "must name profile fields: {}",
                            steward_domain::profile::names()
                        ),
                    )
                })?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        self.door()
            .authorize_actor(actor, Action::UpdateCustomer, Some(id), false)
            .await?;
        let entry = self
            .door()
            .write_entry(actor, "mark_verified", Some(id), &names);
        if self
            .customers
            .set_verified_fields(id, &names, &[entry])
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound("customer"))
        }
    }

    /// Whether a correction of `fields` needs staff confirmation first: a verified field, or a
    /// social handle.
    pub(crate) async fn touches_verified(
        &self,
        id: CustomerId,
        fields: &[&str],
    ) -> ServiceResult<bool> {
        let verified = self
            .customers
            .verified_fields(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        // A handle names who a customer is elsewhere and decides whose posts are kept: one
        // typed in the portal waits for staff, who can check it is the customer's (issue 23),
        // so nobody claims another person's handle and reads their posts in their own portal.
        let social = steward_domain::ProfileField::SocialHandles.name();
        Ok(fields
            .iter()
            .any(|f| *f == social || verified.iter().any(|v| v == f)))
    }

    /// The customer's profile changes, oldest first, with the previous values opened.
    pub(crate) async fn profile_changes(&self, id: CustomerId) -> ServiceResult<Vec<Value>> {
        let rows = self.customers.changes(id).await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let dk = self.keys().of(id).await?;
        rows.into_iter()
            .map(|r| {
                let change = uuid::Uuid::from_slice(&r.id).map_err(|_| ServiceError::Integrity)?;
                let previous = seal::open_change(&dk, id, change, &r.previous)?;
                let previous: Value =
                    serde_json::from_slice(&previous).map_err(|_| ServiceError::Integrity)?;
                Ok(json!({
                    "changed_at": Timestamp(r.changed_at).to_rfc3339_millis(),
                    "fields": r.fields.split(',').collect::<Vec<_>>(),
                    "previous": previous,
                }))
            })
            .collect()
    }
}
