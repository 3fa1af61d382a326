//! The `api` module (being built).
