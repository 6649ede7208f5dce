//! The integration tests: one binary, one module per area. Each module spawns the real
//! application (in process or as the built binary) over a real database; the shared
//! helpers live in the `tests` library (`tests/src`).

mod architecture;
mod auth;
mod checkouts;
mod cli;
mod console_session;
mod contract;
mod crash;
mod data_rights;
mod deal_engine;
mod delivery_processing;
mod drain;
mod engine_statements;
mod exports;
mod fold_property;
mod graphiql;
mod graphql_statements;
mod hardening;
mod http_limits;
mod import;
mod isolation;
mod isolation_matrix;
mod never_miss;
mod outbound;
mod pipeline_work;
mod postgres_tcp;
mod queue_contract;
mod route_cache;
mod scale_out;
mod schema_snapshot;
mod setup_flow;
mod sign_in;
mod sign_in_limits;
mod storage;
mod upgrade;
mod validation;
mod webhook_endpoint;
mod webhook_fixtures;
mod webhook_hostile;
