//! The rows of an export: page after page of the same scoped lists the API serves (a
//! deal page reads its buyers in the same statement, by a join), each page's labels in
//! one query, names of groups, origins, stages, people and products read once.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, Select,
};

use super::{
    ChunkWriter,
    csv::{Cell, date, money},
};
use crate::{
    Caller, DomainResult,
    contacts::{self, ContactFilter},
    deals::{self, DealFilter},
    page::{Cursor, Page, PageRequest},
    scope::scoped,
    tables::{
        contact, contact_label, deal, enums::DealStatus, group, label, origin, product, stage, user,
    },
};

/// The request of the page after `after`.
fn request(after: Option<Cursor>) -> PageRequest {
    PageRequest {
        first: PAGE,
        after,
        count: false,
    }
}

/// Where the page after `page` starts, `None` when it was the last.
fn next<T>(page: &Page<T>, position: impl Fn(&T) -> (i64, String)) -> Option<Cursor> {
    let last = page.nodes.last().filter(|_| page.has_next_page)?;
    let (at, id) = position(last);
    Some(Cursor { at, id })
}

/// An optional text as a cell's text (empty when missing).
fn text(value: Option<&String>) -> &str {
    value.map_or("", String::as_str)
}

/// Rows read per page.
const PAGE: u64 = 1000;

const DEAL_HEADER: [&str; 16] = [
    "Comprador",
    "E-mail",
    "Telefone",
    "Produto",
    "Funil",
    "Origem",
    "Etapa",
    "Situação",
    "Valor",
    "Moeda",
    "Responsável",
    "Criado em",
    "Fechado em",
    "Motivo da perda",
    "Forma de pagamento",
    "Etiquetas",
];

const CONTACT_HEADER: [&str; 6] = [
    "Nome",
    "E-mail",
    "Telefone",
    "CPF/CNPJ",
    "Criado em",
    "Etiquetas",
];

/// Names by id of the account's groups, origins, stages, people, products and labels;
/// whether the account has labels at all (when not, no page looks for them).
struct Names {
    by_id: HashMap<String, String>,
    any_labels: bool,
}

impl Names {
    async fn of(db: &impl ConnectionTrait, caller: &Caller) -> DomainResult<Names> {
        let mut names = HashMap::new();
        for g in scoped::<group::Entity>(caller).all(db).await? {
            names.insert(g.id, g.name);
        }
        for o in scoped::<origin::Entity>(caller).all(db).await? {
            names.insert(o.id, o.name);
        }
        for s in scoped::<stage::Entity>(caller).all(db).await? {
            names.insert(s.id, s.name);
        }
        for u in scoped::<user::Entity>(caller).all(db).await? {
            names.insert(u.id, if u.name.is_empty() { u.email } else { u.name });
        }
        for p in scoped::<product::Entity>(caller).all(db).await? {
            names.insert(p.id, p.name.unwrap_or(p.hotmart_product_id));
        }
        let mut labels = false;
        for l in scoped::<label::Entity>(caller).all(db).await? {
            names.insert(l.id, l.name);
            labels = true;
        }
        Ok(Names {
            by_id: names,
            any_labels: labels,
        })
    }

    fn of_id(&self, id: Option<&str>) -> &str {
        id.and_then(|id| self.by_id.get(id))
            .map_or("", String::as_str)
    }
}

/// For each contact of `ids` that has labels, their names joined by `, `.
async fn labels_of(
    db: &impl ConnectionTrait,
    caller: &Caller,
    names: &Names,
    ids: Vec<String>,
) -> DomainResult<HashMap<String, String>> {
    if !names.any_labels {
        return Ok(HashMap::new());
    }
    let mut labels: HashMap<String, Vec<&str>> = HashMap::new();
    for link in contact_label::Entity::find()
        .filter(contact_label::Column::AccountId.eq(caller.account_id.as_str()))
        .filter(contact_label::Column::ContactId.is_in(ids))
        .all(db)
        .await?
    {
        labels
            .entry(link.contact_id)
            .or_default()
            .push(names.of_id(Some(&link.label_id)));
    }
    Ok(labels
        .into_iter()
        .map(|(id, mut l)| {
            l.sort_unstable();
            (id, l.join(", "))
        })
        .collect())
}

fn status_word(status: DealStatus) -> &'static str {
    match status {
        DealStatus::Open => "Aberto",
        DealStatus::Won => "Ganho",
        DealStatus::Lost => "Perdido",
    }
}

/// A payment method as people here name it (`PIX` → Pix), else as the platform sent it.
fn method_word(method: &str) -> String {
    let code: String = method
        .chars()
        .flat_map(|c| {
            let upper = c.is_ascii_uppercase();
            [(upper).then_some('_'), Some(c.to_ascii_uppercase())]
        })
        .flatten()
        .collect::<String>()
        .trim_start_matches('_')
        .replace(['-', ' '], "_");
    match code.as_str() {
        "PIX" => "Pix".into(),
        "BILLET" | "BOLETO" | "BANK_SLIP" => "Boleto".into(),
        "CREDIT_CARD" | "CARD" => "Cartão de crédito".into(),
        "DEBIT_CARD" => "Cartão de débito".into(),
        "PAYPAL" => "PayPal".into(),
        _ => method.to_owned(),
    }
}

/// Every deal `caller` may see under `filter`, newest first.
pub(super) async fn deals(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: DealFilter,
    file: &mut ChunkWriter,
) -> DomainResult<()> {
    let header: Vec<Cell<'_>> = DEAL_HEADER.iter().map(|h| Cell::Text(h)).collect();
    file.row(&header).await?;
    let names = Names::of(db, caller).await?;
    let query = deals::filtered(db, caller, &filter).await?;
    let mut after: Option<Cursor> = None;
    loop {
        let page = deal_rows(db, &query, after.take()).await?;
        let ids: Vec<String> = page.iter().map(|d| d.contact_id.clone()).collect();
        let labels = labels_of(db, caller, &names, ids).await?;
        for d in &page {
            deal_row(file, &names, labels.get(&d.contact_id), d).await?;
        }
        match page.last() {
            Some(last) if page.len() as u64 == PAGE => {
                after = Some(Cursor {
                    at: last.created_at,
                    id: last.id.clone(),
                });
            }
            _ => return Ok(()),
        }
    }
}

/// A deal as its row shows it, with its buyer's name, e-mail and phone.
#[derive(sea_orm::FromQueryResult)]
struct DealRow {
    id: String,
    contact_id: String,
    group_id: String,
    origin_id: String,
    stage_id: String,
    product_id: Option<String>,
    status: DealStatus,
    owner_id: Option<String>,
    value_cents: Option<i64>,
    currency: Option<String>,
    lost_reason: Option<String>,
    details: Option<String>,
    created_at: i64,
    closed_at: Option<i64>,
    buyer_name: Option<String>,
    buyer_email: Option<String>,
    buyer_phone: Option<String>,
}

/// The page of `query`'s deals after `after` (newest first), each with its buyer: one
/// statement, only the columns a row shows.
async fn deal_rows(
    db: &impl ConnectionTrait,
    query: &Select<deal::Entity>,
    after: Option<Cursor>,
) -> DomainResult<Vec<DealRow>> {
    use deal::Column as D;
    let buyer = deal::Entity::belongs_to(contact::Entity)
        .from(D::ContactId)
        .to(contact::Column::Id)
        .into();
    let query = query
        .clone()
        .select_only()
        .columns([
            D::Id,
            D::ContactId,
            D::GroupId,
            D::OriginId,
            D::StageId,
            D::ProductId,
            D::Status,
            D::OwnerId,
            D::ValueCents,
            D::Currency,
            D::LostReason,
            D::Details,
            D::CreatedAt,
            D::ClosedAt,
        ])
        .column_as(contact::Column::Name, "buyer_name")
        .column_as(contact::Column::Email, "buyer_email")
        .column_as(contact::Column::Phone, "buyer_phone")
        .join(JoinType::LeftJoin, buyer);
    let query = crate::page::keyset(query, (D::CreatedAt, D::Id), false, after.as_ref(), PAGE);
    Ok(query.into_model::<DealRow>().all(db).await?)
}

/// The two parts of a deal's details a row shows; the rest of the JSON is skipped, not
/// built (a million rows parse it once each).
#[derive(Default, serde::Deserialize)]
struct Shown {
    #[serde(default)]
    payment: Option<ShownPayment>,
    #[serde(default)]
    product_name: Option<String>,
}

#[derive(serde::Deserialize)]
struct ShownPayment {
    #[serde(default)]
    method: Option<String>,
}

async fn deal_row(
    file: &mut ChunkWriter,
    names: &Names,
    labels: Option<&String>,
    d: &DealRow,
) -> DomainResult<()> {
    let details: Shown = d
        .details
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let method = details
        .payment
        .and_then(|p| p.method)
        .map(|m| method_word(&m))
        .unwrap_or_default();
    let product = match names.of_id(d.product_id.as_deref()) {
        "" => details.product_name.unwrap_or_default(),
        name => name.to_owned(),
    };
    file.row(&[
        Cell::Text(text(d.buyer_name.as_ref())),
        Cell::Text(text(d.buyer_email.as_ref())),
        Cell::Text(text(d.buyer_phone.as_ref())),
        Cell::Text(&product),
        Cell::Text(names.of_id(Some(&d.group_id))),
        Cell::Text(names.of_id(Some(&d.origin_id))),
        Cell::Text(names.of_id(Some(&d.stage_id))),
        Cell::Text(status_word(d.status)),
        Cell::Plain(d.value_cents.map(money).unwrap_or_default()),
        Cell::Text(text(d.currency.as_ref())),
        Cell::Text(names.of_id(d.owner_id.as_deref())),
        Cell::Plain(date(d.created_at)),
        Cell::Plain(d.closed_at.map(date).unwrap_or_default()),
        Cell::Text(text(d.lost_reason.as_ref())),
        Cell::Text(&method),
        Cell::Text(text(labels)),
    ])
    .await
}

/// Every contact `caller` may see under `filter`, newest first.
pub(super) async fn contacts(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: ContactFilter,
    file: &mut ChunkWriter,
) -> DomainResult<()> {
    let header: Vec<Cell<'_>> = CONTACT_HEADER.iter().map(|h| Cell::Text(h)).collect();
    file.row(&header).await?;
    let names = Names::of(db, caller).await?;
    let mut after: Option<Cursor> = None;
    loop {
        let page = contacts::page(db, caller, filter.clone(), request(after.take())).await?;
        let ids = page.nodes.iter().map(|c| c.id.clone()).collect();
        let labels = labels_of(db, caller, &names, ids).await?;
        for c in &page.nodes {
            let cells = [
                Cell::Text(text(c.name.as_ref())),
                Cell::Text(&c.email),
                Cell::Text(text(c.phone.as_ref())),
                Cell::Text(text(c.document.as_ref())),
                Cell::Plain(date(c.created_at)),
                Cell::Text(text(labels.get(&c.id))),
            ];
            file.row(&cells).await?;
        }
        after = next(&page, |c| (c.created_at, c.id.clone()));
        if after.is_none() {
            return Ok(());
        }
    }
}
