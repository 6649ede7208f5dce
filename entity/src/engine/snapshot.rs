//! What the engine needs to know about an integration, loaded once per group of events:
//! its group, origins (with the rule each checkout event follows), stages and products.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::model::OriginRule;
use crate::{
    DomainError, DomainResult,
    sale::CheckoutEvent,
    tables::{group, integration, origin, product, stage},
};

/// An integration as the engine sees it.
#[derive(Debug, Clone)]
pub struct IntegrationSnapshot {
    pub integration: integration::Model,
    pub group: group::Model,
    pub origins: Vec<origin::Model>,
    pub products: Vec<product::Model>,
    /// Every stage of the group's origins, deleted ones too (they name their successor),
    /// by position.
    pub stages: Vec<stage::Model>,
    rules: HashMap<CheckoutEvent, OriginRule>,
}

impl IntegrationSnapshot {
    pub async fn load(db: &impl ConnectionTrait, integration_id: &str) -> DomainResult<Self> {
        let integration = integration::Entity::find_by_id(integration_id.to_owned())
            .one(db)
            .await?
            .ok_or(DomainError::NotFound("integration"))?;
        let group = crate::integrations::group_of(db, &integration).await?;
        Self::of_group(db, integration, group).await
    }

    /// The snapshot of an integration whose group is already read.
    pub async fn of_group(
        db: &impl ConnectionTrait,
        integration: integration::Model,
        group: group::Model,
    ) -> DomainResult<Self> {
        let origins = origin::Entity::find()
            .filter(origin::Column::GroupId.eq(group.id.as_str()))
            .all(db)
            .await?;
        let stages = stage::Entity::find()
            .filter(stage::Column::OriginId.is_in(origins.iter().map(|o| o.id.as_str())))
            .order_by_asc(stage::Column::Position)
            .order_by_asc(stage::Column::CreatedAt)
            .all(db)
            .await?;
        let products = crate::products::of_integration(db, &integration.id).await?;
        let mut snapshot = Self {
            integration,
            group,
            origins,
            products,
            stages,
            rules: HashMap::new(),
        };
        snapshot.rules = snapshot
            .origins
            .iter()
            .filter_map(|o| {
                let rule = OriginRule {
                    origin_id: o.id.clone(),
                    entry_status: o.entry_status,
                    first_stage_id: snapshot.first_stage(&o.id)?.to_owned(),
                };
                Some((o.checkout_event?, rule))
            })
            .collect();
        Ok(snapshot)
    }

    pub fn origin_rule(&self, event: CheckoutEvent) -> Option<OriginRule> {
        self.rules.get(&event).cloned()
    }

    pub fn product(&self, hotmart_product_id: Option<&str>) -> Option<&product::Model> {
        let id = hotmart_product_id?;
        self.products.iter().find(|p| p.hotmart_product_id == id)
    }

    /// The first live stage of an origin.
    pub fn first_stage(&self, origin_id: &str) -> Option<&str> {
        self.stages
            .iter()
            .find(|s| s.origin_id == origin_id && s.deleted_at.is_none())
            .map(|s| s.id.as_str())
    }

    /// The live stage a deal in `origin_id` recorded at `stage_id` is in: a deleted stage
    /// stands for the one its deals moved to; a stage of another origin (or none) for the
    /// origin's first.
    pub fn live_stage(&self, origin_id: &str, stage_id: &str) -> String {
        let mut current = stage_id;
        for _ in 0..self.stages.len() + 1 {
            match self.stages.iter().find(|s| s.id == current) {
                Some(s) if s.deleted_at.is_none() && s.origin_id == origin_id => {
                    return s.id.clone();
                }
                Some(stage::Model {
                    replaced_by: Some(next),
                    deleted_at: Some(_),
                    ..
                }) => current = next,
                _ => break,
            }
        }
        self.first_stage(origin_id).unwrap_or(stage_id).to_owned()
    }

    pub fn account_id(&self) -> &str {
        &self.integration.account_id
    }
}
