//! `simulateDelivery`: what posting a body would do, without writing anything (see
//! `entity::simulation`).

use async_graphql::{Context, ID, Object, SimpleObject};

use super::{
    context::ContextExt,
    error::ApiResult,
    types::{DealStatus, Origin, User},
};

/// What the webhook endpoint and the deal engine would do with a body.
#[derive(SimpleObject)]
pub struct Simulation {
    /// What the webhook endpoint would answer: accepted, duplicate, ignored, test or rejected.
    pub answer: String,
    pub reason: Option<String>,
    pub contact_email: Option<String>,
    pub origin: Option<Origin>,
    pub deal_status: Option<DealStatus>,
    pub owner: Option<User>,
    pub tags: Vec<String>,
}

#[derive(Default)]
pub struct SimulationMutation;

#[Object]
impl SimulationMutation {
    /// Runs a body through the real parser and the real deal engine and answers what would
    /// happen, leaving the database unchanged. Admins only.
    async fn simulate_delivery(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        payload: String,
    ) -> ApiResult<Simulation> {
        let app = ctx.app();
        let simulated = entity::simulation::simulate(
            &app.db,
            &app.keys,
            ctx.caller()?,
            &integration_id,
            &payload,
        )
        .await?;
        Ok(Simulation {
            answer: simulated.answer.to_owned(),
            reason: simulated.reason,
            contact_email: simulated.contact_email,
            origin: simulated.origin.map(Origin),
            deal_status: simulated.deal_status.map(Into::into),
            owner: simulated.owner.map(User),
            tags: simulated.tags,
        })
    }
}
