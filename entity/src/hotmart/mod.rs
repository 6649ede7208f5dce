//! Hotmart's wire formats, parsed leniently: webhook v2 deliveries, and the deal details
//! they (and Sales History items) carry.

pub mod details;
pub mod payload;
pub mod phone;
