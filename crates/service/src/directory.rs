//! The directory: outlets and staff members. Outlets are not personal; staff names are, and are
//! sealed under the installation's directory key. Every act is decided by the policy's
//! `read_directory` or `manage_directory` at the [`Door`], and recorded there.

use std::sync::Arc;

use serde::Serialize;
use steward_crypto::{DataKey, FieldAad};
use steward_domain::{OutletId, Role, StaffId, Timestamp, ValidationError};
use steward_policy::Action;
use steward_store::{DirectoryStore, OutletRow, StaffRow};
use uuid::Uuid;

use crate::Actor;
use crate::door::{About, Door};
use crate::error::{ServiceError, ServiceResult};

/// An outlet as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Outlet {
    /// Id.
    pub id: OutletId,
    /// Name.
    pub name: String,
    /// Country (ISO 3166-1 alpha-2), if known.
    pub country: Option<String>,
}

/// A staff member as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Staff {
    /// Id.
    pub id: StaffId,
    /// Name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Outlets.
    pub outlet_ids: Vec<OutletId>,
    /// Disabled: neither signs in nor authenticates.
    pub disabled: bool,
}

/// The directory's service: its store, the key staff names are sealed under, and the door.
pub struct Directory {
    door: Arc<Door>,
    store: Arc<dyn DirectoryStore>,
    key: Arc<DataKey>,
}

impl Directory {
    /// The directory of one installation (made by the composition root).
    pub(crate) fn new(door: Arc<Door>, store: Arc<dyn DirectoryStore>, key: Arc<DataKey>) -> Self {
        Directory { door, store, key }
    }

    fn door(&self) -> &Door {
        &self.door
    }

    /// `Invalid` naming `field` unless outlet `id` (if any) exists.
    pub(crate) async fn check_outlet(
        &self,
        field: &'static str,
        id: Option<OutletId>,
    ) -> ServiceResult<()> {
        match id {
            Some(o) if !self.store.outlet_exists(o).await? => {
                Err(ValidationError::new(field, "no such outlet").into())
            }
            _ => Ok(()),
        }
    }

    /// Creates an outlet, if the policy lets `actor` manage the directory; names are unique.
    pub async fn create_outlet(&self, actor: Actor<'_>, name: &str) -> ServiceResult<OutletId> {
        self.create_outlet_in(actor, name, None).await
    }

    /// [`Directory::create_outlet`] in a country (ISO 3166-1 alpha-2): staff there may type phone
    /// numbers in its national format.
    pub async fn create_outlet_in(
        &self,
        actor: Actor<'_>,
        name: &str,
        country: Option<&str>,
    ) -> ServiceResult<OutletId> {
        self.door()
            .authorize_actor(actor, Action::ManageDirectory, None, false)
            .await?;
        let name = steward_domain::normalize::short_text("name", name)?;
        let country = country
            .map(|c| steward_domain::normalize::country("country", c))
            .transpose()?;
        let id = OutletId::new();
        match self
            .store
            .insert_outlet(
                &OutletRow {
                    id,
                    name,
                    country,
                    created_at: Timestamp::now().millis(),
                },
                &[self.door().write_entry_for(
                    actor,
                    "create_outlet",
                    None,
                    &["outlet"],
                    About {
                        subject: Some(&id.to_string()),
                        purpose: None,
                    },
                )],
            )
            .await
        {
            Err(steward_store::StoreError::Conflict) => Err(ServiceError::Conflict("name")),
            other => other.map(|_| id).map_err(Into::into),
        }
    }

    /// All outlets, if the policy lets `actor` read the directory.
    pub async fn list_outlets(&self, actor: Actor<'_>) -> ServiceResult<Vec<Outlet>> {
        self.door()
            .authorize_actor(actor, Action::ReadDirectory, None, false)
            .await?;
        self.outlets().await
    }

    /// The outlets `principal` may register a customer at, for a form: their own, or every
    /// outlet for staff of none (customer service, the DPO). Names of outlets are not personal.
    pub async fn registration_outlets(
        &self,
        principal: &crate::Principal,
    ) -> ServiceResult<Vec<Outlet>> {
        let all = self.outlets().await?;
        if principal.outlets().is_empty() {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .filter(|o| principal.outlets().contains(&o.id))
            .collect())
    }

    /// The country whose national phone format `principal` types in: their (first) outlet's,
    /// if it is known and its format is.
    pub async fn phone_country(&self, principal: &crate::Principal) -> Option<String> {
        let first = *principal.outlets().first()?;
        self.outlets()
            .await
            .ok()?
            .into_iter()
            .find(|o| o.id == first)?
            .country
            .filter(|c| steward_domain::normalize::knows_national_phones(c))
    }

    /// All outlets, for the service's own use.
    pub(crate) async fn outlets(&self) -> ServiceResult<Vec<Outlet>> {
        Ok(self
            .store
            .list_outlets()
            .await?
            .into_iter()
            .map(|o| Outlet {
                id: o.id,
                name: o.name,
                country: o.country,
            })
            .collect())
    }

    fn staff_aad(id: StaffId) -> FieldAad<'static> {
        FieldAad {
            table: "staff",
            column: "name",
            customer: Uuid::nil(),
            record: id.0,
        }
    }

    /// Creates a staff member, if the policy lets `actor` manage the directory; the name is
    /// sealed under the installation's directory key.
    pub async fn create_staff(
        &self,
        actor: Actor<'_>,
        name: &str,
        roles: &[Role],
        outlet_ids: &[OutletId],
    ) -> ServiceResult<StaffId> {
        self.door()
            .authorize_actor(actor, Action::ManageDirectory, None, false)
            .await?;
        let name = steward_domain::normalize::short_text("name", name)?;
        if roles.is_empty() {
            return Err(ValidationError::new("roles", "must name at least one role").into());
        }
        if roles.contains(&Role::Operator) {
            return Err(
                ValidationError::new("roles", "the operator's role is no staff role").into(),
            );
        }
        // A list that names an outlet or a role twice means it once (found by API fuzzing: the
        // repeated outlet broke a unique key, a 500).
        let mut outlet_ids = outlet_ids.to_vec();
        outlet_ids.sort_unstable();
        outlet_ids.dedup();
        let mut roles = roles.to_vec();
        roles.sort_unstable_by_key(|r| r.as_str());
        roles.dedup();
        for o in &outlet_ids {
            self.check_outlet("outlet_ids", Some(*o)).await?;
        }
        let id = StaffId::new();
        let row = StaffRow {
            id,
            name: self.key.seal(&Self::staff_aad(id), name.as_bytes())?,
            roles: roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            outlet_ids,
            created_at: Timestamp::now().millis(),
            disabled_at: None,
        };
        let staff_id = id.to_string();
        let about = About {
            subject: Some(&staff_id),
            purpose: None,
        };
        let entry = self
            .door()
            .write_entry_for(actor, "create_staff", None, &["staff"], about);
        self.store.insert_staff(&row, &[entry]).await?;
        Ok(id)
    }

    /// All staff, names unsealed, if the policy lets `actor` read the directory; the read is an
    /// audit entry (staff names are personal data too).
    pub async fn list_staff(&self, actor: Actor<'_>) -> ServiceResult<Vec<Staff>> {
        self.door()
            .authorize_actor(actor, Action::ReadDirectory, None, false)
            .await?;
        self.door()
            .record_read(actor, "read_staff", None, &["staff"])
            .await?;
        self.staff_directory().await
    }

    /// One staff member's row (roles, outlets, whether disabled): what authentication and
    /// sign-in read; the name stays sealed.
    pub(crate) async fn staff_row(&self, id: StaffId) -> ServiceResult<Option<StaffRow>> {
        Ok(self.store.get_staff(id).await?)
    }

    /// The write that disables staff member `id` at `at` (revoking every token and session they
    /// hold in the same transaction) or enables them again (`None`), with its audit entry; true
    /// if there is such a staff member. The caller (identity, which keeps the token cache) has
    /// decided it; returned as a task of its own, so that it can run to completion.
    pub(crate) fn disabling(
        &self,
        id: StaffId,
        at: Option<i64>,
        entry: steward_store::AuditEntryRow,
    ) -> impl std::future::Future<Output = steward_store::StoreResult<bool>> + Send + 'static {
        let store = self.store.clone();
        async move { store.set_staff_disabled(id, at, &[entry]).await }
    }

    /// Every staff member, opened, for the service's own use (decided by the caller).
    pub(crate) async fn staff_directory(&self) -> ServiceResult<Vec<Staff>> {
        let rows = self.store.list_staff().await?;
        rows.into_iter()
            .map(|r| {
                let name = String::from_utf8(self.key.open(&Self::staff_aad(r.id), &r.name)?)
                    .map_err(|_| ServiceError::Integrity)?;
                let roles = r.roles.split(',').filter_map(|s| s.parse().ok()).collect();
                Ok(Staff {
                    id: r.id,
                    name,
                    roles,
                    outlet_ids: r.outlet_ids,
                    disabled: r.disabled_at.is_some(),
                })
            })
            .collect()
    }
}
