//! Kiwify's adapter: its webhook deliveries (signed with the integration's webhook token)
//! read leniently into neutral sale events (`docs/platforms.md`, "Kiwify").

pub mod rest;
pub mod webhook;
