//! The GraphQL API: a transport-agnostic schema. Resolvers parse input, call a domain
//! service with the caller, and map the result.

pub mod account;
pub mod audited;
pub mod context;
pub mod error;
pub mod exports;
pub mod guard;
pub mod imports;
pub mod loaders;
pub mod outbound;
pub mod pipeline;
pub mod privacy;
pub mod setup;
pub mod simulation;
pub mod types;
pub mod work;

use async_graphql::{MergedObject, MergedSubscription, Schema};

pub use context::AppContext;

/// Nesting deeper than this is refused (see `docs/webhooks.md`, "Who sees what").
pub const MAX_DEPTH: usize = 12;
/// The depth allowed under `__schema` and `__type`: the standard introspection query of
/// GraphiQL and code generators nests deeper than [`MAX_DEPTH`].
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Upper bound on the cost of one request: each field costs 1, a page costs its size
/// times its selection, and every other list (paged or not, a field of an object or
/// of a mutation's answer) [`UNPAGED_LIST`] times its selection, so nested lists
/// multiply (see `docs/architecture.md`, "The HTTP edge"). Checked by the guard.
pub const MAX_COMPLEXITY: usize = 10_000;
/// What a list without paging (a contact's deals, a timeline, labels) is counted as.
pub const UNPAGED_LIST: usize = 10;

/// The cost of a page of `first` items (the default page when absent; at most the
/// largest page) whose selection costs `child` each.
pub fn page_cost(first: Option<i32>, child: usize) -> usize {
    let size = first
        .unwrap_or(50)
        .clamp(1, entity::page::MAX_PAGE_SIZE as i32) as usize;
    size.saturating_mul(child).saturating_add(1)
}

#[derive(MergedObject, Default)]
pub struct Query(
    account::AccountQuery,
    setup::SetupQuery,
    pipeline::PipelineQuery,
    imports::ImportQuery,
    work::WorkQuery,
    exports::ExportQuery,
    privacy::PrivacyQuery,
    outbound::OutboundQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    account::AccountMutation,
    setup::SetupMutation,
    pipeline::PipelineMutation,
    imports::ImportMutation,
    simulation::SimulationMutation,
    work::WorkMutation,
    exports::ExportMutation,
    privacy::PrivacyMutation,
    outbound::OutboundMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(imports::ImportSubscription, work::WorkSubscription);

pub type CrmSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits and its guard (see [`guard`]). `app` is `None` only for
/// printing the SDL.
pub fn build_schema(
    app: Option<AppContext>,
    introspection: bool,
    guard: guard::Guard,
) -> CrmSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .extension(guard)
    // User queries are held to MAX_DEPTH by the guard; introspection to this.
    .limit_depth(MAX_INTROSPECTION_DEPTH)
    // The cost limit is checked by the guard, whose refusal names the cost.
    .limit_recursive_depth(32)
    .limit_directives(8);
    if !introspection {
        builder = builder.disable_introspection();
    }
    if let Some(app) = app {
        builder = builder.data(app);
    }
    builder.finish()
}

/// The SDL of the live schema (`checkout-crm schema`, and the committed snapshot).
pub fn sdl() -> String {
    let guard = guard::Guard::new(None, 1, std::time::Duration::from_secs(1));
    build_schema(None, true, guard).sdl()
}
