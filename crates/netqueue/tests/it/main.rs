//! NetQueue integration tests: one binary (see STYLE.md), modules by concern.

mod support;

mod affinity;
mod client_api;
mod durability;
mod hardening;
mod malformed;
mod pubsub;
