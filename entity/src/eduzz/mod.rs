//! Eduzz's adapter (webhook v3): deliveries signed with the integration's signing key,
//! read leniently into neutral sale events (`docs/platforms.md`, "Eduzz").

pub mod webhook;
