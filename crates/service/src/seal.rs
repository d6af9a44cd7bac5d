//! How each domain value is encoded, sealed and opened. Pure functions over a data key.
//!
//! INVARIANT: every personal value goes through [`seal_field`] with associated data naming its
//! table, column, customer and record; the store receives only the output.

use steward_crypto::{DataKey, FieldAad};
use steward_domain::pii::PiiTypes;
use steward_domain::{
    Customer, CustomerId, Interaction, InteractionId, NewCustomer, OutletId, ProfileField,
    Purchase, PurchaseId, StaffId, Timestamp, interaction::Channel,
};
use steward_store::{CustomerRow, InteractionRow, PurchaseRow};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

fn aad<'a>(table: &'a str, column: &'a str, customer: CustomerId, record: Uuid) -> FieldAad<'a> {
    FieldAad {
        table,
        column,
        customer: customer.0,
        record,
    }
}

fn seal_opt(
    dk: &DataKey,
    column: &str,
    id: CustomerId,
    v: Option<&[u8]>,
) -> ServiceResult<Option<Vec<u8>>> {
    v.map(|v| dk.seal(&aad("customers", column, id, id.0), v))
        .transpose()
        .map_err(Into::into)
}

fn open_str(
    dk: &DataKey,
    table: &str,
    column: &str,
    customer: CustomerId,
    record: Uuid,
    sealed: &[u8],
) -> ServiceResult<String> {
    let bytes = dk.open(&aad(table, column, customer, record), sealed)?;
    String::from_utf8(bytes).map_err(|_| ServiceError::Integrity)
}

/// Seals a value of a contact change (`column`: `value`, the new one, or `previous`).
pub fn seal_contact_change(
    dk: &DataKey,
    customer: CustomerId,
    change: Uuid,
    column: &str,
    value: &str,
) -> ServiceResult<Vec<u8>> {
    Ok(dk.seal(
        &aad("contact_changes", column, customer, change),
        value.as_bytes(),
    )?)
}

/// Opens a value of a contact change.
pub fn open_contact_change(
    dk: &DataKey,
    customer: CustomerId,
    change: Uuid,
    column: &str,
    sealed: &[u8],
) -> ServiceResult<String> {
    open_str(dk, "contact_changes", column, customer, change, sealed)
}

/// Seals the reason of an access alert (a staff member's words about the customer).
pub fn seal_alert_reason(
    dk: &DataKey,
    customer: CustomerId,
    alert: Uuid,
    reason: &str,
) -> ServiceResult<Vec<u8>> {
    Ok(dk.seal(
        &aad("access_alerts", "reason", customer, alert),
        reason.as_bytes(),
    )?)
}

/// Opens the reason of an access alert.
pub fn open_alert_reason(
    dk: &DataKey,
    customer: CustomerId,
    alert: Uuid,
    sealed: &[u8],
) -> ServiceResult<String> {
    open_str(dk, "access_alerts", "reason", customer, alert, sealed)
}

/// Seals a customer's profile into a row: each field under its own associated data (table
/// `customers`, the field's name as column), walking the one declaration of the fields.
pub fn seal_customer(
    dk: &DataKey,
    id: CustomerId,
    c: &NewCustomer,
    created_at: i64,
    updated_at: i64,
) -> ServiceResult<CustomerRow> {
    Ok(CustomerRow {
        id,
        outlet_id: c.outlet_id,
        created_at,
        updated_at,
        fields: c
            .to_bytes()
            .into_iter()
            .map(|(f, v)| seal_opt(dk, f.name(), id, v.as_deref()))
            .collect::<ServiceResult<_>>()?,
    })
}

/// Opens only the profile fields `wanted` selects; the others stay sealed (and absent).
pub fn open_customer_fields(
    dk: &DataKey,
    r: &CustomerRow,
    wanted: impl Fn(ProfileField) -> bool,
) -> ServiceResult<Customer> {
    let mut profile = NewCustomer {
        outlet_id: r.outlet_id,
        ..NewCustomer::default()
    };
    for &f in ProfileField::ALL {
        let Some(sealed) = r.field(f).filter(|_| wanted(f)) else {
            continue;
        };
        let bytes = dk.open(&aad("customers", f.name(), r.id, r.id.0), sealed)?;
        if !profile.set_bytes(f, Some(&bytes)) {
            return Err(ServiceError::Integrity);
        }
    }
    Ok(Customer::with_profile(
        r.id,
        profile,
        Timestamp(r.created_at),
        Timestamp(r.updated_at),
    ))
}

/// Opens a customer row.
pub fn open_customer(dk: &DataKey, r: &CustomerRow) -> ServiceResult<Customer> {
    open_customer_fields(dk, r, |_| true)
}

/// Seals an interaction, recording the kinds of personal data its text holds.
pub fn seal_interaction(
    dk: &DataKey,
    customer: CustomerId,
    id: InteractionId,
    i: &steward_domain::NewInteraction,
) -> ServiceResult<InteractionRow> {
    seal_screened(dk, customer, id, i, PiiTypes::NONE)
}

/// Seals an interaction whose text may have been masked or redacted: `found` are the kinds
/// found before, recorded with those in the text as it is now. Every interaction passes here,
/// so none is stored unexamined.
pub fn seal_screened(
    dk: &DataKey,
    customer: CustomerId,
    id: InteractionId,
    i: &steward_domain::NewInteraction,
    found: PiiTypes,
) -> ServiceResult<InteractionRow> {
    let pii_types = found.union(crate::pii::types_in(&i.text));
    Ok(InteractionRow {
        id: id.as_bytes().to_vec(),
        customer_id: customer,
        channel: i.channel.as_str().to_owned(),
        source: i.source.clone(),
        occurred_at: i.occurred_at.millis(),
        body: dk.seal(
            &aad("interactions", "body", customer, id.0),
            i.text.as_bytes(),
        )?,
        pii_types: pii_types.to_stored(),
    })
}

/// Opens an interaction row.
pub fn open_interaction(dk: &DataKey, r: &InteractionRow) -> ServiceResult<Interaction> {
    let id = InteractionId::from_slice(&r.id).ok_or(ServiceError::Integrity)?;
    Ok(Interaction {
        id,
        customer_id: r.customer_id,
        channel: Channel::parse(&r.channel).ok_or(ServiceError::Integrity)?,
        text: open_str(dk, "interactions", "body", r.customer_id, id.0, &r.body)?,
        source: r.source.clone(),
        occurred_at: Timestamp(r.occurred_at),
        pii_types: PiiTypes::from_stored(&r.pii_types),
        masked: false,
    })
}

/// Seals a purchase: item, amount, outlet and seller each under their own associated data.
pub fn seal_purchase(
    dk: &DataKey,
    customer: CustomerId,
    id: PurchaseId,
    p: &steward_domain::NewPurchase,
) -> ServiceResult<PurchaseRow> {
    let a = |column| aad("purchases", column, customer, id.0);
    Ok(PurchaseRow {
        id: id.as_bytes().to_vec(),
        customer_id: customer,
        category: p.category.clone(),
        currency: p.currency.clone(),
        occurred_at: p.occurred_at.millis(),
        item: dk.seal(&a("item"), p.item.as_bytes())?,
        amount: dk.seal(&a("amount"), &p.amount_minor.to_be_bytes())?,
        outlet: dk.seal(&a("outlet"), p.outlet_id.as_bytes())?,
        seller: p
            .seller_id
            .map(|s| dk.seal(&a("seller"), s.as_bytes()))
            .transpose()?,
    })
}

/// Opens a purchase row.
pub fn open_purchase(dk: &DataKey, r: &PurchaseRow) -> ServiceResult<Purchase> {
    let id = PurchaseId::from_slice(&r.id).ok_or(ServiceError::Integrity)?;
    let a = |column| aad("purchases", column, r.customer_id, id.0);
    let amount: [u8; 8] = dk
        .open(&a("amount"), &r.amount)?
        .try_into()
        .map_err(|_| ServiceError::Integrity)?;
    let outlet =
        OutletId::from_slice(&dk.open(&a("outlet"), &r.outlet)?).ok_or(ServiceError::Integrity)?;
    let seller = r
        .seller
        .as_deref()
        .map(|s| dk.open(&a("seller"), s))
        .transpose()?;
    Ok(Purchase {
        id,
        customer_id: r.customer_id,
        item: open_str(dk, "purchases", "item", r.customer_id, id.0, &r.item)?,
        category: r.category.clone(),
        outlet_id: outlet,
        seller_id: seller
            .map(|s| StaffId::from_slice(&s).ok_or(ServiceError::Integrity))
            .transpose()?,
        amount_minor: i64::from_be_bytes(amount),
        currency: r.currency.clone(),
        occurred_at: Timestamp(r.occurred_at),
    })
}

/// Opens only a purchase's amount (a segment's spending rule needs no more of it).
pub fn open_amount(
    dk: &DataKey,
    customer: CustomerId,
    purchase: &[u8],
    sealed: &[u8],
) -> ServiceResult<i64> {
    let id = PurchaseId::from_slice(purchase).ok_or(ServiceError::Integrity)?;
    let amount: [u8; 8] = dk
        .open(&aad("purchases", "amount", customer, id.0), sealed)?
        .try_into()
        .map_err(|_| ServiceError::Integrity)?;
    Ok(i64::from_be_bytes(amount))
}

/// Opens only a customer's preferred language (a segment's language rule).
pub fn open_language(dk: &DataKey, customer: CustomerId, sealed: &[u8]) -> ServiceResult<String> {
    let field = ProfileField::PreferredLanguage;
    open_str(dk, "customers", field.name(), customer, customer.0, sealed)
}

/// Seals a rectification request's corrections, bound to the customer and the request.
pub fn seal_corrections(
    dk: &DataKey,
    customer: CustomerId,
    request: Uuid,
    json: &[u8],
) -> ServiceResult<Vec<u8>> {
    Ok(dk.seal(
        &aad("rights_requests", "corrections", customer, request),
        json,
    )?)
}

/// Opens what [`seal_corrections`] sealed.
pub fn open_corrections(
    dk: &DataKey,
    customer: CustomerId,
    request: Uuid,
    sealed: &[u8],
) -> ServiceResult<Vec<u8>> {
    Ok(dk.open(
        &aad("rights_requests", "corrections", customer, request),
        sealed,
    )?)
}

/// Seals a profile change's previous values, bound to the customer and the change.
pub fn seal_change(
    dk: &DataKey,
    customer: CustomerId,
    change: Uuid,
    json: &[u8],
) -> ServiceResult<Vec<u8>> {
    Ok(dk.seal(&aad("customer_changes", "previous", customer, change), json)?)
}

/// Opens what [`seal_change`] sealed.
pub fn open_change(
    dk: &DataKey,
    customer: CustomerId,
    change: Uuid,
    sealed: &[u8],
) -> ServiceResult<Vec<u8>> {
    Ok(dk.open(
        &aad("customer_changes", "previous", customer, change),
        sealed,
    )?)
}

/// Seals a text of a message thread (`table`.`column`: a thread's subject or reply alias, a
/// message's subject) under the customer's key, bound to its row.
pub fn seal_thread_text(
    dk: &DataKey,
    (table, column): (&str, &str),
    customer: CustomerId,
    record: Uuid,
    text: &str,
) -> ServiceResult<Vec<u8>> {
    Ok(dk.seal(&aad(table, column, customer, record), text.as_bytes())?)
}

/// Opens what [`seal_thread_text`] sealed.
pub fn open_thread_text(
    dk: &DataKey,
    (table, column): (&str, &str),
    customer: CustomerId,
    record: Uuid,
    sealed: &[u8],
) -> ServiceResult<String> {
    open_str(dk, table, column, customer, record, sealed)
}

/// Opens a purchase's item alone (personalisation's baskets read nothing else of it).
pub fn open_item(
    dk: &DataKey,
    customer: CustomerId,
    purchase: &[u8],
    sealed: &[u8],
) -> ServiceResult<String> {
    let id = PurchaseId::from_slice(purchase).ok_or(ServiceError::Integrity)?;
    open_str(dk, "purchases", "item", customer, id.0, sealed)
}

/// Opens only a purchase's outlet (analytics' sales by outlet).
pub fn open_purchase_outlet(
    dk: &DataKey,
    customer: CustomerId,
    purchase: &[u8],
    sealed: &[u8],
) -> ServiceResult<OutletId> {
    let id = PurchaseId::from_slice(purchase).ok_or(ServiceError::Integrity)?;
    OutletId::from_slice(&dk.open(&aad("purchases", "outlet", customer, id.0), sealed)?)
        .ok_or(ServiceError::Integrity)
}
