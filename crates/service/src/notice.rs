//! Staff who have agreed to the rules (issue 17, point 8; `seeds/003`): the DPO publishes a
//! versioned confidentiality notice; a staff member reads personal data only after acknowledging
//! the current version (again when it changes, and every 12 months). The policy sees it as
//! `context.acknowledged` and its `acknowledgement-required` forbid refuses the read otherwise.
//! Until a notice is published nothing is required; service clients (role tokens) are not
//! people and acknowledge nothing.
//!
//! The notice and every staff member's latest acknowledgement are kept in memory (a few hundred
//! staff), so the read path asks no query; they are re-read with the purpose registry, so another
//! node's acknowledgement counts here within that interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use steward_domain::{StaffId, Timestamp, ValidationError, normalize};
use steward_policy::Action;
use steward_store::{AcknowledgementRow, NoticeRow, NoticeStore, StoreError};

use crate::cluster::Announcer;
use crate::directory::Directory;
use crate::door::Door;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Principal};

/// How long an acknowledgement holds: 12 months (365 days).
pub const ACKNOWLEDGEMENT_LASTS_MS: i64 = 365 * 86_400_000;

/// A version of the confidentiality notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Notice {
    /// Its version, from 1; each publication raises it.
    pub version: i64,
    /// The text staff read and acknowledge.
    pub text: String,
    /// When it was published.
    pub published_at: Timestamp,
}

#[derive(Default)]
struct State {
    current: Option<Notice>,
    /// Each staff member's latest acknowledgement: (version, when in ms).
    acks: HashMap<StaffId, (i64, i64)>,
}

/// The notice and the acknowledgements, as the read path consults them.
#[derive(Default)]
struct NoticeState(RwLock<State>);

impl NoticeState {
    /// Reads the current notice and every latest acknowledgement.
    async fn reload(&self, store: &dyn NoticeStore) -> ServiceResult<()> {
        let current = store.current_notice().await?.map(from_row);
        let acks = store
            .latest_acknowledgements()
            .await?
            .into_iter()
            .map(|a| (a.staff_id, (a.version, a.acknowledged_at)))
            .collect();
        if let Ok(mut s) = self.0.write() {
            *s = State { current, acks };
        }
        Ok(())
    }

    /// Whether `principal` may read as far as the notice is concerned (`context.acknowledged`).
    /// Fails closed: a poisoned lock counts as not acknowledged.
    fn acknowledged(&self, principal: &Principal, now: Timestamp) -> bool {
        let Ok(s) = self.0.read() else { return false };
        let Some(current) = &s.current else {
            return true;
        };
        let Some(staff) = principal.staff_id() else {
            return true;
        };
        s.acks.get(&staff).is_some_and(|(version, at)| {
            *version == current.version && now.millis() - at <= ACKNOWLEDGEMENT_LASTS_MS
        })
    }

    fn current(&self) -> Option<Notice> {
        self.0.read().ok().and_then(|s| s.current.clone())
    }

    fn record(&self, staff: StaffId, version: i64, at: i64) {
        if let Ok(mut s) = self.0.write() {
            s.acks.insert(staff, (version, at));
        }
    }

    fn latest(&self, staff: StaffId) -> Option<(i64, i64)> {
        self.0.read().ok().and_then(|s| s.acks.get(&staff).copied())
    }
}

fn from_row(r: NoticeRow) -> Notice {
    Notice {
        version: r.version,
        text: r.text,
        published_at: Timestamp(r.published_at),
    }
}

/// The notice's context: the DPO publishes, staff acknowledge, the read path asks
/// [`Notices::acknowledged`] (memory only).
pub struct Notices {
    door: Arc<Door>,
    store: Arc<dyn NoticeStore>,
    state: NoticeState,
    /// The staff who have not acknowledged come from the directory.
    directory: Arc<Directory>,
    announcer: Arc<Announcer>,
}

impl Notices {
    /// The notices of one installation, loaded (made by the composition root).
    pub(crate) async fn open(
        door: Arc<Door>,
        store: Arc<dyn NoticeStore>,
        directory: Arc<Directory>,
        announcer: Arc<Announcer>,
    ) -> ServiceResult<Self> {
        let notices = Notices {
            door,
            store,
            state: NoticeState::default(),
            directory,
            announcer,
        };
        notices.reload().await?;
        Ok(notices)
    }

    fn door(&self) -> &Door {
        &self.door
    }

    /// Reads the notice and the acknowledgements again (another server may have changed them).
    pub(crate) async fn reload(&self) -> ServiceResult<()> {
        self.state.reload(&*self.store).await
    }

    /// Whether `principal` may read as far as the notice is concerned (`context.acknowledged`).
    pub(crate) fn acknowledged(&self, principal: &Principal, now: Timestamp) -> bool {
        self.state.acknowledged(principal, now)
    }

    /// The current confidentiality notice, if one is published.
    pub fn current(&self) -> Option<Notice> {
        self.state.current()
    }

    /// Whether `principal` must acknowledge the current notice before reading personal data.
    pub fn must_acknowledge(&self, principal: &Principal) -> bool {
        !self.acknowledged(principal, Timestamp::now())
    }

    /// Publishes a new version of the notice (the DPO's); everyone must acknowledge it again.
    pub async fn publish(&self, principal: &Principal, text: &str) -> ServiceResult<Notice> {
        self.door()
            .authorize(principal, Action::ManageNotice, None)
            .await?;
        let text = normalize::long_text("text", text)?;
        let version = self.state.current().map_or(1, |n| n.version + 1);
        let row = NoticeRow {
            version,
            text,
            published_at: Timestamp::now().millis(),
        };
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "publish_notice",
            None,
            &[],
            crate::door::About {
                subject: Some(&format!("confidentiality notice version {version}")),
                purpose: None,
            },
        );
        let published = self.store.publish_notice(&row, &[entry]).await;
        // Published meanwhile by another node: the caller looks again.
        self.reload().await?;
        match published {
            Err(StoreError::Conflict) => Err(ServiceError::Conflict("version")),
            other => {
                other?;
                self.announcer
                    .announce(crate::cluster::Change::Registry)
                    .await;
                Ok(from_row(row))
            }
        }
    }

    /// Records that the staff member `principal` acknowledges `version` of the notice: it must
    /// be the current one. An audit entry.
    pub async fn acknowledge(&self, principal: &Principal, version: i64) -> ServiceResult<()> {
        let Some(staff) = principal.staff_id() else {
            return Err(ServiceError::Forbidden {
                field: "Authorization",
                detail: "a service client acknowledges nothing: sign in as a staff member".into(),
            });
        };
        let Some(current) = self.state.current() else {
            return Err(ValidationError::new("notice_version", "no notice is published").into());
        };
        if version != current.version {
            return Err(ValidationError::new(
                "notice_version",
                format!("the current notice is version {}", current.version),
            )
            .into());
        }
        let at = Timestamp::now().millis();
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "acknowledge",
            None,
            &[],
            crate::door::About {
                subject: Some(&format!("confidentiality notice version {version}")),
                purpose: None,
            },
        );
        let row = AcknowledgementRow {
            staff_id: staff,
            version,
            acknowledged_at: at,
        };
        self.store.acknowledge(&row, &[entry]).await?;
        self.state.record(staff, version, at);
        Ok(())
    }

    /// The staff members (not disabled) who have not acknowledged the current notice, or whose
    /// acknowledgement is older than 12 months: for the DPO. Empty while none is published.
    pub async fn unacknowledged_staff(
        &self,
        principal: &Principal,
    ) -> ServiceResult<Vec<crate::Staff>> {
        self.door()
            .authorize(principal, Action::ManageNotice, None)
            .await?;
        let Some(current) = self.state.current() else {
            return Ok(Vec::new());
        };
        let now = Timestamp::now().millis();
        Ok(self
            .directory
            .staff_directory()
            .await?
            .into_iter()
            .filter(|m| !m.disabled)
            .filter(|m| {
                !self.state.latest(m.id).is_some_and(|(v, at)| {
                    v == current.version && now - at <= ACKNOWLEDGEMENT_LASTS_MS
                })
            })
            .collect())
    }
}
