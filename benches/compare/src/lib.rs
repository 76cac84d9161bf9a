//! `mcp-compare`: sends the same MCP request N times, at a chosen concurrency, to two or more
//! named endpoints (one after the other, so they never compete) and compares them: latency
//! distribution, success rate, errors by kind, cold-start-looking outliers, and an estimated cost
//! per million calls, so "Lambda or EC2?" gets a money answer as well as a latency one.
//!
//! arguments → [`target::Target`]s → [`load::run`] per target → [`stats::Summary`] and
//! [`cost::Estimate`] → [`report`] (terminal table, JSON) and [`svg`] (latency CDF).

pub mod cost;
pub mod load;
pub mod mcp;
pub mod report;
pub mod stats;
pub mod svg;
pub mod target;
