//! The purpose registry: the defaults seeded on first start, registered and changed by the DPO.
//!
//! Reads look purposes up on every request, so the registry is an immutable snapshot swapped
//! whole on change: a lookup is a read lock and an `Arc` clone, never a query. It is read again
//! every two seconds, for changes made through other servers on the same database.

use std::sync::{Arc, RwLock};
use steward_domain::pii::PiiRule;

use steward_domain::purpose::default_purposes;
use steward_domain::{Purpose, PurposeInput, PurposePatch, ValidationError};
use steward_policy::Action;
use steward_store::{PurposeRow, PurposeStore, StoreError};

use crate::cluster::Announcer;
use crate::door::Door;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Principal};

/// The purposes' context: the registry every read consults, registered and changed by the DPO.
pub struct Purposes {
    door: Arc<Door>,
    store: Arc<dyn PurposeStore>,
    current: RwLock<Arc<[Arc<Purpose>]>>,
    announcer: Arc<Announcer>,
}

impl Purposes {
    /// Seeds the default purposes where missing and loads all (made by the composition root).
    pub(crate) async fn open(
        door: Arc<Door>,
        store: Arc<dyn PurposeStore>,
        announcer: Arc<Announcer>,
    ) -> ServiceResult<Self> {
        let rows: Vec<PurposeRow> = default_purposes().iter().map(row).collect();
        store.seed_purposes(&rows).await?;
        let me = Self {
            door,
            store,
            current: RwLock::new(Arc::from(Vec::new())),
            announcer,
        };
        me.reload().await?;
        Ok(me)
    }

    /// Reads the registry again from the store.
    pub(crate) async fn reload(&self) -> ServiceResult<()> {
        let all = self
            .store
            .list_purposes()
            .await?
            .into_iter()
            .map(|r| from_row(r).map(Arc::new))
            .collect::<ServiceResult<Vec<_>>>()?;
        if let Ok(mut c) = self.current.write() {
            *c = Arc::from(all);
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<[Arc<Purpose>]> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The stored form of a purpose.
fn row(p: &Purpose) -> PurposeRow {
    PurposeRow {
        key: p.key.clone(),
        lawful_basis: crate::vault::serde_plain(&p.lawful_basis),
        data_use: p.data_use.clone(),
        categories: serde_json::to_string(&p.categories).unwrap_or_else(|_| "[]".into()),
        retention_days: p.retention_days,
        notice_version: p.notice_version,
        notice_text: p.notice_text.clone(),
        roles: serde_json::to_string(&p.roles).unwrap_or_else(|_| "[]".into()),
        pii_rule: p.pii_rule.as_str().to_owned(),
    }
}

fn from_row(r: PurposeRow) -> ServiceResult<Purpose> {
    Ok(Purpose {
        lawful_basis: serde_json::from_value(serde_json::Value::String(r.lawful_basis))
            .map_err(|_| ServiceError::Integrity)?,
        categories: serde_json::from_str(&r.categories).map_err(|_| ServiceError::Integrity)?,
        roles: serde_json::from_str(&r.roles).map_err(|_| ServiceError::Integrity)?,
        key: r.key,
        data_use: r.data_use,
        retention_days: r.retention_days,
        notice_version: r.notice_version,
        notice_text: r.notice_text,
        pii_rule: PiiRule::parse(&r.pii_rule).ok_or(ServiceError::Integrity)?,
    })
}

impl Purposes {
    fn door(&self) -> &Door {
        &self.door
    }

    /// The registered purposes, by key.
    pub fn all(&self) -> Vec<Purpose> {
        self.snapshot().iter().map(|p| Purpose::clone(p)).collect()
    }

    /// The purpose with this key, or a validation error naming `field`.
    pub fn get(&self, field: &'static str, key: &str) -> Result<Arc<Purpose>, ValidationError> {
        self.snapshot()
            .iter()
            .find(|p| p.key == key)
            .cloned()
            .ok_or_else(|| ValidationError::new(field, "unknown purpose; see GET /v1/purposes"))
    }

    /// Registers a new purpose (the DPO's).
    pub async fn register(
        &self,
        principal: &Principal,
        input: PurposeInput,
    ) -> ServiceResult<Purpose> {
        self.door()
            .authorize(principal, Action::ManagePurposes, None)
            .await?;
        let purpose = input.validate()?;
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "register_purpose",
            None,
            &[],
            crate::door::About {
                subject: None,
                purpose: Some(&purpose.key),
            },
        );
        match self.store.insert_purpose(&row(&purpose), &[entry]).await {
            Err(StoreError::Conflict) => return Err(ServiceError::Conflict("key")),
            other => other?,
        }
        self.reload().await?;
        self.announcer
            .announce(crate::cluster::Change::Registry)
            .await;
        tracing::info!(purpose = %purpose.key, version = purpose.notice_version, "purpose registered");
        Ok(purpose)
    }

    /// Changes a purpose (the DPO's); a change customers should know of is a new notice version.
    pub async fn change(
        &self,
        principal: &Principal,
        key: &str,
        patch: &PurposePatch,
    ) -> ServiceResult<Purpose> {
        self.door()
            .authorize(principal, Action::ManagePurposes, None)
            .await?;
        let current = self
            .get("key", key)
            .map_err(|_| ServiceError::NotFound("purpose"))?;
        let changed = patch.apply(&current)?;
        if changed == *current {
            return Ok(changed);
        }
        if !self
            .store
            .update_purpose(
                &row(&changed),
                current.notice_version,
                current.pii_rule.as_str(),
                &[self.door().write_entry_for(
                    Actor::Principal(principal),
                    "change_purpose",
                    None,
                    &[],
                    crate::door::About {
                        subject: Some(&changed.key),
                        purpose: Some(&changed.key),
                    },
                )],
            )
            .await?
        {
            // Changed meanwhile (another request or process): the caller should look again.
            self.reload().await?;
            return Err(ServiceError::Conflict("notice_version"));
        }
        self.reload().await?;
        self.announcer
            .announce(crate::cluster::Change::Registry)
            .await;
        tracing::info!(purpose = %changed.key, version = changed.notice_version, "purpose changed");
        Ok(changed)
    }
}
