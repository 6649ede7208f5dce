//! Working the pipeline: stages, lost reasons, hand-made origins, sellers' actions on
//! deals, activities, the live board and the recovery report.

use std::collections::HashMap;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::audit::Change;
use entity::{
    activities::{self, ActivityFilter as DomainActivityFilter},
    groups, origins,
    page::PageRequest,
    reports, stages,
    tables::user,
    work::{self, Intent},
};
use futures::Stream;
use serde_json::json;

use super::{
    audited::Audited,
    context::ContextExt,
    error::{ApiError, ApiResult},
    pipeline::{Activity, Deal, TimelineEntry},
    types::{ActivityKind, LostReason, Origin, PageInfo, Stage, User, time},
};

#[derive(SimpleObject)]
pub struct ActivityConnection {
    pub nodes: Vec<Activity>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(InputObject, Default)]
pub struct ActivityFilter {
    pub assignee_id: Option<ID>,
    pub deal_id: Option<ID>,
    pub done: Option<bool>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct CreateOriginInput {
    pub name: String,
}

#[derive(InputObject)]
pub struct StageInput {
    pub name: Option<String>,
    pub position: Option<i32>,
}

#[derive(InputObject)]
pub struct MoveDealInput {
    pub stage_id: ID,
    pub expected_version: Option<i64>,
}

#[derive(InputObject)]
pub struct LoseDealInput {
    pub lost_reason_id: Option<ID>,
    pub note: Option<String>,
    pub expected_version: Option<i64>,
}

#[derive(InputObject)]
pub struct ScheduleActivityInput {
    pub kind: ActivityKind,
    pub title: String,
    pub due_at: DateTime<Utc>,
    pub assignee_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct OriginReport {
    pub origin: Origin,
    /// Deals that entered the origin's journey in the window.
    pub entered: i32,
    pub open: i32,
    pub won: i32,
    pub lost: i32,
    pub won_value: f64,
}

#[derive(SimpleObject)]
pub struct SellerReport {
    /// Null for deals without an owner.
    pub user: Option<User>,
    pub won: i32,
    pub lost: i32,
    pub won_value: f64,
    pub activities_done: i32,
    pub median_first_action_minutes: Option<f64>,
}

#[derive(SimpleObject)]
pub struct PipelineReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: Option<String>,
    /// Won deals whose journey began in a pre-sale origin.
    pub recovered_deals: i32,
    pub recovered_value: f64,
    /// Of those, the ones a person acted on before the payment.
    pub recovered_by_team: i32,
    pub origins: Vec<OriginReport>,
    pub sellers: Vec<SellerReport>,
}

#[derive(Default)]
pub struct WorkQuery;

#[Object]
impl WorkQuery {
    /// Activities the caller may see, soonest first.
    #[graphql(complexity = "super::page_cost(first, child_complexity)")]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilter>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<ActivityConnection> {
        let mut request = PageRequest::parse(first, after.as_deref())?;
        request.count = ctx.look_ahead().field("totalCount").exists();
        let filter = filter.unwrap_or_default();
        let filter = DomainActivityFilter {
            assignee_id: filter.assignee_id.map(|id| id.0),
            deal_id: filter.deal_id.map(|id| id.0),
            done: filter.done,
            due_before: filter.due_before.map(|t| t.timestamp_millis()),
            due_after: filter.due_after.map(|t| t.timestamp_millis()),
        };
        let page = activities::page(&ctx.app().db.conn, ctx.caller()?, filter, request).await?;
        let (page_info, total_count, nodes) = PageInfo::split(page, Activity);
        Ok(ActivityConnection {
            nodes,
            page_info,
            total_count,
        })
    }

    /// Per origin and per seller, and the recovered sales, over deals created in the
    /// window.
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn pipeline_report(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<PipelineReport> {
        let db = &ctx.app().db.conn;
        let caller = ctx.caller()?;
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let report = reports::pipeline(db, caller, &group_id, from, to).await?;
        let mut origins_out = Vec::new();
        for o in report.origins {
            origins_out.push(OriginReport {
                origin: Origin(o.origin),
                entered: o.entered as i32,
                open: o.open as i32,
                won: o.won as i32,
                lost: o.lost as i32,
                won_value: entity::money::to_f64(o.won_cents),
            });
        }
        let users: HashMap<String, user::Model> = entity::users::list(db, caller)
            .await?
            .into_iter()
            .map(|u| (u.id.clone(), u))
            .collect();
        let sellers = report
            .sellers
            .into_iter()
            .map(|s| SellerReport {
                user: s.user_id.and_then(|id| users.get(&id).cloned()).map(User),
                won: s.won as i32,
                lost: s.lost as i32,
                won_value: entity::money::to_f64(s.won_cents),
                activities_done: s.activities_done as i32,
                median_first_action_minutes: s.median_first_action_minutes,
            })
            .collect();
        Ok(PipelineReport {
            from: time(from),
            to: time(to),
            currency: report.currency,
            recovered_deals: report.recovered_deals as i32,
            recovered_value: entity::money::to_f64(report.recovered_cents),
            recovered_by_team: report.recovered_by_team as i32,
            origins: origins_out,
            sellers,
        })
    }
}

fn ids(ids: Vec<ID>) -> Vec<String> {
    ids.into_iter().map(|id| id.0).collect()
}

#[derive(Default)]
pub struct WorkMutation;

#[Object]
impl WorkMutation {
    /// A hand-made origin (no checkout event; only people put deals in it).
    async fn create_origin(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        input: CreateOriginInput,
    ) -> ApiResult<Origin> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let origin = origins::create_hand_made(tx.db(), caller, &group_id, &input.name).await?;
        let change = Change::new("origin.created", "origin", &origin.id)
            .with(json!({"groupId": origin.group_id, "name": origin.name}));
        tx.commit(caller, change).await?;
        Ok(Origin(origin))
    }

    async fn create_stage(
        &self,
        ctx: &Context<'_>,
        origin_id: ID,
        input: StageInput,
    ) -> ApiResult<Stage> {
        let (name, position) = (input.name.as_deref(), input.position);
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let stage = stages::create(tx.db(), caller, &origin_id, name, position).await?;
        let change = Change::new("stage.created", "stage", &stage.id)
            .with(json!({"originId": stage.origin_id, "name": stage.name}));
        tx.commit(caller, change).await?;
        Ok(Stage(stage))
    }

    async fn update_stage(
        &self,
        ctx: &Context<'_>,
        stage_id: ID,
        input: StageInput,
    ) -> ApiResult<Stage> {
        let (name, position) = (input.name.as_deref(), input.position);
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let stage = stages::update(tx.db(), caller, &stage_id, name, position).await?;
        let change = Change::new("stage.updated", "stage", &stage.id)
            .with(json!({"name": input.name, "position": input.position}));
        tx.commit(caller, change).await?;
        Ok(Stage(stage))
    }

    /// Deletes a stage; its deals go to `moveDealsTo` (required when it holds any).
    async fn delete_stage(
        &self,
        ctx: &Context<'_>,
        stage_id: ID,
        move_deals_to: Option<ID>,
    ) -> ApiResult<bool> {
        let target = move_deals_to.as_ref().map(|id| id.0.as_str());
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let deleted = stages::delete(tx.db(), caller, &stage_id, target).await?;
        let change =
            Change::new("stage.deleted", "stage", &stage_id).with(json!({"moveDealsTo": target}));
        tx.commit(caller, change).await?;
        Ok(deleted)
    }

    async fn create_lost_reason(
        &self,
        ctx: &Context<'_>,
        origin_id: ID,
        name: String,
    ) -> ApiResult<LostReason> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let reason = stages::create_lost_reason(tx.db(), caller, &origin_id, &name).await?;
        let change = Change::new("lost_reason.created", "lost_reason", &reason.id)
            .with(json!({"originId": origin_id.0, "name": name}));
        tx.commit(caller, change).await?;
        Ok(LostReason(reason))
    }

    async fn delete_lost_reason(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let deleted = stages::delete_lost_reason(tx.db(), caller, &id).await?;
        tx.commit(
            caller,
            Change::new("lost_reason.deleted", "lost_reason", &id),
        )
        .await?;
        Ok(deleted)
    }

    async fn move_deal(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        input: MoveDealInput,
    ) -> ApiResult<Deal> {
        let intent = Intent::Move {
            stage_id: input.stage_id.0,
        };
        act(ctx, &deal_id, intent, input.expected_version).await
    }

    async fn win_deal(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        note: Option<String>,
        expected_version: Option<i64>,
    ) -> ApiResult<Deal> {
        act(ctx, &deal_id, Intent::Win { note }, expected_version).await
    }

    async fn lose_deal(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        input: LoseDealInput,
    ) -> ApiResult<Deal> {
        let intent = Intent::Lose {
            lost_reason_id: input.lost_reason_id.map(|id| id.0),
            note: input.note,
        };
        act(ctx, &deal_id, intent, input.expected_version).await
    }

    /// Open again, in `stageId` (default: the first stage of its origin).
    async fn reopen_deal(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        stage_id: Option<ID>,
    ) -> ApiResult<Deal> {
        let intent = Intent::Reopen {
            stage_id: stage_id.map(|id| id.0),
        };
        act(ctx, &deal_id, intent, None).await
    }

    /// A note on the deal's timeline (1 to 5,000 characters).
    async fn add_deal_note(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        text: String,
    ) -> ApiResult<TimelineEntry> {
        let txn = super::audited::write(ctx).await?;
        let entry = work::add_note(&*txn, ctx.caller()?, &deal_id, &text).await?;
        txn.commit().await.map_err(entity::DomainError::from)?;
        Ok(TimelineEntry(entry))
    }

    /// Takes an unowned deal the caller can see.
    async fn claim_deal(&self, ctx: &Context<'_>, deal_id: ID) -> ApiResult<Deal> {
        act(ctx, &deal_id, Intent::Claim, None).await
    }

    #[graphql(complexity = "deal_ids.len().max(1) * child_complexity + 1")]
    /// Admins: moves up to 500 deals to a stage, all or nothing.
    async fn move_deals(
        &self,
        ctx: &Context<'_>,
        deal_ids: Vec<ID>,
        stage_id: ID,
    ) -> ApiResult<Vec<Deal>> {
        let intent = Intent::Move {
            stage_id: stage_id.0,
        };
        act_many(ctx, deal_ids, intent).await
    }

    #[graphql(complexity = "deal_ids.len().max(1) * child_complexity + 1")]
    /// Admins: sets the owner of up to 500 deals (`userId: null` removes it), all or
    /// nothing.
    async fn assign_deals(
        &self,
        ctx: &Context<'_>,
        deal_ids: Vec<ID>,
        user_id: Option<ID>,
    ) -> ApiResult<Vec<Deal>> {
        let intent = Intent::Assign {
            user_id: user_id.map(|id| id.0),
        };
        act_many(ctx, deal_ids, intent).await
    }

    async fn schedule_activity(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        input: ScheduleActivityInput,
    ) -> ApiResult<Activity> {
        let txn = super::audited::write(ctx).await?;
        let activity = activities::schedule(
            &*txn,
            ctx.caller()?,
            &deal_id,
            input.kind.into(),
            &input.title,
            input.due_at.timestamp_millis(),
            input.assignee_id.as_ref().map(|id| id.0.as_str()),
        )
        .await?;
        txn.commit().await.map_err(entity::DomainError::from)?;
        Ok(Activity(activity))
    }

    async fn complete_activity(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> ApiResult<Activity> {
        let txn = super::audited::write(ctx).await?;
        let activity = activities::complete(&*txn, ctx.caller()?, &id, note.as_deref()).await?;
        txn.commit().await.map_err(entity::DomainError::from)?;
        Ok(Activity(activity))
    }

    async fn cancel_activity(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let txn = super::audited::write(ctx).await?;
        let cancelled = activities::cancel(&*txn, ctx.caller()?, &id).await?;
        txn.commit().await.map_err(entity::DomainError::from)?;
        Ok(cancelled)
    }
}

/// A person's action on one deal, in the request's write transaction: on SQLite it takes
/// its turn at the process's one writer ahead of background writers, instead of polling
/// for SQLite's lock while processing writes.
async fn act(
    ctx: &Context<'_>,
    deal_id: &str,
    intent: Intent,
    expected_version: Option<i64>,
) -> ApiResult<Deal> {
    let txn = super::audited::write(ctx).await?;
    let deal = work::act(&*txn, ctx.caller()?, deal_id, intent, expected_version).await?;
    txn.commit().await.map_err(entity::DomainError::from)?;
    Ok(Deal(deal))
}

async fn act_many(ctx: &Context<'_>, deal_ids: Vec<ID>, intent: Intent) -> ApiResult<Vec<Deal>> {
    let txn = super::audited::write(ctx).await?;
    let deals = work::act_many(&*txn, ctx.caller()?, &ids(deal_ids), intent).await?;
    txn.commit().await.map_err(entity::DomainError::from)?;
    Ok(deals.into_iter().map(Deal).collect())
}

#[derive(Default)]
pub struct WorkSubscription;

#[Subscription]
impl WorkSubscription {
    /// Each deal of the group the caller may see, whenever it changes.
    async fn deals_changed(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Deal>> {
        let app = ctx.app().clone();
        let caller = ctx.caller().map_err(async_graphql::Error::from)?.clone();
        let session = ctx.data_opt::<crate::auth::SessionId>().cloned();
        groups::get(&app.db.conn, &caller, &group_id)
            .await
            .map_err(|err| async_graphql::Error::from(ApiError::from(err)))?;
        let mut feed = app.live.board(&caller.account_id, &group_id.0);
        let mut check = tokio::time::interval(crate::live::SESSION_CHECK);
        Ok(async_stream::stream! {
            loop {
                let next = tokio::select! {
                    batch = feed.recv() => Some(batch),
                    _ = check.tick() => None,
                };
                let batch = match next {
                    Some(Ok(batch)) => batch,
                    // A subscriber too slow for the feed skips what it missed.
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                    None => {
                        if app.still_signed_in(&caller, session.as_ref()).await {
                            continue;
                        }
                        break;
                    }
                };
                if !app.still_signed_in(&caller, session.as_ref()).await {
                    break;
                }
                for d in batch.visible_to(&caller) {
                    yield Deal(d.clone());
                }
            }
        })
    }
}
