//! render-node: a GPU-accelerated video timeline render node.
//!
//! Data flows through the modules in this order: [`project`] (the JSON timeline and its
//! validation) → [`media`] (fetch, probe, decode) → [`gpu`] (composite and crossfade in
//! WGSL) and [`audio`] (automation, mix, limiter) → [`media`] again (encode and mux) —
//! all driven by [`render`]. [`jobs`] queues renders and keeps the ledger; [`api`] serves
//! them over HTTP and gRPC; [`storage`] keeps the outputs. See `ARCHITECTURE.md`.

pub mod api;
pub mod audio;
pub mod gpu;
pub mod jobs;
pub mod media;
pub mod project;
pub mod render;
pub mod storage;
