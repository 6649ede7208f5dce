//! checkout-crm's transport layer: configuration, authentication, the GraphQL API, the
//! HTTP routes and the `checkout-crm` command line.

pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod cookie;
pub mod download;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod inbox;
pub mod live;
pub mod metrics;
pub mod route_cache;
pub mod state;
pub mod webhook;
pub mod ws;
