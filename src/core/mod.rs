//! The foundation: domain types and pure logic, and the parsing done once at start (settings,
//! catalog, link keys, workflows). Imports nothing else of the crate; everything else
//! imports it.

pub mod bounces;
pub mod campaign;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod customer;
pub mod diagram;
pub mod domain;
pub mod files;
pub mod instance;
pub mod job;
pub mod links;
pub mod metric_names;
pub mod offer;
pub mod overview;
pub mod portal;
pub mod rate;
pub mod retry;
pub mod schedule;
pub mod workflow;
