//! One page of an import, whatever the platform: its sales applied as one group of the
//! deal engine, with the window's cursor and the run's counters, in one transaction (so a
//! restarted window resumes at the page it was on and counters stay exact).

use entity::{
    engine::apply::{Applied, IntegrationSnapshot, Source, apply_group},
    imports::{self, ImportedSale, PageCounts},
    tables::import_run,
};

use crate::context::JobContext;

/// Where a page's sales go.
pub struct ImportedPage<'a> {
    pub snap: &'a IntegrationSnapshot,
    pub run: &'a import_run::Model,
    pub window_id: &'a str,
}

impl ImportedPage<'_> {
    /// Applies events as one group of the deal engine; the counts with its outcome.
    pub async fn apply_events(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        keys: &entity::secrets::SecretKeys,
        events: &[ImportedSale],
        mut counts: PageCounts,
    ) -> Result<PageCounts, entity::DomainError> {
        let reconciliation = self.run.kind == imports::ImportKind::Reconciliation;
        let group: Vec<_> = events
            .iter()
            .map(|sale| {
                let source = Source::Import {
                    run_id: self.run.id.clone(),
                    label: self.run.label.clone(),
                    reconciliation,
                };
                (self.snap, sale.incoming(source))
            })
            .collect();
        let outcome = apply_group(txn, keys, &group).await?;
        for applied in &outcome.applied {
            match applied {
                Applied::Applied { .. } if reconciliation => counts.healed += 1,
                Applied::Applied { .. } => {}
                // A sale of an erased buyer is skipped, never re-creating them.
                Applied::Duplicate | Applied::Erased => counts.skipped += 1,
                Applied::NoContact => counts.failed_sales += 1,
            }
        }
        counts.deals_created += outcome.deals_created as i64;
        counts.deals_updated += outcome.deals_updated as i64;
        Ok(counts)
    }

    /// Applies a page with the window's cursor moving `from` → `to` and the run's
    /// counters, in one transaction. False when another run of the window moved the
    /// cursor first (its page stands, not this one).
    pub async fn apply(
        &self,
        ctx: &JobContext,
        events: &[ImportedSale],
        counts: PageCounts,
        from: &imports::WindowCursor,
        to: &imports::WindowCursor,
    ) -> Result<bool, entity::DomainError> {
        let txn = ctx.db.begin_write().await?;
        let counts = self.apply_events(&*txn, &ctx.keys, events, counts).await?;
        if !imports::advance_cursor(&*txn, self.window_id, from, to).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        imports::add_counts(&*txn, &self.run.id, counts).await?;
        txn.commit().await?;
        ctx.telemetry.healed_sales(counts.healed as u64);
        Ok(true)
    }
}
